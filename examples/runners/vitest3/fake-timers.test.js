// A leak under fake timers (default settings, still fake when the check runs) still fails.
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, it, vi } from 'vitest';

const HOST = '127.0.0.1';
const server = net.createServer((socket) => socket.end('hello\n'));
let client;

// Runs after every test's leak check: it only lets the test process exit.
afterAll(() => {
  vi.useRealTimers();
  client?.destroy();
  server.close();
});

it('leaky under fake timers', async () => {
  vi.useFakeTimers();
  server.listen(0, HOST);
  await once(server, 'listening');
  client = net.connect({ port: server.address().port, host: HOST, allowHalfOpen: true });
  client.resume();
  await once(client, 'end');
});
