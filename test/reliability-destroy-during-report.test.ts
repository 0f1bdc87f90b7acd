import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { SocketLeak, SocketMonitor } from '../src/index.js';
import { startMonitor } from './fixtures/monitor.js';
import { connect, listen, until } from './fixtures/net.js';

/** A server whose sockets half-close and stay so: each client that ends makes one leak. */
async function leakingServer(monitor: SocketMonitor, leaks: number, healthy: number) {
  const accepted: Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  const port = await listen(server);
  const enders = await Promise.all(Array.from({ length: leaks }, () => connect(port)));
  const idle = await Promise.all(Array.from({ length: healthy }, () => connect(port)));
  for (const client of enders) client.end();
  await until(
    () => monitor.leaks().filter((leak) => leak.localPort === port).length === leaks,
    3000,
    `${leaks} leaks`,
  );
  const leakedPorts = new Set(enders.map((client) => client.localPort));
  const leaked = accepted.filter((socket) => leakedPorts.has(socket.remotePort));
  const open = accepted.filter((socket) => !leakedPorts.has(socket.remotePort));
  expect(open).toHaveLength(idle.length);
  return { port, leaked, open };
}

type WithState = Socket & { _readableState: unknown };

/**
 * Makes reading `trap`'s stream state destroy `victim`: sockets() reads that state for every
 * open socket, so the victim is destroyed in the middle of its pass over the sockets.
 * (report() keeps its counts as sockets change and reads no socket at all.)
 */
function destroyWhenRead(trap: Socket, victim: Socket, run: () => void): void {
  const target = trap as WithState;
  const state = target._readableState;
  Object.defineProperty(target, '_readableState', {
    configurable: true,
    get() {
      victim.destroy();
      return state;
    },
  });
  try {
    run();
  } finally {
    delete (target as Partial<WithState>)._readableState;
    target._readableState = state;
  }
  // Otherwise the pass never read the trap and this test would prove nothing.
  expect(victim.destroyed).toBe(true);
}

describe('sockets destroyed while the monitor reads them', () => {
  it('report(), sockets() and describe() survive a socket destroyed mid-pass', async () => {
    const monitor = startMonitor({ logger: false });
    const { port, leaked, open } = await leakingServer(monitor, 5, 5);
    const mine = (leaks: SocketLeak[]) => leaks.filter((leak) => leak.localPort === port);

    // A leaked socket and an open one destroyed while sockets() walks the tracked set.
    destroyWhenRead(open[0]!, leaked[0]!, () => {
      expect(monitor.sockets().length).toBeGreaterThanOrEqual(10);
    });
    const report = monitor.report();
    expect(report.leaked).toBeGreaterThanOrEqual(5);
    expect(String(report)).toContain('half-closed');
    destroyWhenRead(open[1]!, open[2]!, () => {
      expect(() => monitor.sockets()).not.toThrow();
    });
    // Destroyed, 'close' not delivered yet: still tracked, and describe() still answers.
    leaked[1]!.destroy();
    const leakId = mine(monitor.leaks()).find(
      (leak) => leak.remotePort === leaked[1]!.remotePort,
    )?.id;
    expect(leakId).toBeDefined();
    expect(() => monitor.describe(leakId!)).not.toThrow();
    expect(() => monitor.report()).not.toThrow();

    // Once 'close' arrives, the destroyed leaks resolve and the rest are still reported.
    await until(() => mine(monitor.leaks()).length === 3, 2000, 'two leaks resolved');
    const group = monitor.report().groups.find((candidate) => candidate.server?.port === port);
    expect(group?.count).toBe(3);
  });

  it('every leak resolves once while report() runs on every turn of the loop', async () => {
    const monitor = startMonitor({ logger: false });
    const { port, leaked } = await leakingServer(monitor, 200, 0);
    const resolved = new Map<number, number>();
    monitor.on('leak-resolved', (leak) => {
      if (leak.localPort === port) resolved.set(leak.id, (resolved.get(leak.id) ?? 0) + 1);
    });

    let previous = Number.POSITIVE_INFINITY;
    for (const socket of leaked) {
      socket.destroy();
      const report = monitor.report();
      const mine = monitor.leaks().filter((leak) => leak.localPort === port).length;
      monitor.sockets();
      expect(report.leaked).toBeGreaterThanOrEqual(mine);
      expect(mine).toBeLessThanOrEqual(previous);
      previous = mine;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => resolved.size === 200, 3000, 'all 200 resolved');
    expect([...resolved.values()].every((count) => count === 1)).toBe(true);
    expect(monitor.leaks().filter((leak) => leak.localPort === port)).toEqual([]);
  });
});
