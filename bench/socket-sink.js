/**
 * A peer that accepts connections and holds them open, so the measured process holds only its
 * own side of each socket (and needs half the descriptors). `node bench/socket-sink.js`.
 */
import net from 'node:net';

const held = [];
const server = net.createServer((socket) => {
  socket.on('error', () => {});
  held.push(socket);
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
