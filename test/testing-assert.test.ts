import http, { type IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { TrackedSocketState } from '../src/index.js';
import {
  assertNoSocketLeaks,
  type SocketLeakCheckOptions,
  SocketLeakError,
} from '../src/integrations/testing.js';
import { processCloseWaitRows } from '../src/kernel/process-sockets.js';
import { startMonitor } from './fixtures/monitor.js';
import {
  closeAfterTest,
  connect,
  HOST,
  listen,
  pausedReaderLeak,
  tlsCert,
  tlsClient,
  tlsKey,
  unreadBodyBytes,
  until,
  waitFor,
} from './fixtures/net.js';

/** Short: these assertions are meant to fail, and each failure waits this long first. */
const FAIL_FAST = { timeoutMs: 100 } as const;

/** The line after the call, as the stack reports it (Vitest maps it back to this source). */
function nextLine(): number {
  const caller = new Error().stack?.split('\n')[2] ?? '';
  return Number(/:(\d+):\d+\)?$/.exec(caller)?.[1]) + 1;
}

/**
 * A second monitor that only watches, so a test can wait until a socket is in the state under
 * test before asserting (assertions judge the state at the time they run).
 */
function watcher() {
  const monitor = startMonitor();
  return (state: TrackedSocketState, direction: 'server' | 'client') =>
    until(
      () => monitor.sockets().some((s) => s.state === state && s.direction === direction),
      3000,
      `a ${direction} socket ${state}`,
    );
}

async function leakError(options?: SocketLeakCheckOptions): Promise<SocketLeakError> {
  const error = await assertNoSocketLeaks(options).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(SocketLeakError);
  expect(error).toMatchObject({ code: 'ERR_CLOSEWAIT_SOCKET_LEAK' });
  return error as SocketLeakError;
}

const here = 'testing-assert.test.ts';

/**
 * The failure's creation stack starts at the app: Node's and undici's frames above the first app
 * frame are one line, and the test's own line follows it at once.
 */
function expectStackStartsAtApp(message: string, appLine: string): void {
  const lines = message.split('\n');
  const start = lines.findIndex((line) => line.trim() === 'creation stack:');
  expect(lines[start + 1]).toMatch(/^\s+… \d+ frames? of Node$/);
  expect(lines[start + 2]).toContain(appLine);
}

