import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createSocketMonitor, type SocketLeak } from '../../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** `npm run test:soak` sets this; the normal suite lists these tests as skipped. */
const SOAK = process.env.CLOSEWAIT_SOAK === '1';
const TOTAL = Number(process.env.CLOSEWAIT_SOAK_CONNECTIONS ?? 1_000_000);
const PARALLEL = 64;
const GRACE_MS = 200;
/** One connection in this many leaks (half of them half-closed, half unconsumed-fin). */
const LEAK_EVERY = 1000;
/** The whole run must finish in this time: the soak is bounded, not open-ended. */
const TIME_LIMIT_MS = 12 * 60_000;
/** Heap after GC may move this much between the first checkpoint and any later one. */
const HEAP_SLACK_BYTES = 8 * 1024 * 1024;
/** Far above what is in flight (PARALLEL sockets plus leaks inside their grace). */
const MAX_TRACKED = 2000;

const HOST = '127.0.0.1';
const keyOf = (localPort: number | undefined, remotePort: number | undefined) =>
  `${localPort}:${remotePort}`;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

async function listen(server: net.Server): Promise<number> {
  server.listen({ port: 0, host: HOST, backlog: 1024 });
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

interface ChurnResult {
  seconds: number;
  expectedLeaks: number;
  reported: number;
  duplicates: number;
  falseLeaks: SocketLeak[];
  missed: number;
  maxTracked: number;
  trackedAtEnd: number;
  heap: number[];
  worstDelayMs: number;
}

/** Runs TOTAL connections from a client process against two servers in this process. */
async function churn(leakEvery: number): Promise<ChurnResult> {
  const started = Date.now();
  const monitor = createSocketMonitor({ graceMs: GRACE_MS, stacks: 'none', logger: false });
  monitor.start();
  // Leaking sockets the servers hold, by local:remote port (unique while the socket is open).
  const held = new Map<string, { socket: Socket; since: number }>();
  const leaking = new WeakSet<Socket>();
  let expectedLeaks = 0;
  const hold = (socket: Socket) => {
    expectedLeaks++;
    leaking.add(socket);
    held.set(keyOf(socket.localPort, socket.remotePort), { socket, since: Date.now() });
  };
  function onData(this: Socket, chunk: Buffer) {
    if (chunk[0] === 0x6c) hold(this); // 'l': this connection leaks half-closed
  }
  function onEnd(this: Socket) {
    if (!leaking.has(this)) this.end();
  }
  const ignore = () => {};
  const halfOpen = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', ignore);
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
  const neverReads = net.createServer((socket) => {
    socket.on('error', ignore);
    hold(socket); // never read: its FIN stays behind the unread byte
  });

  const ids = new Set<number>();
  let duplicates = 0;
  let worstDelayMs = 0;
  const falseLeaks: SocketLeak[] = [];
  monitor.on('leak', (leak) => {
    if (ids.has(leak.id)) duplicates++;
    ids.add(leak.id);
    const key = keyOf(leak.localPort, leak.remotePort);
    const entry = held.get(key);
    if (entry === undefined) {
      falseLeaks.push(leak);
      return;
    }
    held.delete(key);
    worstDelayMs = Math.max(worstDelayMs, Date.now() - entry.since);
    entry.socket.destroy();
  });

  const port = await listen(halfOpen);
  const unreadPort = await listen(neverReads);
  const client = spawn(
    process.execPath,
    [
      new URL('./churn-client.js', import.meta.url).pathname,
      JSON.stringify({ port, unreadPort, total: TOTAL, parallel: PARALLEL, leakEvery }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const heap: number[] = [];
  let maxTracked = 0;
  let clientSummary: { leaks: number; errors: number } | undefined;
  try {
    client.stdout.setEncoding('utf8');
    let buffered = '';
    const finished = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`churn not done within ${TIME_LIMIT_MS} ms`)),
        TIME_LIMIT_MS - (Date.now() - started),
      );
      // 'close', not 'exit': it comes after the last stdout line has been read.
      client.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`churn client exited before it was done (${code})`));
      });
      client.stdout.on('data', (text: string) => {
        buffered += text;
        for (let newline = buffered.indexOf('\n'); newline !== -1; ) {
          const line = JSON.parse(buffered.slice(0, newline)) as {
            progress?: number;
            done?: boolean;
            leaks: number;
            errors: number;
          };
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
          maxTracked = Math.max(maxTracked, monitor.report().tracked);
          // Every 100,000 connections: the heap after a full GC.
          if (line.progress !== undefined && line.progress % 100_000 === 0) {
            heap.push(heapAfterGc());
          }
          if (line.done === true) {
            clientSummary = line;
            clearTimeout(timer);
            resolve();
          }
        }
      });
    });
    await finished;
  } finally {
    client.kill();
  }

  // Every leak still held must be reported within its grace plus a sweep and some slack.
  const drainBy = Date.now() + GRACE_MS * 2 + 3000;
  while ((held.size > 0 || expectedLeaks < clientSummary!.leaks) && Date.now() < drainBy) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const missed = held.size;
  for (const { socket } of held.values()) socket.destroy();
  // The healthy sockets' last 'close' events, and the destroyed leaks' 'close'.
  const settleBy = Date.now() + 3000;
  while (monitor.sockets().length > 0 && Date.now() < settleBy) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const trackedAtEnd = monitor.sockets().length;
  monitor.stop();
  halfOpen.close();
  neverReads.close();
  expect(clientSummary!.leaks).toBe(expectedLeaks);
  return {
    seconds: (Date.now() - started) / 1000,
    expectedLeaks,
    reported: ids.size,
    duplicates,
    falseLeaks,
    missed,
    maxTracked,
    trackedAtEnd,
    heap,
    worstDelayMs,
  };
}

