// A TCP server that pauses every connection and never resumes: once its buffer is full Node
// stops reading, so a client's FIN stays in the kernel behind unread bytes. Node never emits
// 'end': only the kernel (/proc/net/tcp) knows this socket is in CLOSE_WAIT.
import net from 'node:net';

export function startPausedReaderServer(port = 0, host = '127.0.0.1') {
  const server = net.createServer((socket) => socket.pause());
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}
