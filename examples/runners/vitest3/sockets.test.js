// Five tests, as a user's suite would have them: closewait/vitest (vitest.config.js) checks each.
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

const HOST = '127.0.0.1';
const servers = [];
const clients = [];

/** A server that says hello and hangs up: each client must then close its side too. */
async function helloServer() {
  const server = net.createServer((socket) => socket.end('hello\n'));
  servers.push(server);
  server.listen(0, HOST);
  await once(server, 'listening');
  return server.address().port;
}

/** A client that reads until the server hangs up and leaves its own side open (CLOSE_WAIT). */
async function halfClosedClient(port) {
  const client = net.connect({ port, host: HOST, allowHalfOpen: true });
  clients.push(client);
  client.resume();
  await once(client, 'end');
  return client;
}

// Runs after every test's leak check: it only lets the test process exit.
afterAll(() => {
  for (const client of clients) client.destroy();
  for (const server of servers) server.close();
});

it('leaky: never closes its side', async () => {
  const client = await halfClosedClient(await helloServer());
  expect(client.readyState).toBe('writeOnly');
});

describe('closes its socket in its own afterEach', () => {
  let client;
  afterEach(() => client?.destroy());

  it('cleans up after itself', async () => {
    client = await halfClosedClient(await helloServer());
  });
});

it('clean: closes when the server hangs up', async () => {
  const client = net.connect({ port: await helloServer(), host: HOST });
  client.resume();
  await once(client, 'close');
});

it('still runs after a failure', () => {
  expect(1 + 1).toBe(2);
});
