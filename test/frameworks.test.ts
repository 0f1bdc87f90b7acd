/**
 * Real framework apps: Express 4 and 5, Fastify 4 and 5 here, and the Koa, Hono (on
 * @hono/node-server) and NestJS recipes from examples/frameworks/, which use `closewait` as a
 * user would (its built package). In each, the health check turns 503 at `failAt`, and a leak's
 * `where` names the app's own file, not the framework's listen() wrapper.
 */
import type http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import Fastify4 from 'fastify4';
import { afterEach, describe, expect, it } from 'vitest';
import { type HealthPayload, healthHandler } from '../src/health.js';
import { closewaitPlugin } from '../src/integrations/fastify.js';
import type { SocketMonitor } from '../src/monitor.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { GRACE_MS, startMonitor } from './fixtures/monitor.js';
import { HOST, until } from './fixtures/net.js';

interface Started {
  server: http.Server;
  /** The file whose line must be the leak's `where`, relative to the repository. */
  appFile: string;
  /** The framework's own directory, whose frame stays in the stack. */
  frameworkDir: string;
  close(): Promise<void>;
}

const FAIL_AT = 2;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const THIS_FILE = 'test/frameworks.test.ts';

async function listening(server: http.Server): Promise<void> {
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
}

function startExpress(version: typeof express) {
  return async (monitor: SocketMonitor): Promise<Started> => {
    const app = version();
    app.get('/health/sockets', healthHandler(monitor, { failAt: FAIL_AT }));
    const server = app.listen(0, HOST);
    holdUpgrades(server);
    await listening(server);
    return {
      server,
      appFile: THIS_FILE,
      frameworkDir: 'node_modules/express',
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  };
}

function startFastify(create: typeof Fastify, frameworkDir: string) {
  return async (monitor: SocketMonitor): Promise<Started> => {
    const app = create();
    app.register(closewaitPlugin, { monitor, failAt: FAIL_AT });
    holdUpgrades(app.server);
    await app.listen({ port: 0, host: HOST });
    return { server: app.server, appFile: THIS_FILE, frameworkDir, close: () => app.close() };
  };
}

/** A recipe from examples/frameworks/<name>/app.js, imported as a user's app would be. */
function startRecipe(name: string, frameworkDir: string) {
  return async (monitor: SocketMonitor): Promise<Started> => {
    const { startApp } = await import(`../examples/frameworks/${name}/app.js`);
    const started = await startApp({ monitor, failAt: FAIL_AT });
    // Nest returns its application; Koa and Hono their http.Server.
    const isNest = typeof started.getHttpServer === 'function';
    const server: http.Server = isNest ? started.getHttpServer() : started;
    return {
      server,
      appFile: `examples/frameworks/${name}/app.js`,
      frameworkDir,
      close: isNest
        ? () => started.close()
        : () => new Promise((resolve) => server.close(() => resolve())),
    };
  };
}

const FRAMEWORKS: Array<[string, (monitor: SocketMonitor) => Promise<Started>]> = [
  ['Express 4', startExpress(express4)],
  ['Express 5', startExpress(express)],
  ['Fastify 4', startFastify(Fastify4, 'node_modules/fastify4')],
  ['Fastify 5', startFastify(Fastify, 'node_modules/fastify')],
  ['Koa', startRecipe('koa', 'node_modules/koa')],
  ['Hono on @hono/node-server', startRecipe('hono', 'node_modules/@hono/node-server')],
  ['NestJS', startRecipe('nestjs', 'node_modules/@nestjs')],
];

async function health(port: number) {
  const response = await fetch(`http://${HOST}:${port}/health/sockets`);
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: (await response.json()) as HealthPayload,
  };
}

describe.each(FRAMEWORKS)('%s', (_name, start) => {
  it('health turns 503 at failAt; the leak names the app file, the framework stays in the stack', async () => {
    const monitor = startMonitor({ graceMs: GRACE_MS, logger: false });
    cleanups.push(async () => {
      monitor.stop();
    });
    const started = await start(monitor);
    const accepted = new Set<Socket>();
    started.server.on('connection', (socket: Socket) => accepted.add(socket));
    cleanups.push(async () => {
      // Held upgrade sockets first: close() waits for every connection, and these never end.
      for (const socket of accepted) socket.destroy();
      await started.close();
    });
    const { port } = started.server.address() as AddressInfo;

    const pass = await health(port);
    expect(pass.status).toBe(200);
    expect(pass.type).toBe('application/health+json');
    expect(pass.body.status).toBe('pass');

    for (let leaks = 1; leaks <= FAIL_AT; leaks++) {
      await leakUpgrade(port);
      await until(() => monitor.leaks().length === leaks, 3000, `${leaks} leaks`);
    }
    const fail = await health(port);
    expect(fail.status).toBe(503);
    expect(fail.body.status).toBe('fail');
    expect(fail.body.checks['closewait:leaks'][0].observedValue).toBe(FAIL_AT);

    const [group] = monitor.report().groups;
    expect(group!.where).toMatch(
      new RegExp(`^server ${HOST}:${port} \\(listen at ${started.appFile}:\\d+:\\d+\\)`),
    );
    expect(group!.stack).toContain(started.frameworkDir);
  });
});
