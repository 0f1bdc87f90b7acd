import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { HOST } from './fixtures/net.js';

const linux = process.platform === 'linux';
const FD_LIMIT = 64;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  children.length = 0;
});

/** The leaky server in a child whose descriptor limit is FD_LIMIT (the test's own is not). */
async function startLimitedServer(autoDestroy: string) {
  const script = new URL('./fixtures/fd-limited-server.mjs', import.meta.url).pathname;
  const child = spawn(
    'bash',
    ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, script, autoDestroy],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const [first] = (await once(lines, 'line')) as [string];
  const port = Number(first.replace('port ', ''));
  const summary = async () => {
    const next = once(lines, 'line');
    child.stdin!.write('report\n');
    const [line] = (await next) as [string];
    return JSON.parse(line) as {
      accepted: number;
      leaks: number;
      destroyed: number;
      acceptErrors: number;
      leakSites: string[];
      open: number;
    };
  };
  return { child, port, summary };
}

/** A client that says goodbye (FIN) and waits for the server to close, or gives up. */
async function halfCloseAndWait(port: number, waitMs: number): Promise<boolean> {
  const socket = net.connect({ port, host: HOST });
  socket.on('error', () => {});
  socket.resume();
  socket.end();
  const closed = once(socket, 'close').then(() => true);
  const gaveUp = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), waitMs));
  const result = await Promise.race([closed, gaveUp]);
  socket.destroy();
  return result;
}

describe.runIf(linux)(`under ulimit -n ${FD_LIMIT} (Linux: bash ulimit)`, () => {
  it('leaks that exhaust the descriptors are still reported, one each, with their site', async () => {
    const { port, summary } = await startLimitedServer('off');
    // Twice the limit: the server runs out of descriptors part way.
    const clients: net.Socket[] = [];
    for (let i = 0; i < FD_LIMIT * 2; i++) {
      const socket = net.connect({ port, host: HOST });
      socket.on('error', () => {});
      socket.end();
      clients.push(socket);
    }
    let last = await summary();
    const deadline = Date.now() + 5000;
    while ((last.leaks < last.accepted || last.accepted < FD_LIMIT / 2) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      last = await summary();
    }
    for (const socket of clients) socket.destroy();
    expect(last.accepted).toBeGreaterThanOrEqual(FD_LIMIT / 2);
    expect(last.accepted).toBeLessThan(FD_LIMIT);
    expect(last.leaks).toBe(last.accepted);
    expect(last.leakSites).toHaveLength(1);
    expect(last.leakSites[0]).toContain('fd-limited-server.mjs');
  }, 20_000);

  it('with auto-destroy on, the service keeps accepting connections', async () => {
    const { port, summary } = await startLimitedServer('0');
    const connections = FD_LIMIT * 3;
    let served = 0;
    // Eight at a time: each waits until the policy closes the server's side.
    for (let batch = 0; batch < connections / 8; batch++) {
      const results = await Promise.all(
        Array.from({ length: 8 }, () => halfCloseAndWait(port, 3000)),
      );
      served += results.filter(Boolean).length;
    }
    const last = await summary();
    expect(served).toBe(connections);
    expect(last.accepted).toBe(connections);
    expect(last.destroyed).toBe(connections);
    expect(last.acceptErrors).toBe(0);
  }, 30_000);
});
