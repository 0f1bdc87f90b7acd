import net, { type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { LeakResolution, SocketLeak } from '../src/index.js';
import {
  expectNoLeak,
  expectOnTime,
  GRACE_MS,
  nextLeak,
  startMonitor,
} from './fixtures/monitor.js';
import { announcesEveryConnect, closeAfterTest, HOST, listen, waitFor } from './fixtures/net.js';

async function serverThatEnds(payload = '') {
  const server = net.createServer((socket) => socket.end(payload));
  return listen(server);
}

describe('net client sockets', () => {
  it('reports an allowHalfOpen client the app never ends after the server closed', async () => {
    const monitor = startMonitor();
    const port = await serverThatEnds();
    const client = closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true }));
    client.resume(); // reads, so it sees 'end', but never calls end()

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'half-closed',
      direction: 'client',
      remoteAddress: HOST,
      remotePort: port,
      localPort: client.localPort,
      server: undefined,
    });
    expect(leak.site).toContain('net-client-leak.test.ts');
    expect(leak.appSite).toContain('net-client-leak.test.ts');
    expect(leak.stack).toContain('net-client-leak.test.ts');
    expectOnTime(leak);
  });

  it('reports a default client that never reads what came before the FIN', async () => {
    const monitor = startMonitor();
    const port = await serverThatEnds('HELLO\r\n');
    // No 'data' listener and no pause(): Node reads into its buffer, FIN included, and waits.
    // (A socket paused before it connects never reads at all: its FIN stays in the kernel.)
    const client = closeAfterTest(net.createConnection({ port, host: HOST }));

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({ kind: 'unconsumed-fin', direction: 'client', unreadBytes: 7 });
    expect(leak.site).toContain('net-client-leak.test.ts');
    expectOnTime(leak, GRACE_MS, GRACE_MS / 4);

    const resolved = waitFor<[SocketLeak, LeakResolution]>(monitor, 'leak-resolved');
    client.resume(); // consumes at last: 'end', then Node closes it
    const [, resolution] = await resolved;
    expect(['consumed', 'closed']).toContain(resolution.reason);
  });

  it('reports nothing for a client that closes first', async () => {
    const monitor = startMonitor();
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('end', () => socket.end());
      socket.resume();
    });
    const port = await listen(server);
    for (let i = 0; i < 5; i++) {
      const client = closeAfterTest(net.connect({ port, host: HOST }));
      client.resume();
      client.end('bye');
    }
    await expectNoLeak(monitor, GRACE_MS * 2);
  });
});

describe('sockets no channel announces', () => {
  async function leakyPlainSocket(): Promise<{ socket: Socket; port: number }> {
    const port = await serverThatEnds();
    const socket = closeAfterTest(new net.Socket({ allowHalfOpen: true }));
    return { socket, port };
  }

  it.runIf(announcesEveryConnect)('sees new net.Socket().connect() on Node 24', async () => {
    const monitor = startMonitor();
    const { socket, port } = await leakyPlainSocket();
    socket.connect(port, HOST).resume();
    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({ kind: 'half-closed', direction: 'client', remotePort: port });
  });

  it.runIf(!announcesEveryConnect)(
    'does not see new net.Socket().connect() on Node 20 without the opt-in patch',
    async () => {
      const monitor = startMonitor();
      const { socket, port } = await leakyPlainSocket();
      socket.connect(port, HOST).resume();
      await waitFor(socket, 'end');
      await expectNoLeak(monitor, GRACE_MS * 2);
    },
  );

  it('sees new net.Socket().connect() with patchSocketConnect, on every version', async () => {
    const unpatched = net.Socket.prototype.connect;
    const monitor = startMonitor({ patchSocketConnect: true });
    const { socket, port } = await leakyPlainSocket();
    socket.connect(port, HOST).resume();
    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({ kind: 'half-closed', direction: 'client', remotePort: port });
    expect(leak.site).toContain('net-client-leak.test.ts');
    monitor.stop();
    expect(net.Socket.prototype.connect).toBe(unpatched);
  });

  it('tracks a socket handed to monitor.track()', async () => {
    const monitor = startMonitor();
    const { socket, port } = await leakyPlainSocket();
    socket.connect(port, HOST).resume();
    expect(monitor.track(socket)).toBe(true);
    expect(monitor.track(socket)).toBe(true); // idempotent
    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({ kind: 'half-closed', direction: 'client', remotePort: port });
    expect(monitor.leaks()).toHaveLength(1);
  });
});
