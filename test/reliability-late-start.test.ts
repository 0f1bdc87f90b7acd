import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { expectNoLeak, GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, listen, until } from './fixtures/net.js';

/**
 * What a monitor started after sockets exist sees: diagnostics channels announce sockets only
 * as they are created, so sockets opened before start() are invisible unless handed to
 * track(); a server listening before start() has its new connections tracked, without the
 * listen() stack (that was announced before we subscribed).
 */
describe('a monitor started after sockets exist', () => {
  it('starts without throwing, and does not see the sockets opened before it', async () => {
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    const port = await listen(server);
    const early = await connect(port);
    await until(() => accepted.length === 1, 1000, 'accept');

    const monitor = startMonitor({ logger: false });
    expect(monitor.sockets().filter((s) => s.localPort === port || s.remotePort === port)).toEqual(
      [],
    );
    early.end(); // a leak the monitor cannot know about
    await expectNoLeak(monitor, GRACE_MS * 2);
  });

  it('tracks new connections to a server that listened before it, without a listen site', async () => {
    const server = net.createServer({ allowHalfOpen: true }, () => {});
    const port = await listen(server);
    const monitor = startMonitor({ logger: false });
    const client = await connect(port);
    client.end();
    const leak = await nextLeak(monitor, (candidate) => candidate.localPort === port);
    expect(leak).toMatchObject({ kind: 'half-closed', direction: 'server' });
    expect(leak.server).toMatchObject({ port, listenSite: undefined, listenStack: undefined });
    const group = monitor.report().groups.find((candidate) => candidate.server?.port === port);
    expect(group?.where).toBe(`server 127.0.0.1:${port}`);
  });

  it('adopts older sockets through track(), even one whose peer already ended', async () => {
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      accepted.push(socket);
      socket.resume();
    });
    const port = await listen(server);
    const ended = await connect(port);
    const open = await connect(port);
    await until(() => accepted.length === 2, 1000, 'accept');
    ended.end();
    const endedServerSide = accepted.find((s) => s.remotePort === ended.localPort)!;
    await until(() => endedServerSide.readableEnded, 1000, "the peer's FIN read");

    const monitor = startMonitor({ logger: false });
    const trackedAt = Date.now();
    expect(monitor.track(endedServerSide)).toBe(true);
    expect(monitor.track(accepted.find((s) => s.remotePort === open.localPort)!)).toBe(true);
    expect(monitor.sockets().filter((s) => s.localPort === port)).toHaveLength(2);

    // The FIN came before track(): the grace is counted from track(), not from the FIN.
    const leak = await nextLeak(monitor, (candidate) => candidate.remotePort === ended.localPort);
    expect(leak.direction).toBe('server');
    expect(leak.detectedAt - trackedAt).toBeGreaterThanOrEqual(GRACE_MS - 5);
    // The other one is still open and healthy.
    open.end();
    const second = await nextLeak(monitor, (candidate) => candidate.remotePort === open.localPort);
    expect(second.kind).toBe('half-closed');
  });
});
