import http from 'node:http';
import net, { type Socket } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import supertest from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  assertNoSocketLeaks,
  SocketLeakError,
  SocketMonitorStoppedError,
  socketLeakScope,
} from '../src/integrations/testing.js';
// Registers toHaveNoSocketLeaks() (a no-op when the dogfood setup file already loaded it).
import '../src/integrations/vitest.js';
import { startMonitor } from './fixtures/monitor.js';
import {
  closeAfterTest,
  connect,
  HOST,
  listen,
  unreadBodyBytes,
  until,
  waitFor,
} from './fixtures/net.js';

/** These assertions are meant to fail; each failure waits this long first. */
const FAIL_FAST = { timeoutMs: 100 } as const;

/** A client the server hangs up on and that never closes its side: half-closed. */
async function halfClosedClient(): Promise<Socket> {
  const port = await listen(net.createServer((socket) => socket.end()));
  const client = closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true }));
  client.resume();
  await waitFor(client, 'end');
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<SocketLeakError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(SocketLeakError);
  return error as SocketLeakError;
}

describe('socketLeakScope()', () => {
  it('blames only sockets created after it', async () => {
    const before = await halfClosedClient();
    const scope = socketLeakScope(FAIL_FAST);
    await scope.assert();
    // Unscoped, the same leak fails: the scope is what spared it.
    await rejection(assertNoSocketLeaks(FAIL_FAST));

    const inside = await halfClosedClient();
    const error = await rejection(scope.assert());
    expect(error.leaks.map((leak) => leak.localPort)).toEqual([inside.localPort]);
    expect(error.leaks[0]?.localPort).not.toBe(before.localPort);
  });

  it("'open': a shared server and a pooled keep-alive socket from before are not blamed", async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    const port = await listen(server);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<http.IncomingMessage>((resolve) =>
        http.get({ host: HOST, port, agent }, (response) => {
          response.resume();
          response.on('end', () => resolve(response));
        }),
      );
    const first = await get();

    const scope = socketLeakScope({ ...FAIL_FAST, mode: 'open' });
    const second = await get();
    expect(second.socket).toBe(first.socket); // the pooled socket, reused inside the scope
    await scope.assert();

    const client = await connect(port); // a new connection, left open
    const error = await rejection(scope.assert());
    expect(error.leaks.map((leak) => `${leak.kind}:${leak.direction}`).sort()).toEqual([
      'open:client',
      'open:server',
    ]);
    expect(error.leaks.find((leak) => leak.direction === 'client')?.localPort).toBe(
      client.localPort,
    );
    agent.destroy();
  });

  it('passes a clean scope in both modes', async () => {
    const scope = socketLeakScope();
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    const port = await listen(server);
    const client = await connect(port);
    client.resume();
    client.end('bye');
    await waitFor(client, 'close');
    await new Promise((resolve) => server.close(resolve));
    await scope.assert();
    await scope.assert({ mode: 'open' });
  });

  it("takes its options at creation; assert()'s override them for one call", async () => {
    const port = await listen(net.createServer((socket) => socket.resume()));
    const scope = socketLeakScope({ ...FAIL_FAST, mode: 'open' });
    await connect(port);
    await rejection(scope.assert());
    await scope.assert({ mode: 'close-wait' });
    expect(() => socketLeakScope({ mode: 'all' as 'open' })).toThrow(TypeError);
    await expect(scope.assert({ timeoutMs: Number.NaN })).rejects.toThrow(/"timeoutMs"/);
    // Creation options cannot change later: the scope has counted its sockets already.
    await expect(scope.assert({ monitor: startMonitor() } as object)).rejects.toThrow(
      /option "monitor" must be a known option/,
    );
  });

  it('uses the monitor it is given, and says so when that monitor was stopped', async () => {
    const monitor = startMonitor({ stacks: 'none' });
    const scope = socketLeakScope({ ...FAIL_FAST, monitor });
    await halfClosedClient();
    const error = await rejection(scope.assert());
    expect(error.leaks).toHaveLength(1);
    expect(error.message).toContain(
      "no creation stack: the monitor samples stacks; give it stacks: 'all'",
    );

    monitor.stop();
    const stopped = await scope.assert().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(stopped).toBeInstanceOf(SocketMonitorStoppedError);
    expect(stopped).toMatchObject({ code: 'ERR_CLOSEWAIT_MONITOR_STOPPED' });
    expect(() => socketLeakScope({ monitor })).toThrow(
      /option "monitor" must be a started monitor/,
    );
  });
});

