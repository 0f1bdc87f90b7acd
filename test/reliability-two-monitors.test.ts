import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, listen, until, waitFor } from './fixtures/net.js';

async function halfOpenServer() {
  const accepted: Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  const port = await listen(server);
  return { port, accepted };
}

describe('two monitors at once', () => {
  it('both see the same leak, each on its own grace, and both see it resolved', async () => {
    const short = startMonitor({ logger: false });
    const long = startMonitor({ logger: false, graceMs: GRACE_MS * 2 });
    const { port, accepted } = await halfOpenServer();
    const client = await connect(port);
    client.end();
    const fromClient = (leak: { remotePort: number | undefined }) =>
      leak.remotePort === client.localPort;

    const [first, second] = await Promise.all([
      nextLeak(short, fromClient),
      nextLeak(long, fromClient),
    ]);
    expect(first).toMatchObject({ kind: 'half-closed', localPort: port });
    expect(second).toMatchObject({ kind: 'half-closed', localPort: port });
    expect(first).not.toBe(second); // each monitor has its own record
    expect(second.detectedAt - first.detectedAt).toBeGreaterThanOrEqual(GRACE_MS - 20);

    const resolved = Promise.all([
      waitFor(short, 'leak-resolved', 2000),
      waitFor(long, 'leak-resolved', 2000),
    ]);
    accepted[0]!.destroy();
    await resolved;
    expect(short.leaks()).toEqual([]);
    expect(long.leaks()).toEqual([]);
  });

  it('stopping one leaves the other tracking and reporting', async () => {
    const { port, accepted } = await halfOpenServer();
    const first = startMonitor({ logger: false });
    const probe = await connect(port);
    await until(() => accepted.length === 1, 1000, 'accept');
    const listenersWithOne = accepted[0]!.listenerCount('end');
    const second = startMonitor({ logger: false });
    first.stop();

    const client = await connect(port);
    await until(() => accepted.length === 2, 1000, 'accept');
    // Only the second monitor's listener is added now: the first one let go completely.
    expect(accepted[1]!.listenerCount('end')).toBe(listenersWithOne);
    client.end();
    const leak = await nextLeak(second, (candidate) => candidate.remotePort === client.localPort);
    expect(leak.localPort).toBe(port);
    expect(first.leaks()).toEqual([]);
    expect(first.sockets()).toEqual([]);
    probe.destroy();
  });
});
