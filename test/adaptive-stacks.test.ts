import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { nextLeak, startMonitor } from './fixtures/monitor.js';
import { closeAfterTest, HOST, listen, unreadBodyBytes } from './fixtures/net.js';

/** Never sampled by chance in a test's lifetime; only the adaptive rule can give a stack. */
const RARE = { sampleRate: 1e-9 };

describe('adaptive stack sampling', () => {
  it('after a client leak with no stack, the next client sockets get one', async () => {
    const monitor = startMonitor({ stacks: RARE });
    const server = net.createServer((socket) => socket.end());
    const port = await listen(server);
    const leakyClient = () =>
      closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true })).resume();

    const first = leakyClient();
    const unnamed = await nextLeak(monitor, (leak) => leak.localPort === first.localPort);
    expect(unnamed.stack).toBeUndefined();

    const second = leakyClient();
    const named = await nextLeak(monitor, (leak) => leak.localPort === second.localPort);
    expect(named.stack).toContain('adaptive-stacks.test.ts');
    expect(named.site).toContain('adaptive-stacks.test.ts');
  });

  it('after an unnamed fetch() leak, later requests to that origin get stacks', async () => {
    const monitor = startMonitor({ stacks: RARE });
    const server = http.createServer((_req, res) => {
      res.setHeader('connection', 'close');
      res.end(Buffer.alloc(unreadBodyBytes('fetch')));
    });
    const base = `http://${HOST}:${await listen(server)}`;
    const firstResponse = await fetch(`${base}/first`);
    const unnamed = await nextLeak(
      monitor,
      (leak) => leak.request?.url.endsWith('/first') === true,
    );
    expect(unnamed.stack).toBeUndefined();

    const secondResponse = await fetch(`${base}/second`);
    const named = await nextLeak(monitor, (leak) => leak.request?.url.endsWith('/second') === true);
    expect(named.appSite).toContain('adaptive-stacks.test.ts');
    await Promise.all([firstResponse.arrayBuffer(), secondResponse.arrayBuffer()]);
  });

  it("'none' captures no stack, ever", async () => {
    const monitor = startMonitor({ stacks: 'none' });
    const server = net.createServer((socket) => socket.end());
    const port = await listen(server);
    for (let i = 0; i < 2; i++) {
      const client = closeAfterTest(
        net.connect({ port, host: HOST, allowHalfOpen: true }),
      ).resume();
      const leak = await nextLeak(monitor, (l) => l.localPort === client.localPort);
      expect(leak.stack).toBeUndefined();
    }
  });
});
