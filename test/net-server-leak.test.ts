import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { expectOnTime, GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, HOST, listen, until, waitFor } from './fixtures/net.js';

describe('net server sockets', () => {
  it('reports an allowHalfOpen server socket the app never ends (half-closed)', async () => {
    const monitor = startMonitor();
    const server = net.createServer({ allowHalfOpen: true }, () => {});
    const port = await listen(server);
    const client = await connect(port);
    client.end();

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'half-closed',
      direction: 'server',
      localAddress: HOST,
      localPort: port,
      remoteAddress: HOST,
      remotePort: client.localPort,
      tls: false,
      request: undefined,
    });
    expect(leak.server).toMatchObject({ address: HOST, port });
    // The site is the first frame outside Node and closewait: the fixture that called listen().
    expect(leak.site).toContain('test/fixtures/net.ts');
    expect(leak.stack).toContain('net-server-leak.test.ts');
    expectOnTime(leak);
  });

  it("reports a default server socket whose data is never read, so 'end' never comes", async () => {
    const monitor = startMonitor();
    const server = net.createServer(() => {}); // never reads
    const port = await listen(server);
    const client = await connect(port);
    client.end('PING\r\n');

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'server',
      localPort: port,
      remotePort: client.localPort,
      unreadBytes: 6,
    });
    expect(leak.server?.listenSite).toContain('test/fixtures/net.ts');
    expect(leak.stack).toContain('net-server-leak.test.ts');
    // The sweep adds up to one interval (graceMs / 4) before the grace starts.
    expectOnTime(leak, GRACE_MS, GRACE_MS / 4);
  });

  it('reports end() stuck behind data the peer never reads (end-stuck)', async () => {
    const monitor = startMonitor();
    const server = net.createServer((socket) => {
      // Far more than the kernel buffers hold: the FIN queues behind it.
      socket.write(Buffer.alloc(16 * 1024 * 1024));
    });
    const port = await listen(server);
    const client = await connect(port);
    client.pause(); // never reads what the server sends
    client.end(); // the server's 'end' fires; Node ends its side, which cannot flush

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({ kind: 'end-stuck', direction: 'server', localPort: port });
    expect(leak.pendingWriteBytes).toBeGreaterThan(0);
    expectOnTime(leak);
  });

  it("emits 'leak-resolved' when the app finally closes the socket", async () => {
    const monitor = startMonitor();
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    const port = await listen(server);
    const client = await connect(port);
    client.end();
    const leak = await nextLeak(monitor);

    const resolved = waitFor(monitor, 'leak-resolved');
    accepted[0]!.end();
    const [resolvedLeak, resolution] = await resolved;
    expect(resolvedLeak).toBe(leak);
    expect(resolution).toMatchObject({ reason: 'closed' });
    expect(monitor.leaks()).toEqual([]);
  });

  it('reports a leak once, however long it stays open', async () => {
    const monitor = startMonitor();
    const server = net.createServer({ allowHalfOpen: true }, () => {});
    const port = await listen(server);
    const client = await connect(port);
    let count = 0;
    monitor.on('leak', () => count++);
    client.end();
    await nextLeak(monitor);
    // Three more grace periods: nothing new may be reported for the same socket.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS * 3));
    expect(count).toBe(1);
    expect(monitor.leaks()).toHaveLength(1);
  });
});

describe('sockets()', () => {
  it('lists tracked sockets with their state, and forgets them once closed', async () => {
    const monitor = startMonitor();
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    const port = await listen(server);
    const client = await connect(port);
    const mine = () =>
      monitor.sockets().filter((s) => s.localPort === port || s.remotePort === port);
    await until(() => accepted.length === 1, 1000, 'accept');
    expect(
      mine()
        .map((s) => `${s.direction}:${s.state}`)
        .sort(),
    ).toEqual(['client:open', 'server:open']);
    client.end();
    await nextLeak(monitor);
    expect(mine().find((s) => s.direction === 'server')?.state).toBe('leaked');
    accepted[0]!.end();
    await until(() => mine().length === 0, 2000, 'both sockets forgotten');
  });
});
