import net, { type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { SocketLeak } from '../src/index.js';
import { nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, listen, until, waitFor } from './fixtures/net.js';

/** Whatever reaches the process from outside our try/catch: must stay empty. */
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);
const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);
process.prependListener('uncaughtException', onUncaught);
process.prependListener('unhandledRejection', onUncaught);
process.on('warning', onWarning);

afterEach(() => {
  uncaught.length = 0;
  warnings.length = 0;
});

async function halfClosedServer() {
  const accepted: Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  const port = await listen(server);
  return { port, accepted };
}

describe("a 'leak' listener that throws", () => {
  it('never reaches the app, and the monitor goes on reporting and resolving', async () => {
    const monitor = startMonitor({ logger: false });
    const seenFirst: SocketLeak[] = [];
    monitor.on('leak', (leak) => seenFirst.push(leak));
    monitor.on('leak', () => {
      throw new Error('bug in the leak handler');
    });
    monitor.on('leak-resolved', () => {
      throw new Error('bug in the resolved handler');
    });
    const { port, accepted } = await halfClosedServer();

    // Waits on leaks(), not on a 'leak' listener: one added now would run after the throwing
    // one, and EventEmitter stops at the first listener that throws.
    const leakedFrom = (client: Socket) => () =>
      monitor.leaks().some((leak) => leak.remotePort === client.localPort);
    const first = await connect(port);
    first.end();
    await until(leakedFrom(first), 3000, 'first leak');
    // The second leak after the listener threw: the monitor still declares it.
    const second = await connect(port);
    second.end();
    await until(leakedFrom(second), 3000, 'second leak');

    expect(seenFirst.map((leak) => leak.remotePort)).toEqual([first.localPort, second.localPort]);
    expect(monitor.leaks()).toHaveLength(2);
    expect(monitor.running).toBe(true);

    // Closing the sockets emits 'leak-resolved' into a throwing listener: still resolved.
    for (const socket of accepted) socket.destroy();
    await until(() => monitor.leaks().length === 0, 2000, 'leaks resolved');

    // Each throw became a bounded process warning, not an exception in the app.
    await until(() => warnings.length >= 4, 1000, 'warnings emitted');
    expect(uncaught).toEqual([]);
    const ours = warnings.filter(
      (w) => (w as Error & { code?: string }).code === 'CLOSEWAIT_INTERNAL',
    );
    expect(ours).toHaveLength(4);
    expect(ours[0]!.message).toContain('bug in the leak handler');
    expect(ours[2]!.message).toContain('bug in the resolved handler');
  });

  // A plain emit() stops at the first listener that throws, so a listener added after a broken
  // one (a metrics exporter, a log) would miss that leak: the monitor calls each on its own.
  it('does not hide the leak from listeners added after it', async () => {
    const monitor = startMonitor({ logger: false });
    monitor.on('leak', () => {
      throw new Error('broken first listener');
    });
    const { port } = await halfClosedServer();
    const client = await connect(port);
    client.end();
    await nextLeak(monitor, (leak) => leak.remotePort === client.localPort, 2000);
  });

  it('warns a bounded number of times however often it throws', async () => {
    const monitor = startMonitor({ logger: false });
    monitor.on('leak', () => {
      throw new Error('always broken');
    });
    const { port } = await halfClosedServer();
    const clients = await Promise.all(Array.from({ length: 15 }, () => connect(port)));
    for (const client of clients) client.end();
    await until(() => monitor.leaks().length === 15, 3000, 'all 15 leaks declared');
    // Warnings are emitted on a later tick: give them one, then count.
    await waitFor(process, 'warning', 1000).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(uncaught).toEqual([]);
    expect(warnings.filter((w) => w.message.includes('always broken'))).toHaveLength(10);
  });
});
