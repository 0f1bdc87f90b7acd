// Run with fakeTimers: { enableGlobally: true } (jest.config.cjs): a leak still fails the test,
// and the check does not wait on the fake clock.
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, expect, it } from '@jest/globals';

const HOST = '127.0.0.1';
const server = net.createServer((socket) => socket.end('hello\n'));
let client;

// Runs after every test's leak check: it only lets the test process exit.
afterAll(() => {
  client?.destroy();
  server.close();
});

it('leaky under fake timers', async () => {
  server.listen(0, HOST);
  await once(server, 'listening');
  client = net.connect({ port: server.address().port, host: HOST, allowHalfOpen: true });
  client.resume();
  await once(client, 'end');
});

it('shares one monitor with the other test files', () => {
  // Every test file of this worker is checked by the same monitor: one subscriber, not one per file.
  const channel = diagnosticsChannel.channel('net.client.socket');
  expect(channel._subscribers?.length).toBe(1);
});
