import type { AddressInfo, Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import Fastify4 from 'fastify4';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { closewaitPlugin } from '../src/integrations/fastify.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { GRACE_MS, startMonitor } from './fixtures/monitor.js';
import { HOST, until } from './fixtures/net.js';
import { capturePino, LEVEL } from './fixtures/pino-capture.js';

const apps = new Set<FastifyInstance>();
const accepted = new Set<Socket>();
afterEach(async () => {
  // Held upgrade sockets first: close() waits for every connection, and these never end.
  for (const socket of accepted) socket.destroy();
  accepted.clear();
  for (const app of apps) await app.close();
  apps.clear();
});

/** A real Fastify app whose server leaks upgrade sockets, listening on 127.0.0.1:0. */
async function listenWithLeaks(app: FastifyInstance) {
  apps.add(app);
  app.server.on('connection', (socket: Socket) => accepted.add(socket));
  const taken = holdUpgrades(app.server);
  await app.listen({ port: 0, host: HOST });
  return { taken, port: (app.server.address() as AddressInfo).port };
}

/** The same plugin on both majors; the peer range is '4.x || 5.x'. */
const VERSIONS = [
  {
    major: 5,
    create: () => Fastify(),
    withLogger: (logger: object) => Fastify({ loggerInstance: logger as never }),
  },
  {
    major: 4,
    // Typed as Fastify 5's (test/fixtures/aliases.d.ts): the plugin sees the same surface.
    create: () => Fastify4() as unknown as FastifyInstance,
    withLogger: (logger: object) =>
      Fastify4({ logger: logger as never }) as unknown as FastifyInstance,
  },
];

describe.each(VERSIONS)('closewait/fastify on Fastify $major', ({ major, create, withLogger }) => {
  it('is the major it claims', async () => {
    const app = create();
    apps.add(app);
    expect(app.version.split('.')[0]).toBe(String(major));
  });

  it('creates and starts a monitor, serves health at /health/sockets, and stops it on close', async () => {
    const app = create();
    app.register(closewaitPlugin, { graceMs: GRACE_MS, stacks: 'all', logger: false, failAt: 2 });
    const { taken, port } = await listenWithLeaks(app);
    const monitor = app.closewait;
    expect(monitor.running).toBe(true);

    const pass = await request(app.server).get('/health/sockets').expect(200);
    expect(pass.headers['content-type']).toBe('application/health+json');
    expect(pass.headers['cache-control']).toBe('no-store');
    expect(pass.body).toMatchObject({
      status: 'pass',
      checks: {
        'closewait:leaks': [{ status: 'pass', observedValue: 0, observedUnit: 'sockets' }],
      },
    });

    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 1, 3000, '1 leak');
    const warn = await request(app.server).get('/health/sockets?verbose=1').expect(200);
    expect(warn.body.status).toBe('warn');
    expect(warn.body.checks['closewait:leaks'][0].groups).toBeUndefined();

    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 2, 3000, '2 leaks');
    const fail = await request(app.server).get('/health/sockets').expect(503);
    expect(fail.headers['content-type']).toBe('application/health+json');
    expect(fail.body.status).toBe('fail');
    expect(fail.body.checks['closewait:leaks'][0]).toMatchObject({
      status: 'fail',
      observedValue: 2,
      byDirection: { server: 2, client: 0 },
    });
    const head = await request(app.server).head('/health/sockets').expect(503);
    expect(head.headers['content-type']).toBe('application/health+json');
    expect(head.text).toBeUndefined();
    const post = await request(app.server).post('/health/sockets').expect(405);
    expect(post.headers.allow).toBe('GET, HEAD');

    for (const socket of taken) socket.destroy();
    await until(() => monitor.leaks().length === 0, 3000, 'resolved');
    expect((await request(app.server).get('/health/sockets').expect(200)).body.status).toBe('pass');

    await app.close();
    expect(monitor.running).toBe(false);
  });

  it('uses a monitor it is given, at its own path, verbose, and leaves it running on close', async () => {
    const monitor = startMonitor({ logger: false });
    const app = create();
    app.register(closewaitPlugin, { monitor, path: '/ops/sockets', verbose: true, failAt: 5 });
    const { taken, port } = await listenWithLeaks(app);
    expect(app.closewait).toBe(monitor);
    const client = await leakUpgrade(port, '/ws');
    await until(() => monitor.leaks().length === 1, 3000, '1 leak');

    const response = await request(app.server).get('/ops/sockets').expect(200);
    const check = response.body.checks['closewait:leaks'][0];
    expect(check).toMatchObject({ status: 'warn', observedValue: 1 });
    expect(check.groups).toHaveLength(1);
    const [group] = check.groups;
    expect(group).toMatchObject({ kind: 'half-closed', direction: 'server', count: 1 });
    expect(group.where).toContain(`server ${HOST}:${port}`);
    expect(group.where).toContain("GET /ws on 'upgrade'");
    expect(typeof group.site).toBe('string');
    expect(group.stack).toContain('health-fastify.test.ts');
    expect(group.sockets).toEqual([
      {
        id: monitor.leaks()[0]!.id,
        localAddress: HOST,
        localPort: port,
        remoteAddress: HOST,
        remotePort: client.localPort,
      },
    ]);
    await request(app.server).get('/health/sockets').expect(404);

    for (const socket of taken) socket.destroy();
    await app.close();
    apps.delete(app);
    expect(monitor.running).toBe(true);
  });

  it("logs leaks through Fastify's own pino logger when it has one", async () => {
    const { logger, lines } = capturePino('warn');
    // Typed as the default instance: a pino Logger type parameter changes nothing at runtime.
    const app = withLogger(logger) as unknown as FastifyInstance;
    app.register(closewaitPlugin, { graceMs: GRACE_MS, stacks: 'all', path: false });
    const { port } = await listenWithLeaks(app);
    await leakUpgrade(port);
    await until(() => lines.some((line) => line.leak !== undefined), 3000, 'a leak line');
    const line = lines.find((l) => l.leak !== undefined)!;
    expect(line).toMatchObject({
      level: LEVEL.warn,
      component: 'closewait',
      leak: { kind: 'half-closed', direction: 'server', localPort: port },
    });
    await request(app.server).get('/health/sockets').expect(404);
  });

  it("leaves Fastify's own register() options (prefix, logLevel) alone", async () => {
    const app = create();
    apps.add(app);
    app.register(closewaitPlugin, { prefix: '/ops', logLevel: 'warn', logger: false });
    await app.ready();
    expect(app.closewait.running).toBe(true);
  });

  it('fails registration with a TypeError naming a bad option', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ failAt: 0 }, /option "failAt" must be an integer of at least 1/],
      [{ path: 'health' }, /option "path" must be a route path starting with '\/'/],
      [{ graceMs: -1 }, /option "graceMs" must be a finite number/],
      [{ monitor: {} }, /option "monitor" must be a SocketMonitor/],
      [
        { monitor: startMonitor({ logger: false }), graceMs: 5 },
        /option "graceMs" must be left out/,
      ],
    ];
    for (const [options, message] of cases) {
      const app = create();
      apps.add(app);
      app.register(closewaitPlugin, options);
      await expect(app.ready()).rejects.toThrow(message);
    }
  });
});
