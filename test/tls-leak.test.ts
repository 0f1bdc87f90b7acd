import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { tcpRows } from '../src/kernel/process-sockets.js';
import { kernelHoldsFin } from '../src/kernel/tls-fin.js';
import { unconsumedFinBytes } from '../src/rules/leak-rules.js';
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
  until,
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
    // Periodic checks a minute apart: only the check the sweep asks for can decide in time.
    const monitor = startMonitor({ patchSocketConnect: true, kernelCheckIntervalMs: 60_000 });
    // A TLS stream's end is declared on the kernel check that says whose FIN it is (a TLS
    // stream ends on close_notify): up to one check later than the sweep alone would. A check
    // on a loaded machine can take far longer than this first one (load 12 on 2 cores: 5x):
    // the margin is 3 of them, or 2 s.
    const checkMs = (await monitor.kernelCheck()).durationMs;
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
    expectOnTime(leak, GRACE_MS, GRACE_MS / 4 + Math.max(3 * checkMs, 2_000));
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

/**
 * A TLS server that pauses every socket, and a client that sends `bytes` and leaves, through a
 * proxy that passes everything at once but the FIN. With `finLate`, the proxy passes the FIN only
 * once the server has stopped reading (its buffer at the high-water mark, or its stream ended at
 * the close_notify in front of the FIN), so the kernel keeps the FIN whatever the machine's load;
 * otherwise the FIN follows the data at once.
 */
async function pausedTlsReader(bytes: number, finLate: boolean, finNever = false) {
  const accepted: Socket[] = [];
  const server = tls.createServer({ key: tlsKey, cert: tlsCert }, (socket) => {
    socket.pause();
    accepted.push(socket);
  });
  const port = await listen(server);
  let upstream: Socket | undefined;
  let clientLeft = false;
  const proxy = net.createServer({ allowHalfOpen: true }, (down) => {
    const up = closeAfterTest(net.connect(port, HOST));
    upstream = up;
    down.on('data', (chunk) => up.write(chunk));
    up.on('data', (chunk) => down.write(chunk));
    down.on('end', () => {
      clientLeft = true;
      if (!finLate && !finNever) up.end();
      // The proxy's own side toward the client closes: only the server's socket is in question.
      if (finNever) down.end();
    });
  });
  const proxyPort = await listen(proxy);
  const client = tlsClient(proxyPort);
  await waitFor(client, 'secureConnect');
  client.end(Buffer.alloc(bytes, 0x63));
  await until(() => accepted.length === 1, 2000, 'the TLS server accepts');
  const serverSocket = accepted[0]!;
  if (finLate || finNever) {
    await until(
      () =>
        clientLeft &&
        (unconsumedFinBytes(serverSocket) !== -1 ||
          serverSocket.readableLength >= serverSocket.readableHighWaterMark),
      5000,
      'the paused server stops reading',
    );
    if (!finNever) upstream!.end();
  }
  return { port, serverSocket };
}

describe.skipIf(process.platform !== 'linux')('a paused TLS reader (Linux: /proc)', () => {
  // 20 KB: read to the FIN; 120 KB: reading stopped with data and FIN in the kernel; 80 KB and
  // the FIN after the reader stopped: the kernel holds it (alone on Node 22+, where Node ended
  // at close_notify; behind data on Node 20, whose high-water mark is lower).
  for (const [bytes, finLate] of [
    [20_000, false],
    [120_000, false],
    [80_000, true],
  ] as const) {
    const name = `${bytes} bytes, FIN ${finLate ? 'after the reader stopped' : 'at once'}`;
    it(`is reported with the kind the kernel shows (${name})`, async () => {
      // A fixed interval: the kind is the question here, not how 'auto' spaces checks on a host
      // whose table makes each one slow (kernel-check-schedule.test.ts).
      const monitor = startMonitor({ kernelCheckIntervalMs: 100 });
      const { port, serverSocket } = await pausedTlsReader(bytes, finLate);
      const leak = await nextLeak(monitor, (l) => l.localPort === port, 10_000);
      const row = (await tcpRows('self')).find(
        (r) => r.localPort === port && r.remotePort === serverSocket.remotePort,
      );
      expect(row?.state).toBe('CLOSE_WAIT');
      expect(leak.kind).toBe(kernelHoldsFin(row!) ? 'unread-fin' : 'unconsumed-fin');
      if (finLate) expect(leak.kind).toBe('unread-fin');
    });
  }

  it('is not reported while the peer has sent close_notify but no FIN (not CLOSE_WAIT)', async () => {
    const monitor = startMonitor({ kernelCheckIntervalMs: 100 });
    const { port, serverSocket } = await pausedTlsReader(80_000, false, true);
    await expectNoLeak(monitor, GRACE_MS * 4);
    const row = (await tcpRows('self')).find(
      (r) => r.localPort === port && r.remotePort === serverSocket.remotePort,
    );
    expect(row?.state).toBe('ESTABLISHED');
  });
});