describe('assertNoSocketLeaks() fails, naming the line that created the socket', () => {
  it('raw net, server side: a socket the app never ends after the client hung up', async () => {
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    const line = nextLine();
    const port = await listen(server);
    const client = await connect(port);
    client.end();
    await until(() => accepted.length === 1, 2000, 'accept');
    await waitFor(accepted[0]!, 'end');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'half-closed',
      direction: 'server',
      localPort: port,
      remotePort: client.localPort,
    });
    expect(error.message).toContain(`1) half-closed · server socket ${HOST}:${port} <- ${HOST}:`);
    expect(error.message).toContain('never called end() or destroy()');
    expect(error.message).toContain('listen() at test/fixtures/net.ts');
    expect(error.message).toContain(`in the test at test/${here}:${line}:`);
  });

  it('raw net, client side: a socket the app never ends after the server hung up', async () => {
    const server = net.createServer((socket) => socket.end('bye'));
    const port = await listen(server);
    const line = nextLine();
    const client = closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true }));
    client.resume();
    await waitFor(client, 'end');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'half-closed',
      direction: 'client',
      remotePort: port,
    });
    expect(error.message).toContain(`half-closed · client socket ${HOST}:${client.localPort} -> `);
    expect(error.message).toContain(`created at test/${here}:${line}:`);
  });

  it("raw net, server side: data never read, so the peer's FIN is never consumed", async () => {
    const waitUntil = watcher();
    const server = net.createServer(() => {}); // never reads
    const line = nextLine();
    const port = await listen(server);
    const client = await connect(port);
    client.end('PING\r\n');
    await waitUntil('fin-unconsumed', 'server');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'server',
      unreadBytes: 6,
    });
    expect(error.message).toContain('6 bytes in front of its FIN were never read');
    expect(error.message).toContain(`${here}:${line}:`);
  });

  it('raw net, client side: a greeting never read before the server hung up', async () => {
    const waitUntil = watcher();
    const server = net.createServer((socket) => socket.end('HELLO\r\n'));
    const port = await listen(server);
    const line = nextLine();
    closeAfterTest(net.createConnection({ port, host: HOST })); // no reader: the FIN waits
    await waitUntil('fin-unconsumed', 'client');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({ kind: 'unconsumed-fin', direction: 'client' });
    expect(error.message).toContain(`created at test/${here}:${line}:`);
  });

  it('raw net, server side: end() stuck behind data the peer never reads', async () => {
    const waitUntil = watcher();
    const server = net.createServer((socket) => socket.write(Buffer.alloc(16 * 1024 * 1024)));
    const line = nextLine();
    const port = await listen(server);
    const client = await connect(port);
    client.pause();
    client.end(); // the server's Node ends its side, behind 16 MiB the client never reads
    await waitUntil('peer-ended', 'server');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({ kind: 'end-stuck', direction: 'server' });
    expect(error.leaks[0]!.pendingWriteBytes).toBeGreaterThan(0);
    expect(error.message).toContain("this side's FIN waits behind");
    expect(error.message).toContain(`${here}:${line}:`);
  });

  it('TLS, server side: a TLSSocket the app never ends', async () => {
    const accepted: Socket[] = [];
    const server = tls.createServer(
      { key: tlsKey, cert: tlsCert, allowHalfOpen: true },
      (socket) => {
        accepted.push(socket);
        socket.write('ready');
      },
    );
    const line = nextLine();
    const port = await listen(server);
    const client = tlsClient(port);
    await waitFor(client, 'data');
    client.end();
    await waitFor(accepted[0]!, 'end');

    const error = await leakError(FAIL_FAST);
    const serverLeaks = error.leaks.filter((leak) => leak.direction === 'server');
    expect(serverLeaks).toHaveLength(1);
    expect(serverLeaks[0]).toMatchObject({ kind: 'half-closed', tls: true, localPort: port });
    expect(error.message).toContain('half-closed · TLS server socket');
    expect(error.message).toContain(`${here}:${line}:`);
  });

  it("http 'upgrade': a socket handed over that the app never ends", async () => {
    const taken: Socket[] = [];
    const server = http.createServer();
    server.on('upgrade', (_request, socket: Socket) => {
      taken.push(socket);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n',
      );
    });
    const line = nextLine();
    const port = await listen(server);
    const client = await connect(port);
    client.write(
      'GET /chat?room=1 HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: chat\r\n\r\n',
    );
    await waitFor(client, 'data');
    client.end();
    await waitFor(taken[0]!, 'end');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'half-closed',
      direction: 'server',
      request: { method: 'GET', url: '/chat', handoff: 'upgrade' },
    });
    expect(error.message).toContain("request GET /chat (handed over on 'upgrade')");
    expect(error.message).not.toContain('room=1');
    expect(error.message).toContain(`${here}:${line}:`);
  });

  it('undici: a response body never read', async () => {
    const waitUntil = watcher();
    const size = unreadBodyBytes('undici');
    const server = http.createServer((_req, res) => {
      res.setHeader('connection', 'close');
      res.end(Buffer.alloc(size, 0x61));
    });
    const url = `http://${HOST}:${await listen(server)}/bytes`;
    const line = nextLine();
    const { body } = await request(url);
    await waitUntil('fin-unconsumed', 'client');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'client',
      request: { method: 'GET', url },
    });
    expect(error.message).toContain(`request GET ${url}`);
    // The creation site is undici's frame; the test's line is in the stack below it.
    expect(error.message).toContain(`${here}:${line}:`);
    expectStackStartsAtApp(error.message, `${here}:${line}:`);
    await body.arrayBuffer(); // read at last: the socket closes, nothing leaks past the test
  });

  it('fetch(): a response body never read', async () => {
    const waitUntil = watcher();
    const size = unreadBodyBytes('fetch');
    const server = http.createServer((_req, res) => {
      res.setHeader('connection', 'close');
      res.end(Buffer.alloc(size, 0x61));
    });
    const url = `http://${HOST}:${await listen(server)}/bytes`;
    const line = nextLine();
    const response = await fetch(url);
    await waitUntil('fin-unconsumed', 'client');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({ kind: 'unconsumed-fin', direction: 'client' });
    expect(error.leaks[0]!.appSite).toContain(`${here}:${line}:`);
    expect(error.message).toContain(`${here}:${line}:`);
    expectStackStartsAtApp(error.message, `${here}:${line}:`);
    await response.arrayBuffer();
  });

  it('node:http: a response never read', async () => {
    const waitUntil = watcher();
    const size = unreadBodyBytes('http');
    const server = http.createServer((_req, res) => {
      res.setHeader('connection', 'close');
      res.end(Buffer.alloc(size, 0x61));
    });
    const port = await listen(server);
    const responses: IncomingMessage[] = [];
    const line = nextLine();
    http.get({ host: HOST, port, path: '/bytes' }, (response) => responses.push(response));
    await waitUntil('fin-unconsumed', 'client');

    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({ kind: 'unconsumed-fin', direction: 'client' });
    expect(error.message).toContain(`${here}:${line}:`);
    responses[0]!.resume();
    await waitFor(responses[0]!, 'end');
  });

  it("mode 'open': a socket nobody closed, which 'close-wait' lets pass", async () => {
    const server = net.createServer((socket) => socket.resume());
    const port = await listen(server);
    const line = nextLine();
    const client = await connect(port);

    await assertNoSocketLeaks(FAIL_FAST); // both sides open: not half-closed
    const error = await leakError({ ...FAIL_FAST, mode: 'open' });
    const clientLeak = error.leaks.find((leak) => leak.direction === 'client');
    expect(clientLeak).toMatchObject({ kind: 'open', localPort: client.localPort });
    expect(error.leaks.filter((leak) => leak.direction === 'server')).toHaveLength(1);
    expect(error.message).toContain('2 sockets left open');
    // Created by the connect() fixture: the fixture's line, then the test's.
    expect(error.message).toContain('created at test/fixtures/net.ts');
    expect(error.message).toContain(`in the test at test/${here}:${line}:`);
    expect(clientLeak?.testSite).toContain(`${here}:${line}:`);
  });
});

