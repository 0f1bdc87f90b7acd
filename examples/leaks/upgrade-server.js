// An HTTP server whose 'upgrade' route takes the raw socket and forgets it. http.Server hands
// upgraded sockets over half-open: when the client leaves, nobody ends our side.
import http from 'node:http';

export function startUpgradeServer(port = 0, host = '127.0.0.1') {
  const server = http.createServer((_req, res) => res.end('ok\n'));
  server.on('upgrade', (_req, socket) => {
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: demo\r\nConnection: Upgrade\r\n\r\n',
    );
    // Bug: no socket.on('end', () => socket.end()), no socket.destroy() anywhere.
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}
