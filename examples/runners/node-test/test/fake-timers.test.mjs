// Under node:test's mock timers, still on when the check runs: a leak still fails the test, and
// the check does not hang. setImmediate stays real: Node's own socket code needs it.

import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import net from 'node:net';
import { after, it, mock } from 'node:test';
import { checkSocketLeaks } from 'closewait/node-test';

checkSocketLeaks();

const HOST = '127.0.0.1';
const server = net.createServer((socket) => socket.end('hello\n'));
let client;

// Runs after every test's leak check: it only lets the test process exit.
after(() => {
  mock.timers.reset();
  client?.destroy();
  server.close();
});

it('leaky under fake timers', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  server.listen(0, HOST);
  await once(server, 'listening');
  client = net.connect({ port: server.address().port, host: HOST, allowHalfOpen: true });
  client.resume();
  await once(client, 'end');
});

it('shares one monitor with the other test files', () => {
  // node --test runs each file in a process of its own: one monitor there, not one per import.
  const channel = diagnosticsChannel.channel('net.client.socket');
  assert.equal(channel._subscribers?.length, 1);
});