/** `count` half-closed server sockets of one server: clients that hung up, never answered. */
async function halfClosedServerSockets(count: number) {
  const accepted: Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  const port = await listen(server);
  for (let i = 0; i < count; i++) (await connect(port)).end();
  await until(() => accepted.length === count, 3000, `${count} accepted`);
  await Promise.all(accepted.map((socket) => (socket.readableEnded ? [] : waitFor(socket, 'end'))));
  return { server, port };
}

describe('the SocketLeakError message stays readable', () => {
  it('lists at most 20 sockets and counts the rest; error.leaks has them all', async () => {
    await halfClosedServerSockets(25);
    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(25);
    expect(error.message).toMatch(/^closewait: 25 sockets left half-closed/);
    expect(error.message).toContain('\n20) half-closed · server socket');
    expect(error.message).not.toContain('\n21) ');
    expect(error.message).toContain(
      '\n… and 5 more sockets, not listed here (all are in error.leaks)',
    );
  });

  it('counts in thousands with separators', async () => {
    const leak = {
      kind: 'half-closed',
      direction: 'server',
      testSite: undefined,
      stack: undefined,
    } as unknown as ConstructorParameters<typeof SocketLeakError>[0][number];
    const error = new SocketLeakError(
      Array.from({ length: 2000 }, () => leak),
      'close-wait',
      500,
    );
    expect(error.message).toContain('… and 1,980 more sockets');
    expect(error.message.split('\n').length).toBeLessThan(200);
  });

  it('names a server closed before the assertion by the address it listened on', async () => {
    const { server, port } = await halfClosedServerSockets(1);
    // Stops listening; the leaked connection stays. address() is null from here on.
    server.close();
    expect(server.address()).toBeNull();
    const error = await leakError(FAIL_FAST);
    expect(error.message).toContain(`accepted by server ${HOST}:${port}, listen() at`);
    expect(error.message).not.toContain('accepted by server ?');
  });
});

