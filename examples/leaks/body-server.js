// An HTTP server that answers GET /bytes/N with N bytes and `Connection: close`: a client that
// never reads such a body keeps a socket whose peer has already closed.
import http from 'node:http';

export function startBodyServer(port = 0, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    const size = Number(new URL(req.url ?? '/', 'http://x').pathname.split('/')[2] ?? 0);
    res.setHeader('connection', 'close');
    res.end(Buffer.alloc(Number.isFinite(size) ? size : 0, 0x61));
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}
