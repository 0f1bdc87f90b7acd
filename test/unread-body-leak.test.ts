import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { SocketLeak } from '../src/index.js';
import { expectOnTime, GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { HOST, listen, tlsCert, tlsKey, unreadBodyBytes, waitFor } from './fixtures/net.js';

/** Answers `GET /bytes/N` with N bytes and `Connection: close`. */
async function bodyServer(): Promise<string> {
  const server = http.createServer((req, res) => {
    const size = Number(new URL(req.url ?? '/', 'http://x').pathname.split('/')[2] ?? 0);
    res.setHeader('connection', 'close');
    res.end(Buffer.alloc(size, 0x61));
  });
  return `http://${HOST}:${await listen(server)}`;
}

// The sweep adds up to one interval (graceMs / 4) before the grace starts.
const SWEEP_MS = GRACE_MS / 4;

describe('bodies nobody reads (unconsumed-fin)', () => {
  it('reports an unread fetch() body, with the request and the fetch() call site', async () => {
    const monitor = startMonitor();
    const base = await bodyServer();
    const url = `${base}/bytes/${unreadBodyBytes('fetch')}?q=1`;
    const response = await fetch(url);

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'client',
      remoteAddress: HOST,
      request: { method: 'GET', url: url.replace('?q=1', '') }, // the query is not kept
    });
    expect(leak.unreadBytes).toBeGreaterThan(0);
    // Node's fetch dispatches through the undici package once that package has installed the
    // shared global dispatcher, so the site may be undici's frame; appSite is always ours.
    expect(leak.appSite).toContain('unread-body-leak.test.ts');
    expectOnTime(leak, GRACE_MS, SWEEP_MS);

    const resolved = waitFor<[SocketLeak]>(monitor, 'leak-resolved');
    await response.arrayBuffer(); // reading it at last closes the socket
    const [resolvedLeak] = await resolved;
    expect(resolvedLeak.id).toBe(leak.id);
    expect(monitor.leaks()).toEqual([]);
  });

  it('reports an unread undici.request() body', async () => {
    const monitor = startMonitor();
    const base = await bodyServer();
    const { body } = await request(`${base}/bytes/${unreadBodyBytes('undici')}`, {
      method: 'GET',
    });

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'client',
      request: { method: 'GET', url: `${base}/bytes/${unreadBodyBytes('undici')}` },
    });
    // The undici package is not Node's internals: its frame is the site, the test is appSite.
    expect(leak.site).toContain('node_modules/undici');
    expect(leak.appSite).toContain('unread-body-leak.test.ts');
    expectOnTime(leak, GRACE_MS, SWEEP_MS);

    const resolved = waitFor(monitor, 'leak-resolved');
    await body.arrayBuffer();
    await resolved;
  });

  it('reports an unread http.get() response, with the ClientRequest', async () => {
    const monitor = startMonitor();
    const base = await bodyServer();
    const path = `/bytes/${unreadBodyBytes('http')}`;
    const responses: IncomingMessage[] = [];
    http.get(`${base}${path}`, (response) => responses.push(response)); // never read

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'unconsumed-fin',
      direction: 'client',
      request: { method: 'GET', url: `${base}${path}` },
    });
    expect(leak.stack).toContain('unread-body-leak.test.ts');
    expectOnTime(leak, GRACE_MS, SWEEP_MS);

    const resolved = waitFor(monitor, 'leak-resolved');
    responses[0]!.resume();
    await resolved;
  });

  // Node 20 never announces https Agent sockets (tls.connect): they are found through the
  // ClientRequest, so the leak is named by its request rather than by a stack.
  it('reports an unread https.get() response on an https.Agent socket', async () => {
    const monitor = startMonitor();
    const server = https.createServer({ key: tlsKey, cert: tlsCert }, (_req, res) => {
      res.setHeader('connection', 'close');
      res.end(Buffer.alloc(unreadBodyBytes('https'), 0x61));
    });
    const port = await listen(server);
    const responses: IncomingMessage[] = [];
    https.get({ host: HOST, port, path: '/secure', ca: tlsCert, servername: 'localhost' }, (res) =>
      responses.push(res),
    );

    const leak = await nextLeak(monitor, (l) => l.direction === 'client');
    expect(leak).toMatchObject({
      kind: 'unconsumed-fin',
      tls: true,
      remotePort: port,
      request: { method: 'GET', url: `https://${HOST}:${port}/secure` },
    });
    const resolved = waitFor(monitor, 'leak-resolved');
    responses[0]!.resume();
    await resolved;
  });
});
