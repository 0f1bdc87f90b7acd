/**
 * Detection latency: `node bench/latency-child.js <graceMs> <leaks>`. For each leak, a client
 * here sends its FIN at a known time (t0) to a server here that never answers it; the time of
 * the server socket's 'leak' event minus t0 minus graceMs is the lateness. Leaks start 37 ms
 * apart so their deadlines interleave with each other and with the sweep.
 * - half-closed: allowHalfOpen server that reads but never ends (event-driven: 'end' + timer);
 * - unconsumed-fin: server that never reads, the peer sends bytes then FIN (found by the sweep,
 *   so its bound is graceMs plus one sweep interval).
 */
import net from 'node:net';
import { createSocketMonitor } from '../dist/esm/index.js';

const graceMs = Number(process.argv[2]);
const leaks = Number(process.argv[3]);
const monitor = createSocketMonitor({ graceMs, stacks: 'none', logger: false }).start();

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

async function measureKind(kind) {
  const held = [];
  const server =
    kind === 'half-closed'
      ? net.createServer({ allowHalfOpen: true }, (socket) => {
          held.push(socket);
          socket.resume();
        })
      : net.createServer((socket) => held.push(socket)); // never reads
  const port = await listen(server);
  const finSentAt = new Map(); // client port -> t0
  const lateness = [];
  const done = new Promise((resolve) => {
    monitor.on('leak', function onLeak(leak) {
      if (leak.kind !== kind || leak.localPort !== port) return;
      const t0 = finSentAt.get(leak.remotePort);
      if (t0 === undefined) return;
      lateness.push(performance.now() - t0 - graceMs);
      if (lateness.length === leaks) {
        monitor.off('leak', onLeak);
        resolve();
      }
    });
  });
  const clients = [];
  for (let i = 0; i < leaks; i++) {
    const client = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve) => client.once('connect', resolve));
    client.on('error', () => {});
    clients.push(client);
    finSentAt.set(client.localPort, performance.now());
    if (kind === 'half-closed') client.end();
    else client.end('PING\r\n');
    await new Promise((resolve) => setTimeout(resolve, 37));
  }
  await done;
  for (const socket of [...held, ...clients]) socket.destroy();
  server.close();
  return lateness;
}

const result = {
  sweepIntervalMs: monitor.options.sweepIntervalMs,
  'half-closed': await measureKind('half-closed'),
  'unconsumed-fin': await measureKind('unconsumed-fin'),
};
monitor.stop();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
