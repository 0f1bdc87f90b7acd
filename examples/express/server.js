// A small Express 5 service with one leaky route, closewait's health check and metrics.
// Run: npm run build && node examples/express/server.js   (PORT=3000 by default)
import http from 'node:http';
import { createSocketMonitor, healthHandler } from 'closewait';
import { registerMetrics } from 'closewait/prometheus';
import express from 'express';
import { register } from 'prom-client';

// graceMs 5 s instead of 30 s so the demo leak shows up quickly. Leak lines go to stderr
// (pino, level warn) since no logger is given.
const monitor = createSocketMonitor({ graceMs: 5000 }).start();
registerMetrics(monitor);

const app = express();
app.get('/', (_request, response) => {
  response.type('text').send('closewait example: see /health/sockets and /metrics\n');
});
// warnAt 1, failAt 3: three leaks turn the check to 503.
app.get('/health/sockets', healthHandler(monitor, { warnAt: 1, failAt: 3 }));
app.get('/metrics', async (_request, response) => {
  response.type(register.contentType).send(await register.metrics());
});

const server = http.createServer(app);
// The leak: a socket taken over on 'upgrade' and never closed. http.Server sockets are
// half-open, so when the client hangs up the socket sits in CLOSE_WAIT for good.
server.on('upgrade', (request, socket) => {
  if (request.url !== '/leak') {
    socket.destroy();
    return;
  }
  socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: leak\r\n\r\n');
  // Bug on purpose: no socket.on('end', () => socket.end()).
});

const port = Number(process.env.PORT ?? 3000);
server.listen(port, '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  console.log(`closewait Express example on ${base}
  health:  ${base}/health/sockets
  metrics: ${base}/metrics
  leaky route: GET ${base}/leak with 'Connection: Upgrade' (the socket is taken, never closed)
make a leak (curl hangs up after 1 s, reporting a timeout; the leak is reported 5 s later):
  curl -s --max-time 1 -H 'Connection: Upgrade' -H 'Upgrade: leak' ${base}/leak
then:
  curl -s ${base}/health/sockets
  curl -s ${base}/metrics | grep closewait_leaked`);
});
