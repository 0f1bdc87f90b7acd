import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { afterAll, it } from 'vitest';

const HOST = '127.0.0.1';
const servers: net.Server[] = [];
const clients: Socket[] = [];

/** Says hello and hangs up: each client must then close its side too. */
async function helloServer(): Promise<number> {
  const server = net.createServer((socket) => socket.end('hello\n'));
  servers.push(server);
  server.listen(0, HOST);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

// Runs after every test's leak check; it only lets this example's process exit.
afterAll(() => {
  for (const client of clients) client.destroy();
  for (const server of servers) server.close();
});

it('leaky: reads the greeting but never closes its side', async () => {
  const port = await helloServer();
  const client = net.connect({ port, host: HOST, allowHalfOpen: true });
  clients.push(client);
  client.resume();
  await once(client, 'end'); // the server hung up; this socket now sits in CLOSE_WAIT
});

it('clean: closes its side when the server hangs up', async () => {
  const port = await helloServer();
  const client = net.connect({ port, host: HOST }); // allowHalfOpen false: Node ends our side
  clients.push(client);
  client.resume();
  await once(client, 'close');
});
