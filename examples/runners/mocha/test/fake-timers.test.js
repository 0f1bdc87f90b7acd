// Under @sinonjs/fake-timers (what sinon.useFakeTimers() uses), still installed when the check
// runs: a leak still fails the test, and the check does not hang. Everything but setImmediate and
// hrtime is faked: Node's own socket code needs those two to make progress at all.
const { once } = require('node:events');
const net = require('node:net');
const assert = require('node:assert/strict');
const diagnosticsChannel = require('node:diagnostics_channel');
const FakeTimers = require('@sinonjs/fake-timers');

const HOST = '127.0.0.1';
const server = net.createServer((socket) => socket.end('hello\n'));
let client;
let clock;

describe('fake timers', () => {
  // Runs after every test's leak check: it only lets the test process exit.
  after(() => {
    clock?.uninstall();
    client?.destroy();
    server.close();
  });

  it('leaky under fake timers', async () => {
    clock = FakeTimers.install({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    client = net.connect({ port: server.address().port, host: HOST, allowHalfOpen: true });
    client.resume();
    await once(client, 'end');
  });
});

it('shares one monitor with the other test files', () => {
  // Every test file of this worker is checked by the same monitor: one subscriber, not one per file.
  const channel = diagnosticsChannel.channel('net.client.socket');
  assert.equal(channel._subscribers?.length, 1);
});