describe('expect(scope).toHaveNoSocketLeaks()', () => {
  it('passes for a clean scope', async () => {
    const scope = socketLeakScope();
    const port = await listen(net.createServer((socket) => socket.end()));
    const client = closeAfterTest(net.connect({ port, host: HOST }));
    client.resume();
    await waitFor(client, 'close');
    await expect(scope).toHaveNoSocketLeaks();
  });

  it('fails with the leak list, and .not inverts it', async () => {
    const scope = socketLeakScope();
    await halfClosedClient();
    await expect(expect(scope).toHaveNoSocketLeaks(FAIL_FAST)).rejects.toThrow(
      /1 socket left half-closed[\s\S]*half-closed · client socket[\s\S]*testing-scope\.test\.ts:\d+/,
    );
    await expect(scope).not.toHaveNoSocketLeaks(FAIL_FAST);
  });

  it('rejects what is not a scope', async () => {
    await expect(expect({}).toHaveNoSocketLeaks()).rejects.toThrow(
      /option "expect\(scope\)" must be a scope from socketLeakScope\(\)/,
    );
  });
});

describe('supertest', () => {
  /** An upstream that answers with a body big enough to leave its FIN unconsumed if unread. */
  async function upstream(): Promise<string> {
    const size = unreadBodyBytes('fetch');
    const server = http.createServer((_req, res) => {
      res.setHeader('connection', 'close');
      res.end(Buffer.alloc(size, 0x61));
    });
    return `http://${HOST}:${await listen(server)}/`;
  }

  it('Express: clean requests pass, in both modes', async () => {
    const scope = socketLeakScope();
    const app = express();
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    for (let i = 0; i < 3; i++) await supertest(app).get('/').expect(200, 'ok');
    await scope.assert();
    await scope.assert({ mode: 'open' });
  });

  it('Fastify: clean requests pass, in both modes', async () => {
    const scope = socketLeakScope();
    const app = Fastify();
    app.get('/', async () => 'ok');
    await app.ready();
    for (let i = 0; i < 3; i++) await supertest(app.server).get('/').expect(200, 'ok');
    await app.close();
    await scope.assert();
    await scope.assert({ mode: 'open' });
  });

  it("Express: a route that never reads its upstream's body fails, naming the route's line", async () => {
    const witness = startMonitor(); // only to wait until the FIN has arrived
    const url = await upstream();
    const unread: Response[] = [];
    const scope = socketLeakScope();
    const app = express();
    app.get('/proxy', async (_req, res) => {
      const response = await fetch(url); // the leak: the body is never read
      unread.push(response);
      res.send(String(response.status));
    });
    await supertest(app).get('/proxy').expect(200, '200');
    await until(
      () => witness.sockets().some((socket) => socket.state === 'fin-unconsumed'),
      3000,
      "the upstream's FIN read but not consumed",
    );

    const error = await rejection(scope.assert(FAIL_FAST));
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'client',
      request: { method: 'GET', url },
    });
    expect(error.message).toMatch(/created at test\/testing-scope\.test\.ts:\d+/);
    await unread[0]!.arrayBuffer();
  });

  it('Fastify: a route that leaves an upstream connection half-closed fails', async () => {
    const port = await listen(net.createServer((socket) => socket.end('bye')));
    const scope = socketLeakScope();
    const app = Fastify();
    app.get('/greeting', async () => {
      const upstreamSocket = closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true }));
      upstreamSocket.setEncoding('utf8');
      let text = '';
      upstreamSocket.on('data', (chunk: string) => {
        text += chunk;
      });
      await waitFor(upstreamSocket, 'end'); // the leak: never ended after the upstream hung up
      return text;
    });
    await app.ready();
    await supertest(app.server).get('/greeting').expect(200, 'bye');

    const error = await rejection(scope.assert(FAIL_FAST));
    expect(error.leaks).toHaveLength(1);
    expect(error.leaks[0]).toMatchObject({
      kind: 'half-closed',
      direction: 'client',
      remotePort: port,
    });
    expect(error.message).toMatch(/created at test\/testing-scope\.test\.ts:\d+/);
    await app.close();
  });
});
