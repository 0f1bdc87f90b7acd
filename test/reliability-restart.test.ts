import dc from 'node:diagnostics_channel';
import net, { type Socket } from 'node:net';
import timers from 'node:timers';
import { describe, expect, it, vi } from 'vitest';
import { realTimers } from '../src/clock.js';
import { createSocketMonitor, type SocketLeak } from '../src/index.js';
import { expectNoLeak, GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, listen, until } from './fixtures/net.js';

const CYCLES = 50;

/** Records every interval created and cleared until restore(); each created must be cleared. */
function watchIntervals() {
  const created = new Set<unknown>();
  const cleared = new Set<unknown>();
  // closewait's timers are node:timers' functions captured at load (src/clock.ts realTimers).
  const setSpy = vi.spyOn(realTimers, 'setInterval');
  const clearSpy = vi.spyOn(realTimers, 'clearInterval');
  setSpy.mockImplementation(((...args: Parameters<typeof setInterval>) => {
    const handle = realSetInterval(...args);
    created.add(handle);
    return handle;
  }) as typeof setInterval);
  clearSpy.mockImplementation(((handle: Parameters<typeof clearInterval>[0]) => {
    cleared.add(handle);
    realClearInterval(handle);
  }) as typeof clearInterval);
  return {
    created,
    leftRunning: () => [...created].filter((handle) => !cleared.has(handle)),
    restore() {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    },
  };
}
/**
 * Subscribers of one channel. Node exposes only `hasSubscribers`, and another monitor (the
 * shared one of closewait/vitest) keeps that true; `_subscribers` is internal but present on
 * Node 20 and 24, and a missing field fails the "+1 while running" check below loudly.
 */
const subscribers = (name: string) =>
  (dc.channel(name) as unknown as { _subscribers?: unknown[] })._subscribers?.length ?? -1;
const realSetInterval = timers.setInterval;
const realClearInterval = timers.clearInterval;

async function halfOpenServer() {
  const accepted: Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  const port = await listen(server);
  return { port, accepted };
}

describe('stop() and start() repeated', () => {
  it('leave no extra listener, timer or subscription behind, and report each leak once', async () => {
    const { port, accepted } = await halfOpenServer();
    // Listeners a socket gets without this monitor (Node's own, and any other monitor's).
    await connect(port);
    await until(() => accepted.length === 1, 1000, 'accept');
    const endListenersWithout = accepted[0]!.listenerCount('end');
    const closeListenersWithout = accepted[0]!.listenerCount('close');
    const intervals = watchIntervals();
    const subscribersWithout = subscribers('net.server.socket');
    const monitor = startMonitor({ logger: false });
    for (let i = 0; i < CYCLES; i++) monitor.stop().start();
    expect(subscribers('net.server.socket')).toBe(subscribersWithout + 1);

    const client = await connect(port);
    await until(() => accepted.length === 2, 1000, 'accept');
    const socket = accepted[1]!;
    // One 'end' and one 'close' listener of ours, not one per start().
    expect(socket.listenerCount('end')).toBe(endListenersWithout + 1);
    expect(socket.listenerCount('close')).toBe(closeListenersWithout + 1);

    const leaks: SocketLeak[] = [];
    monitor.on('leak', (leak) => leaks.push(leak));
    client.end();
    await nextLeak(monitor, (leak) => leak.remotePort === client.localPort);
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS)); // room for a duplicate
    expect(leaks.filter((leak) => leak.remotePort === client.localPort)).toHaveLength(1);

    // Stopped: our listeners come off the socket we tracked, and every interval is cleared.
    monitor.stop();
    intervals.restore();
    expect(socket.listenerCount('end')).toBe(endListenersWithout);
    expect(socket.listenerCount('close')).toBe(closeListenersWithout);
    expect(intervals.created.size).toBeGreaterThanOrEqual(CYCLES + 1); // the sweep, per start()
    expect(intervals.leftRunning()).toEqual([]);
    expect(subscribers('net.server.socket')).toBe(subscribersWithout);
  });

  it('a stop() while a leak is pending reports nothing, and a new start() sees new sockets', async () => {
    const { port } = await halfOpenServer();
    const monitor = startMonitor({ logger: false });
    const before = await connect(port);
    before.end(); // the leak's grace is running when the monitor stops
    await until(
      () => monitor.sockets().some((s) => s.remotePort === before.localPort && s.state !== 'open'),
      1000,
      "the peer's FIN seen",
    );
    monitor.stop();
    expect(monitor.sockets()).toEqual([]);
    expect(monitor.leaks()).toEqual([]);
    const lateLeaks: SocketLeak[] = [];
    monitor.on('leak', (leak) => lateLeaks.push(leak));

    monitor.start();
    // The socket from before the restart is not tracked any more: its leak goes unreported.
    await expectNoLeak(monitor, GRACE_MS * 2);
    // A socket opened after the restart is tracked and its leak reported.
    const after = await connect(port);
    after.end();
    const leak = await nextLeak(monitor, (candidate) => candidate.localPort === port);
    expect(leak.remotePort).toBe(after.localPort);
    expect(lateLeaks.map((candidate) => candidate.remotePort)).toEqual([after.localPort]);
  });

  it('survives stop() and start() called from inside its own events', async () => {
    const { port } = await halfOpenServer();
    const monitor = createSocketMonitor({ graceMs: GRACE_MS, logger: false }).start();
    try {
      let restarts = 0;
      monitor.on('leak', () => {
        restarts++;
        monitor.stop().start();
      });
      const first = await connect(port);
      first.end();
      await until(() => restarts === 1, 2000, 'first leak');
      const second = await connect(port);
      second.end();
      await until(() => restarts === 2, 2000, 'second leak after the restart');
      expect(monitor.running).toBe(true);
    } finally {
      monitor.stop();
    }
  });
});
