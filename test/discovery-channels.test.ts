/**
 * Every channel discovery subscribes to (src/discovery/channels.ts), published on this Node line
 * as that file says, with the fields discovery reads. CI runs this on Node 20, 22, 24 and 26.
 */
import dc from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS } from '../src/discovery/channels.js';
import { announcesEveryConnect, listen } from './fixtures/net.js';

const subscriptions: Array<[string, (message: unknown) => void]> = [];
afterEach(() => {
  for (const [name, handler] of subscriptions.splice(0)) dc.unsubscribe(name, handler);
});

/** Messages published on `name` from now on. */
function record(name: string): unknown[] {
  const messages: unknown[] = [];
  const handler = (message: unknown) => messages.push(message);
  dc.subscribe(name, handler);
  subscriptions.push([name, handler]);
  return messages;
}

describe(`diagnostics channels on Node ${process.version}`, () => {
  it('net.server.socket and tracing:net.server.listen:asyncStart: every accept, every listen', async () => {
    const accepted = record(CHANNELS.serverSocket);
    const listened = record(CHANNELS.listen);
    const server = net.createServer();
    const port = await listen(server);
    expect(listened.map((m) => (m as { server: unknown }).server)).toContain(server);
    const client = net.connect(port, '127.0.0.1');
    await once(server, 'connection');
    expect(
      accepted.some((m) => (m as { socket: net.Socket }).socket.remotePort === client.localPort),
    ).toBe(true);
    client.destroy();
  });

  it('net.client.socket: net.connect() always; new Socket().connect() where detected', async () => {
    const announced = record(CHANNELS.clientSocket);
    const server = net.createServer((socket) => socket.destroy());
    const port = await listen(server);
    const viaConnect = net.connect(port, '127.0.0.1');
    const viaSocket = new net.Socket().connect(port, '127.0.0.1');
    const sockets = announced.map((m) => (m as { socket: net.Socket }).socket);
    expect(sockets).toContain(viaConnect);
    expect(sockets.includes(viaSocket)).toBe(announcesEveryConnect);
    viaConnect.destroy();
    viaSocket.destroy();
  });

  it('http.client.request.start: every ClientRequest, with its request', async () => {
    const started = record(CHANNELS.httpClientRequest);
    const server = http.createServer((_request, response) => response.end('ok'));
    const port = await listen(server);
    const request = http.get({ port, host: '127.0.0.1', agent: false });
    const [response] = (await once(request, 'response')) as [http.IncomingMessage];
    response.resume();
    expect(started.map((m) => (m as { request: unknown }).request)).toContain(request);
  });

  it("undici's channels behind fetch(): request:create (in the app's call), client:connected, client:sendHeaders", async () => {
    const created = record(CHANNELS.undiciRequestCreate);
    const connected = record(CHANNELS.undiciConnected);
    const sent = record(CHANNELS.undiciSendHeaders);
    let createdInCall = false;
    const onCreate = () => {
      createdInCall = new Error().stack?.includes('discovery-channels.test.ts') === true;
    };
    dc.subscribe(CHANNELS.undiciRequestCreate, onCreate);
    subscriptions.push([CHANNELS.undiciRequestCreate, onCreate]);
    const server = http.createServer((_request, response) => response.end('ok'));
    const port = await listen(server);
    const response = await fetch(`http://127.0.0.1:${port}/path`);
    await response.text();
    expect(created.length).toBeGreaterThan(0);
    expect(createdInCall).toBe(true);
    const { request } = created[0] as {
      request: { origin: unknown; path: unknown; method: unknown };
    };
    expect(request).toMatchObject({ method: 'GET', path: '/path' });
    expect(String(request.origin)).toContain(`127.0.0.1:${port}`);
    expect((connected[0] as { socket: net.Socket }).socket).toBeInstanceOf(net.Socket);
    expect(sent[0]).toMatchObject({ request, socket: expect.any(net.Socket) });
  });
});