/** Until the kernel shows the server side of a paused-reader leak in CLOSE_WAIT. */
async function kernelShowsCloseWait(localPort: number): Promise<void> {
  let rows = await processCloseWaitRows('self');
  const deadline = Date.now() + 2000;
  while (!rows.some((row) => row.localPort === localPort)) {
    if (Date.now() > deadline) throw new Error(`no CLOSE_WAIT row for port ${localPort}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    rows = await processCloseWaitRows('self');
  }
}

describe.skipIf(process.platform !== 'linux')('what only the kernel sees (Linux: /proc)', () => {
  it('a FIN the kernel holds behind bytes a paused socket never read', async () => {
    const line = nextLine();
    const { serverSocket, port } = await pausedReaderLeak();
    await kernelShowsCloseWait(port);
    // Node has not read the FIN, so its state says 'open': the kernel says CLOSE_WAIT.
    expect(serverSocket.readableEnded).toBe(false);
    const error = await leakError(FAIL_FAST);
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'unread-fin',
      direction: 'server',
      localPort: port,
    });
    expect(error.message).toContain(`in the test at test/${here}:${line}:`);
    // Read at last: the FIN reaches Node, and the socket is no longer blamed.
    serverSocket.resume();
    serverSocket.on('end', () => serverSocket.end());
    await assertNoSocketLeaks();
  });
});

describe("what 'open' sees and 'close-wait' does not", () => {
  it('a paused socket whose peer has not closed', async () => {
    const server = net.createServer((socket) => socket.pause());
    const port = await listen(server);
    const client = await connect(port);
    client.write('hello');
    await assertNoSocketLeaks(FAIL_FAST);
    const error = await leakError({ ...FAIL_FAST, mode: 'open' });
    const found = error.leaks.find((leak) => leak.direction === 'client');
    expect(found).toMatchObject({ kind: 'open', localPort: client.localPort });
  });
});

describe('assertNoSocketLeaks() passes for clean tests', () => {
  it("'close-wait': sockets the peer ended are ended in turn, bodies are read", async () => {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    const port = await listen(server);
    for (let i = 0; i < 5; i++) {
      const client = await connect(port);
      client.resume();
      client.end('bye');
    }
    const web = http.createServer((_req, res) => res.end(Buffer.alloc(unreadBodyBytes('fetch'))));
    const url = `http://${HOST}:${await listen(web)}/`;
    await (await fetch(url)).arrayBuffer();
    await (await request(url)).body.arrayBuffer();
    await assertNoSocketLeaks();
  });

  it("'open': every socket closed, servers closed", async () => {
    const server = net.createServer((socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    const port = await listen(server);
    const clients = [await connect(port), await connect(port)];
    for (const client of clients) {
      client.resume();
      client.end();
    }
    await Promise.all(clients.map((client) => waitFor(client, 'close')));
    await new Promise((resolve) => server.close(resolve));
    await assertNoSocketLeaks({ mode: 'open' });
  });

  it('waits for sockets that are closing anyway, and returns as soon as they are gone', async () => {
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    const port = await listen(server);
    const client = await connect(port);
    client.end();
    await until(() => accepted.length === 1, 2000, 'accept');
    await waitFor(accepted[0]!, 'end');

    setTimeout(() => accepted[0]!.end(), 100); // the app closes its side, a little late
    const started = performance.now();
    await assertNoSocketLeaks({ timeoutMs: 2000 });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(90);
    expect(elapsed).toBeLessThan(1000);
  });

  it('fails only once timeoutMs has passed', async () => {
    const accepted: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
    const port = await listen(server);
    const client = await connect(port);
    client.end();
    await until(() => accepted.length === 1, 2000, 'accept');
    await waitFor(accepted[0]!, 'end');

    const started = performance.now();
    const error = await leakError({ timeoutMs: 300 });
    const elapsed = performance.now() - started;
    expect(error.message).toContain('still there after waiting 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(300 + 500);
  });
});

describe('ignore', () => {
  /** A client the server hangs up on, left half-closed: what a long-lived pool looks like. */
  async function longLivedClient(port: number): Promise<Socket> {
    const client = closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true }));
    client.resume();
    await waitFor(client, 'end');
    return client;
  }

  async function serverThatHangsUp(): Promise<number> {
    return listen(net.createServer((socket) => socket.end()));
  }

  it('by site: a string found in the site or stack, or a RegExp', async () => {
    const port = await serverThatHangsUp();
    await longLivedClient(port);
    await leakError(FAIL_FAST);
    await assertNoSocketLeaks({ ...FAIL_FAST, ignore: { sites: ['longLivedClient'] } });
    // A global RegExp keeps lastIndex between tests; the assertion must not depend on it.
    const global = /longLived\w+/g;
    await assertNoSocketLeaks({ ...FAIL_FAST, ignore: { sites: [global] } });
    await assertNoSocketLeaks({ ...FAIL_FAST, ignore: { sites: [global] } });
    await leakError({ ...FAIL_FAST, ignore: { sites: [/someOtherHelper/] } });
  });

  it('by port, local or remote', async () => {
    const port = await serverThatHangsUp();
    const client = await longLivedClient(port);
    await leakError(FAIL_FAST);
    await assertNoSocketLeaks({ ...FAIL_FAST, ignore: { ports: [port] } });
    await assertNoSocketLeaks({ ...FAIL_FAST, ignore: { ports: [client.localPort!] } });
    await leakError({ ...FAIL_FAST, ignore: { ports: [1] } });
  });

  it('by predicate on the socket detail', async () => {
    const port = await serverThatHangsUp();
    await longLivedClient(port);
    const error = await leakError({
      ...FAIL_FAST,
      ignore: { match: (socket) => socket.direction === 'server' },
    });
    expect(error.leaks).toHaveLength(1);
    await assertNoSocketLeaks({
      ...FAIL_FAST,
      ignore: { match: (socket) => socket.remotePort === port },
    });
  });
});

describe('options', () => {
  it.each([
    [{ mode: 'closed' }, /option "mode" must be 'close-wait' or 'open'; received "closed"/],
    [{ timeoutMs: -1 }, /option "timeoutMs" must be .*; received -1/],
    [{ timeout: 100 }, /option "timeout" must be a known option/],
    [{ ignore: [] }, /option "ignore" must be an object/],
    [{ ignore: { site: ['x'] } }, /option "ignore.site" must be a known option/],
    [{ ignore: { sites: [42] } }, /option "ignore.sites\[0\]" must be .*; received 42/],
    [{ ignore: { ports: [80, 70000] } }, /option "ignore.ports\[1\]" must be .*; received 70000/],
    [{ ignore: { match: 'yes' } }, /option "ignore.match" must be a function/],
    [{ monitor: {} }, /option "monitor" must be a SocketMonitor/],
  ])('rejects %j with a TypeError naming it', async (options, message) => {
    const rejection = assertNoSocketLeaks(options as SocketLeakCheckOptions);
    await expect(rejection).rejects.toThrow(TypeError);
    await expect(rejection).rejects.toThrow(message);
  });
});
