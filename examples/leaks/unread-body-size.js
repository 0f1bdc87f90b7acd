// Which body size, never read, leaves a client's FIN read by Node but unconsumed (the
// `unconsumed-fin` leak)? Each client pauses its socket once its own buffer fills, so only a body
// about that buffer's size has its FIN read behind a few unread bytes. The buffer differs per
// client and Node line (measured: 64 KiB for Node 20's http and undici 6, 32 KiB for Node 20's
// https, 128 KiB on Node 22, 24 and 26), so it is measured, not looked up by version.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const probe = fileURLToPath(new URL('./unread-body-probe.js', import.meta.url));
/** Largest first: a smaller size can crash a bundled undici where a larger one works. */
const CANDIDATES = [131_072, 65_536, 32_768];

/** A loaded machine can take seconds to start a child; a crash is an answer, a timeout is not. */
const PROBE_TIMEOUT_MS = 30_000;

function runProbe(client, size, tls) {
  const args = [probe, client, String(size), ...(tls ? [tls.keyFile, tls.certFile] : [])];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: PROBE_TIMEOUT_MS }, (error, out) => {
      if (error?.killed) return resolve('timed out');
      if (error !== null) return resolve('crashed');
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '').state);
      } catch {
        resolve('unparsable');
      }
    });
  });
}

async function stateOf(client, size, tls) {
  const state = await runProbe(client, size, tls);
  return state === 'timed out' ? runProbe(client, size, tls) : state;
}

/**
 * @param {'fetch' | 'undici' | 'http' | 'https'} client
 * @param {{ keyFile: string, certFile: string }} [tls] key and certificate, for 'https'
 * @returns {Promise<number>}
 */
export async function measureUnreadBodyBytes(client, tls) {
  const seen = [];
  for (const size of CANDIDATES) {
    const state = await stateOf(client, size, tls);
    if (state === 'fin-unconsumed') return size;
    seen.push(`${size}: ${state}`);
  }
  throw new Error(`no body size leaves ${client}'s FIN unconsumed on ${process.version} (${seen})`);
}
