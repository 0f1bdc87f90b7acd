/**
 * Connection-per-request load: each request on a new connection with `Connection: close`,
 * the way an HTTP/1.0-style client or a health checker behaves: connect, send one request,
 * read the response to the server's FIN, close, repeat.
 *
 * Why not autocannon here: with a `Connection: close` header autocannon writes its next request
 * on the socket the server is closing (it pipelines into the FIN), so the server resets those
 * sockets. That is not what real clients do, and it changes the server's path per socket.
 */
import net from 'node:net';

export function loadClose({ port, host, connections, warmupMs, durationMs }) {
  const request = Buffer.from(
    `GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`,
  );
  const started = performance.now();
  const measureFrom = started + warmupMs;
  const stopAt = measureFrom + durationMs;
  let completed = 0;
  let errors = 0;
  let running = connections;

  return new Promise((resolve) => {
    const finishWorker = () => {
      running--;
      if (running === 0) resolve({ requests: completed, seconds: durationMs / 1000, errors });
    };
    const next = () => {
      if (performance.now() >= stopAt) return finishWorker();
      let ok = false;
      const socket = net.connect({ port, host });
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(request));
      socket.on('data', (chunk) => {
        // "HTTP/1.1 200": the status is in the first chunk on loopback.
        if (!ok && chunk.length > 12 && chunk[9] === 0x32) ok = true;
      });
      socket.on('error', () => {
        errors++;
      });
      socket.on('close', () => {
        const now = performance.now();
        if (ok && now >= measureFrom && now < stopAt) completed++;
        else if (!ok) errors++;
        next();
      });
    };
    for (let i = 0; i < connections; i++) next();
  });
}
