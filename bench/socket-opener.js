/**
 * A peer that opens connections to the measured process and holds them: `node
 * bench/socket-opener.js '<json>'` with `{ groups: [{ port, count, afterwards }] }`, where
 * `afterwards` is 'hold' (stay open), 'end' (send our FIN at once) or 'write-end' (send a few
 * bytes, then FIN).
 * Prints `{ opened }` once every connection is up and every FIN sent; holds until SIGTERM.
 */
import net from 'node:net';

const { groups } = JSON.parse(process.argv[2]);
/** Connections in flight at once: stays under the listen backlog, so no SYN is dropped. */
const PARALLEL = 256;
const held = [];

function openOne(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => {});
      held.push(socket);
      resolve(socket);
    });
  });
}

async function openMany(port, count) {
  const sockets = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      sockets.push(await openOne(port));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, count) }, worker));
  return sockets;
}

let opened = 0;
for (const group of groups) {
  const sockets = await openMany(group.port, group.count);
  opened += sockets.length;
  if (group.afterwards === 'end') for (const socket of sockets) socket.end();
  if (group.afterwards === 'write-end') for (const socket of sockets) socket.end('PING\r\n');
}
process.stdout.write(`${JSON.stringify({ opened })}\n`);
process.on('SIGTERM', () => process.exit(0));
