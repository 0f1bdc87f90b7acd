/**
 * Bytes promoted to old space per 10,000 connection-per-request requests, per server variant:
 * a tracker that keeps dead sockets reachable (until a sweep, a rehash, a mark-compact) makes
 * them survive scavenges, and this number shows it where CPU time is too noisy to. Summed from
 * V8's own `--trace-gc-nvp` lines (`promoted=` per scavenge) over a whole run; median of rounds.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { closeLoad } from './close-load.js';
import { median } from './stats.js';

const REQUESTS = 10_000;

async function promotedOnce(variant) {
  const env = { ...process.env };
  delete env.NODE_ENV;
  const child = spawn(
    process.execPath,
    [
      '--trace-gc-nvp',
      fileURLToPath(new URL('./instructions-server.js', import.meta.url)),
      variant,
      String(REQUESTS),
    ],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let promoted = 0;
  let buffered = '';
  let port;
  const portSeen = new Promise((resolve) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      buffered += text;
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        if (line.startsWith('{') && port === undefined) {
          port = JSON.parse(line).port;
          resolve(port);
        }
        const match = / promoted=(\d+)/.exec(line);
        if (match) promoted += Number(match[1]);
      }
    });
  });
  await closeLoad(await portSeen, REQUESTS);
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`server ${variant} exited with ${code}`);
  return promoted;
}

/** Median bytes promoted per 10,000 requests for each variant, `rounds` runs each, rotated. */
export async function measurePromotion(variants, rounds) {
  const runs = Object.fromEntries(variants.map((variant) => [variant, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) runs[variant].push(await promotedOnce(variant));
  }
  return variants.map((variant) => ({
    variant,
    bytes: median(runs[variant]),
    runs: runs[variant],
  }));
}
