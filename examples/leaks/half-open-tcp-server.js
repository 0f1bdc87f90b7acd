// A TCP server that accepts half-open connections and never ends them: when a client sends
// its FIN, this side stays open forever. The kernel calls that CLOSE_WAIT.
import net from 'node:net';

export function startHalfOpenTcpServer(port = 0, host = '127.0.0.1') {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('data', (chunk) => socket.write(chunk)); // echoes, but never calls end()
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}
