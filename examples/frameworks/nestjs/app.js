// closewait in a NestJS app (Express platform): a controller serves healthCheck()'s result.
// Run: npm run build && node examples/frameworks/nestjs/app.js   (PORT=3004 by default)
//
// Plain JavaScript has no decorator syntax, so the decorators are applied by hand below; in
// TypeScript they are the usual @Controller('health'), @Get('sockets'), @Res() and @Inject().
import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { Controller, Get, Inject, Module, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createSocketMonitor, healthCheck } from 'closewait';
import { holdUpgrades } from '../leaky-upgrades.js';

const MONITOR = 'CLOSEWAIT_MONITOR';
const HEALTH_OPTIONS = 'CLOSEWAIT_HEALTH_OPTIONS';

class SocketHealthController {
  constructor(monitor, options) {
    this.monitor = monitor;
    this.options = options;
  }

  /** GET /health/sockets: 200 (pass, warn) or 503 (fail), application/health+json. */
  sockets(response) {
    const { statusCode, headers, payload } = healthCheck(this.monitor, this.options);
    // end(), not send(): send() would add "; charset=utf-8" to the content type.
    response.status(statusCode).set(headers).end(JSON.stringify(payload));
  }
}
Controller('health')(SocketHealthController);
Inject(MONITOR)(SocketHealthController, undefined, 0);
Inject(HEALTH_OPTIONS)(SocketHealthController, undefined, 1);
const sockets = Object.getOwnPropertyDescriptor(SocketHealthController.prototype, 'sockets');
Get('sockets')(SocketHealthController.prototype, 'sockets', sockets);
Res()(SocketHealthController.prototype, 'sockets', 0);

/** Starts the app on 127.0.0.1:`port`; resolves once it listens. Close it with `app.close()`. */
export async function startApp({ monitor, port = 0, failAt = 3 }) {
  class AppModule {}
  Module({
    controllers: [SocketHealthController],
    providers: [
      { provide: MONITOR, useValue: monitor },
      { provide: HEALTH_OPTIONS, useValue: { failAt } },
    ],
  })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  holdUpgrades(app.getHttpServer());
  await app.listen(port, '127.0.0.1');
  return app;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const monitor = createSocketMonitor({ graceMs: 5000 }).start();
  const app = await startApp({ monitor, port: Number(process.env.PORT ?? 3004) });
  console.log(`closewait NestJS example on ${await app.getUrl()}/health/sockets`);
}
