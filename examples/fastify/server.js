// A small Fastify 5 service with one leaky route, closewait's plugin (health route) and metrics.
// Run: npm run build && node examples/fastify/server.js   (PORT=3001 by default)
import { closewaitPlugin } from 'closewait/fastify';
import { registerMetrics } from 'closewait/prometheus';
import Fastify from 'fastify';
import { register } from 'prom-client';

// Fastify's own pino logger: the plugin logs leaks through it (component: 'closewait').
const app = Fastify({ logger: { level: 'warn' } });

// The plugin creates and starts the monitor, serves the health check at /health/sockets, and
// stops the monitor when the app closes. graceMs 5 s instead of 30 s so the demo leak shows
// up quickly; three leaks turn the check to 503.
await app.register(closewaitPlugin, { graceMs: 5000, warnAt: 1, failAt: 3 });
registerMetrics(app.closewait);

app.get('/', async () => 'closewait example: see /health/sockets and /metrics\n');
app.get('/metrics', async (_request, reply) => {
  reply.type(register.contentType);
  return register.metrics();
});

// The leak: a socket taken over on 'upgrade' and never closed. http.Server sockets are
// half-open, so when the client hangs up the socket sits in CLOSE_WAIT for good.
app.server.on('upgrade', (request, socket) => {
  if (request.url !== '/leak') {
    socket.destroy();
    return;
  }
  socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: leak\r\n\r\n');
  // Bug on purpose: no socket.on('end', () => socket.end()).
});

const port = Number(process.env.PORT ?? 3001);
await app.listen({ port, host: '127.0.0.1' });
const base = `http://127.0.0.1:${app.server.address().port}`;
console.log(`closewait Fastify example on ${base}
  health:  ${base}/health/sockets
  metrics: ${base}/metrics
  leaky route: GET ${base}/leak with 'Connection: Upgrade' (the socket is taken, never closed)
make a leak (curl hangs up after 1 s, reporting a timeout; the leak is reported 5 s later):
  curl -s --max-time 1 -H 'Connection: Upgrade' -H 'Upgrade: leak' ${base}/leak
then:
  curl -s ${base}/health/sockets
  curl -s ${base}/metrics | grep closewait_leaked`);