function summarize(name: string, result: ChurnResult): void {
  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  console.log(
    `${name}: ${TOTAL} connections in ${result.seconds.toFixed(0)} s ` +
      `(${Math.round(TOTAL / result.seconds)}/s); leaks expected ${result.expectedLeaks}, ` +
      `reported ${result.reported}, duplicates ${result.duplicates}, false ` +
      `${result.falseLeaks.length}, missed ${result.missed}, worst report delay ` +
      `${result.worstDelayMs} ms; tracked max ${result.maxTracked}, at end ` +
      `${result.trackedAtEnd}; heap MiB per 100k: ${result.heap.map(mib).join(' ')}`,
  );
}

function expectFlatHeap(heap: number[]): void {
  expect(heap.length).toBeGreaterThanOrEqual(Math.floor(TOTAL / 100_000) - 1);
  // The first checkpoint is past JIT warm-up and pool growth; later ones may not climb.
  const [first, ...rest] = heap;
  for (const later of rest) expect(later - first!).toBeLessThan(HEAP_SLACK_BYTES);
}

describe.runIf(SOAK)('churn soak', () => {
  it(
    `${TOTAL} short connections with no leak: nothing reported, nothing kept`,
    async () => {
      const result = await churn(0);
      summarize('no leaks', result);
      expect(result.reported).toBe(0);
      expect(result.falseLeaks).toEqual([]);
      expect(result.trackedAtEnd).toBe(0);
      expect(result.maxTracked).toBeLessThan(MAX_TRACKED);
      expectFlatHeap(result.heap);
    },
    TIME_LIMIT_MS + 30_000,
  );

  it(
    `${TOTAL} short connections, one in ${LEAK_EVERY} leaking: each reported exactly once`,
    async () => {
      const result = await churn(LEAK_EVERY);
      summarize('with leaks', result);
      expect(result.expectedLeaks).toBe(Math.floor(TOTAL / LEAK_EVERY));
      expect(result.falseLeaks).toEqual([]);
      expect(result.duplicates).toBe(0);
      expect(result.missed).toBe(0);
      expect(result.reported).toBe(result.expectedLeaks);
      expect(result.trackedAtEnd).toBe(0);
      expect(result.maxTracked).toBeLessThan(MAX_TRACKED);
      expectFlatHeap(result.heap);
    },
    TIME_LIMIT_MS + 30_000,
  );
});
