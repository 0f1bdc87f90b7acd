import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { expectOnTime, nextLeak, startMonitor } from './fixtures/monitor.js';
import { connect, listen, tlsCert, tlsClient, tlsKey, waitFor } from './fixtures/net.js';

const UPGRADE_REQUEST =
  'GET /chat?room=1 HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';

describe('sockets handed over by http.Server', () => {
  it("reports an 'upgrade' socket the app never closes, with the request that preceded it", async () => {
    const monitor = startMonitor();
    const server = http.createServer();
    const taken: Socket[] = [];
    server.on('upgrade', (_request, socket: Socket) => {
      taken.push(socket);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
    });
    const port = await listen(server);
    const client = await connect(port);
    client.write(UPGRADE_REQUEST);
    await waitFor(client, 'data');
    client.end();

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'half-closed',
      direction: 'server',
      localPort: port,
      remotePort: client.localPort,
      request: { method: 'GET', url: '/chat', handoff: 'upgrade' },
    });
    expect(leak.stack).toContain('http-upgrade-leak.test.ts');
    expectOnTime(leak);
    expect(String(monitor.report())).toContain("GET /chat on 'upgrade'");
  });

  it("reports a 'connect' (proxy tunnel) socket the app never closes", async () => {
    const monitor = startMonitor();
    const server = http.createServer();
    server.on('connect', (_request, socket: Socket) => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    });
    const port = await listen(server);
    const client = await connect(port);
    client.write('CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n');
    await waitFor(client, 'data');
    client.end();

    const leak = await nextLeak(monitor);
    expect(leak).toMatchObject({
      kind: 'half-closed',
      direction: 'server',
      request: { method: 'CONNECT', url: 'example.test:443', handoff: 'connect' },
    });
  });

  // https.Server, unlike http.Server, leaves allowHalfOpen false: Node closes an upgraded
  // TLSSocket itself when the peer's FIN is consumed. What leaks is one nobody reads.
  it("reports an https 'upgrade' socket nobody reads, on the TLSSocket", async () => {
    const monitor = startMonitor();
    const server = https.createServer({ key: tlsKey, cert: tlsCert });
    server.on('upgrade', (_request, socket: Socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
    });
    const port = await listen(server);
    const client = tlsClient(port);
    await waitFor(client, 'secureConnect');
    client.write(UPGRADE_REQUEST);
    await waitFor(client, 'data');
    client.end('a frame the server never reads');

    const leak = await nextLeak(monitor, (l) => l.direction === 'server');
    expect(leak).toMatchObject({
      kind: 'unconsumed-fin',
      tls: true,
      localPort: port,
      request: { method: 'GET', url: '/chat', handoff: 'upgrade' },
    });
    client.destroy();
  });
});
