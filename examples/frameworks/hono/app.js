// closewait in a Hono app on @hono/node-server: the health check through healthCheck().
// Run: npm run build && node examples/frameworks/hono/app.js   (PORT=3003 by default)
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { createSocketMonitor, healthCheck } from 'closewait';
import { Hono } from 'hono';
import { holdUpgrades } from '../leaky-upgrades.js';

/** Starts the app on 127.0.0.1:`port`; resolves once it listens. */
export async function startApp({ monitor, port = 0, failAt = 3 }) {
  const app = new Hono();
  // healthHandler() writes to Node's response itself, which @hono/node-server also does:
  // Hono wants a Response, built here from healthCheck()'s parts.
  app.get('/health/sockets', (c) => {
    const { statusCode, headers, payload } = healthCheck(monitor, { failAt });
    return c.body(JSON.stringify(payload), statusCode, headers);
  });
  app.get('/', (c) => c.text('closewait Hono example: see /health/sockets\n'));
  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
  holdUpgrades(server);
  await new Promise((resolve) => server.once('listening', resolve));
  return server;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const monitor = createSocketMonitor({ graceMs: 5000 }).start();
  const server = await startApp({ monitor, port: Number(process.env.PORT ?? 3003) });
  console.log(`closewait Hono example on http://127.0.0.1:${server.address().port}/health/sockets`);
}
