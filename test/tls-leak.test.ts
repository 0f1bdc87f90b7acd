import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  expectNoLeak,
  expectOnTime,
  GRACE_MS,
  nextLeak,
  startMonitor,
} from './fixtures/monitor.js';
import {
  announcesEveryConnect,
  closeAfterTest,
  HOST,
  listen,
  tlsCert,
  tlsKey,
  waitFor,
} from './fixtures/net.js';

// Not the fixture's tlsClient: these tests assert that the leak's site is this file, so the
// tls.connect() call must be written here.
function tlsClient(port: number, options: tls.ConnectionOptions = {}) {
  return closeAfterTest(
    tls.connect({ port, host: HOST, ca: tlsCert, servername: 'localhost', ...options }),
  );
}

describe('TLS sockets', () => {
  it('reports the TLSSocket of a tls server the app never ends', async () => {
    const monitor = startMonitor();
    const server = tls.createServer({ key: tlsKey, cert: tlsCert, allowHalfOpen: true }, (socket) =>
      socket.write('ready'),
    );
    const port = await listen(server);
    const client = tlsClient(port);
    // After 'ready' the TLS 1.3 session tickets are out: the server's send queue is quiet, so
    // the grace runs from the FIN (a draining queue counts as progress, by design).
    await waitFor(client, 'data');
    client.end();

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'half-closed',
      direction: 'server',
      tls: true,
      localPort: port,
      remotePort: client.localPort,
    });
    expect(leak.server).toMatchObject({ port });
    expect(leak.stack).toContain('tls-leak.test.ts');
    expectOnTime(leak);
    // Only the TLSSocket is tracked, not the raw TCP socket under it.
    expect(monitor.sockets().filter((s) => s.direction === 'server')).toHaveLength(1);
  });

  it('reports a tls.connect() client that never reads the response (patchSocketConnect)', async () => {
    const monitor = startMonitor({ patchSocketConnect: true });
    const server = tls.createServer({ key: tlsKey, cert: tlsCert }, (socket) =>
      socket.end('BYE\r\n'),
    );
    const port = await listen(server);
    const client = tlsClient(port);
    client.pause();

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'client',
      tls: true,
      remotePort: port,
    });
    expect(leak.site).toContain('tls-leak.test.ts');
    expectOnTime(leak, GRACE_MS, GRACE_MS / 4);
  });

  it.runIf(announcesEveryConnect)('sees tls.connect() without the patch on Node 24', async () => {
    const monitor = startMonitor();
    const server = tls.createServer({ key: tlsKey, cert: tlsCert }, (socket) =>
      socket.end('BYE\r\n'),
    );
    const port = await listen(server);
    tlsClient(port).pause();
    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({ kind: 'unconsumed-fin', direction: 'client', tls: true });
    expect(leak.site).toContain('tls-leak.test.ts');
  });

  it.runIf(!announcesEveryConnect)(
    'does not see tls.connect() without the patch on Node 20',
    async () => {
      const monitor = startMonitor();
      const server = tls.createServer({ key: tlsKey, cert: tlsCert }, (socket) =>
        socket.end('BYE\r\n'),
      );
      const port = await listen(server);
      const client = tlsClient(port);
      client.pause();
      await waitFor(client, 'secureConnect');
      await expectNoLeak(monitor, GRACE_MS * 2);
    },
  );
});
