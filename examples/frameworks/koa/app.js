// closewait in a Koa app: the health check through healthCheck(), served by a middleware.
// Run: npm run build && node examples/frameworks/koa/app.js   (PORT=3002 by default)
import { pathToFileURL } from 'node:url';
import { createSocketMonitor, healthCheck } from 'closewait';
import Koa from 'koa';
import { holdUpgrades } from '../leaky-upgrades.js';

/** Starts the app on 127.0.0.1:`port`; resolves once it listens. */
export async function startApp({ monitor, port = 0, failAt = 3 }) {
  const app = new Koa();
  app.use(async (ctx, next) => {
    if (ctx.method !== 'GET' || ctx.path !== '/health/sockets') return next();
    const { statusCode, headers, payload } = healthCheck(monitor, { failAt });
    ctx.status = statusCode;
    // Headers before the body: Koa keeps a content-type that is already set.
    ctx.set(headers);
    ctx.body = JSON.stringify(payload);
  });
  app.use((ctx) => {
    ctx.body = 'closewait Koa example: see /health/sockets\n';
  });
  const server = app.listen(port, '127.0.0.1');
  holdUpgrades(server);
  await new Promise((resolve) => server.once('listening', resolve));
  return server;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const monitor = createSocketMonitor({ graceMs: 5000 }).start();
  const server = await startApp({ monitor, port: Number(process.env.PORT ?? 3002) });
  console.log(`closewait Koa example on http://127.0.0.1:${server.address().port}/health/sockets`);
}
