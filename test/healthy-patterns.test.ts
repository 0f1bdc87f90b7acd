import { once } from 'node:events';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { expectNoLeak, GRACE_MS, startMonitor } from './fixtures/monitor.js';
import { closeAfterTest, connect, HOST, listen, unreadBodyBytes } from './fixtures/net.js';

/** Observe for several grace periods plus sweeps: long enough for any false leak to appear. */
const WATCH_MS = GRACE_MS * 3;

async function bodyServer(): Promise<string> {
  const server = http.createServer((req, res) => {
    const size = Number(req.url?.split('/')[2] ?? 0);
    if (req.headers['x-close'] === '1') res.setHeader('connection', 'close');
    res.end(Buffer.alloc(size, 0x62));
  });
  return `http://${HOST}:${await listen(server)}`;
}

describe('healthy patterns raise nothing', () => {
  it('default sockets (allowHalfOpen: false) that the peer ends', async () => {
    const monitor = startMonitor();
    const server = net.createServer((socket) => socket.resume());
    const port = await listen(server);
    for (let i = 0; i < 10; i++) {
      const client = await connect(port);
      client.resume();
      client.end('hello');
    }
    await expectNoLeak(monitor, WATCH_MS);
  });

  it('keep-alive HTTP with http.Agent, sockets pooled between requests', async () => {
    const monitor = startMonitor();
    const base = await bodyServer();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    for (let i = 0; i < 10; i++) {
      const response = await new Promise<http.IncomingMessage>((resolve) =>
        http.get(`${base}/bytes/100`, { agent }, resolve),
      );
      response.resume();
      await once(response, 'end');
    }
    await expectNoLeak(monitor, WATCH_MS);
    agent.destroy();
  });

  it('keep-alive sockets pooled by undici, and bodies read at once', async () => {
    const monitor = startMonitor();
    const base = await bodyServer();
    const dispatcher = new Agent({ keepAliveTimeout: 10_000 });
    for (let i = 0; i < 10; i++) {
      const { body } = await request(`${base}/bytes/1000`, { dispatcher });
      await body.arrayBuffer();
      const response = await fetch(`${base}/bytes/1000`);
      await response.text();
    }
    await expectNoLeak(monitor, WATCH_MS);
    await dispatcher.close();
  });

  it('a body read later, but within graceMs', async () => {
    const monitor = startMonitor();
    const base = await bodyServer();
    const response = await fetch(`${base}/bytes/${unreadBodyBytes('fetch')}`, {
      headers: { 'x-close': '1' },
    });
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS / 2));
    await response.arrayBuffer();
    await expectNoLeak(monitor, WATCH_MS);
  });

  it('a body cancelled with res.body.cancel()', async () => {
    const monitor = startMonitor();
    const base = await bodyServer();
    const response = await fetch(`${base}/bytes/${unreadBodyBytes('fetch')}`, {
      headers: { 'x-close': '1' },
    });
    await response.body?.cancel();
    await expectNoLeak(monitor, WATCH_MS);
  });

  it('a server that starts reading a socket late, but within graceMs', async () => {
    const monitor = startMonitor();
    const server = net.createServer((socket) => {
      setTimeout(() => socket.resume(), GRACE_MS / 2);
    });
    const port = await listen(server);
    const client = await connect(port);
    client.resume();
    client.end('PING\r\n');
    await expectNoLeak(monitor, WATCH_MS);
  });

  it('a slow consumer that keeps reading a large body', async () => {
    const monitor = startMonitor();
    const server = net.createServer((socket) => {
      // Reads 1 KiB every GRACE_MS / 4: well under the grace, never done within the test.
      socket.pause();
      const timer = setInterval(() => {
        if (socket.read(1024) === null && socket.readableEnded) clearInterval(timer);
      }, GRACE_MS / 4);
      socket.on('close', () => clearInterval(timer));
    });
    const port = await listen(server);
    const client = await connect(port);
    client.resume();
    client.end(Buffer.alloc(48 * 1024));
    await expectNoLeak(monitor, WATCH_MS);
  });

  it("a slow consumer of a body larger than Node's buffer (the kernel's count stands still)", async () => {
    // Node reads a 64 KiB chunk, over its high-water mark, and then nothing from the kernel
    // while the app takes 1 KiB every GRACE_MS / 4 from Node's buffer: the FIN waits in the
    // kernel, its unread count unchanged for seconds, and the app is reading all along.
    // (Checks every 100 ms: 'auto' spaces them by their cost, and could look only once here.)
    const monitor = startMonitor({ kernelCheckIntervalMs: 100 });
    const server = net.createServer((socket) => {
      socket.pause();
      const timer = setInterval(() => socket.read(1024), GRACE_MS / 4);
      socket.on('close', () => clearInterval(timer));
    });
    const port = await listen(server);
    const client = await connect(port);
    client.resume();
    client.end(Buffer.alloc(120 * 1024));
    await expectNoLeak(monitor, WATCH_MS);
  });

  it('a server that writes for 3 s after the peer FIN, then ends', async () => {
    const monitor = startMonitor({ graceMs: 1000 });
    const ended: Socket[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.resume();
      socket.on('end', () => {
        let ticks = 0;
        const timer = setInterval(() => {
          socket.write('still working\n');
          if (++ticks === 30) {
            clearInterval(timer);
            socket.end();
            ended.push(socket);
          }
        }, 100);
      });
    });
    const port = await listen(server);
    const client = closeAfterTest(net.connect({ port, host: HOST }));
    client.resume();
    client.end();
    await expectNoLeak(monitor, 3600);
    expect(ended).toHaveLength(1);
  });
});
