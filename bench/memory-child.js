/**
 * Heap per tracked socket: `node --expose-gc bench/memory-child.js <variant> <side> <count>
 * [sinkPort]`. Measures the heap after a full GC before and after opening `count` sockets;
 * the runner subtracts the baseline variant's delta, which leaves what tracking adds.
 * - side `client`: this process connects to a sink process (net.connect), the path where
 *   creation stacks are captured;
 * - side `server`: an http.Server here accepts connections from an opener process (accepted
 *   sockets never get a stack of their own: the server's listen() stack names them).
 */
import http from 'node:http';
import net from 'node:net';
import { startChild } from './processes.js';
import { installVariant } from './variants.js';

const [variant, side, countText, sinkPort] = process.argv.slice(2);
const count = Number(countText);
const keep = installVariant(variant);

async function settledHeap() {
  // Several passes: the first frees what the second pass's finalizers release.
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

async function openClients() {
  const sockets = [];
  const parallel = 256;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const socket = net.connect({ port: Number(sinkPort), host: '127.0.0.1' });
      await new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      sockets.push(socket);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return sockets;
}

async function acceptFromOpener() {
  const sockets = [];
  const server = http.createServer(() => {});
  server.on('connection', (socket) => sockets.push(socket));
  await new Promise((resolve) =>
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve),
  );
  // The opener's own setup happens before our "before" heap, so it is not in the delta.
  const before = await settledHeap();
  const opener = startChild(
    './socket-opener.js',
    [JSON.stringify({ groups: [{ port: server.address().port, count, afterwards: 'hold' }] })],
    [],
    { raiseFdLimit: true },
  );
  await opener.next(120_000);
  while (sockets.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
  const after = await settledHeap();
  return { before, after, sockets, opener };
}

/** How many sockets the monitor tracks now: all of them, or the figure is meaningless. */
const trackedNow = () => (keep?.sockets ? keep.sockets().length : undefined);

let result;
if (side === 'client') {
  const before = await settledHeap();
  const sockets = await openClients();
  const after = await settledHeap();
  result = { before, after, open: sockets.length, tracked: trackedNow() };
  for (const socket of sockets) socket.destroy();
} else {
  const { before, after, sockets, opener } = await acceptFromOpener();
  result = { before, after, open: sockets.length, tracked: trackedNow() };
  await opener.stop();
}
const bytesPerSocket = (result.after - result.before) / count;
process.stdout.write(`${JSON.stringify({ ...result, bytesPerSocket })}\n`);
process.exit(0);
