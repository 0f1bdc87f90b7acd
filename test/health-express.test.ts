import http from 'node:http';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { healthHandler } from '../src/index.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { GRACE_MS, startMonitor } from './fixtures/monitor.js';
import { HOST, listen, until } from './fixtures/net.js';

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const NO_LEAKS = { 'half-closed': 0, 'end-stuck': 0, 'unconsumed-fin': 0, 'unread-fin': 0 };

/** A real Express 5 app with the health route, on an http.Server that leaks upgrade sockets. */
async function expressApp(options: { warnAt: number; failAt: number }) {
  const monitor = startMonitor({ logger: false });
  const app = express();
  app.get('/health/sockets', healthHandler(monitor, options));
  app.get('/health/sockets/verbose', healthHandler(monitor, { ...options, verbose: true }));
  const server = http.createServer(app);
  const taken = holdUpgrades(server);
  const port = await listen(server);
  return { monitor, server, taken, port };
}

describe('healthHandler on Express 5', () => {
  it('goes 200 pass -> 200 warn -> 503 fail at failAt -> 200 pass once the leaks are closed', async () => {
    const { monitor, server, taken, port } = await expressApp({ warnAt: 1, failAt: 3 });

    const pass = await request(server).get('/health/sockets').expect(200);
    expect(pass.headers['content-type']).toBe('application/health+json');
    expect(pass.headers['cache-control']).toBe('no-store');
    expect(pass.body).toEqual({
      status: 'pass',
      description: 'CLOSE_WAIT socket leaks in this process (closewait)',
      checks: {
        'closewait:leaks': [
          {
            componentType: 'component',
            observedValue: 0,
            observedUnit: 'sockets',
            status: 'pass',
            time: expect.stringMatching(ISO_TIME),
            tracked: expect.any(Number),
            byState: expect.objectContaining({ leaked: 0 }),
            byKind: NO_LEAKS,
            byDirection: { server: 0, client: 0 },
          },
        ],
      },
    });

    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 1, 3000, '1 leak');
    const warn = await request(server).get('/health/sockets').expect(200);
    expect(warn.body.status).toBe('warn');
    expect(warn.body.checks['closewait:leaks'][0]).toMatchObject({
      status: 'warn',
      observedValue: 1,
      output:
        '1 CLOSE_WAIT socket leak: the peer closed the connection and this process never closed its socket',
    });

    await leakUpgrade(port);
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 3, 3000, '3 leaks');
    const fail = await request(server).get('/health/sockets').expect(503);
    expect(fail.headers['content-type']).toBe('application/health+json');
    expect(fail.body.status).toBe('fail');
    expect(fail.body.checks['closewait:leaks'][0]).toMatchObject({
      status: 'fail',
      observedValue: 3,
      byKind: { ...NO_LEAKS, 'half-closed': 3 },
      byDirection: { server: 3, client: 0 },
      output:
        '3 CLOSE_WAIT socket leaks: the peer closed the connection and this process never closed its socket',
    });

    // The app closes its sockets at last: the check passes again.
    for (const socket of taken) socket.destroy();
    await until(() => monitor.leaks().length === 0, 3000, 'leaks resolved');
    const again = await request(server).get('/health/sockets').expect(200);
    expect(again.body.status).toBe('pass');
    expect(again.body.checks['closewait:leaks'][0].observedValue).toBe(0);
    expect(again.body.checks['closewait:leaks'][0].output).toBeUndefined();
  });

  it('answers HEAD with the status and headers, and no body', async () => {
    const { monitor, server, port } = await expressApp({ warnAt: 1, failAt: 1 });
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 1, 3000, '1 leak');
    const head = await request(server).head('/health/sockets').expect(503);
    expect(head.headers['content-type']).toBe('application/health+json');
    expect(head.headers['cache-control']).toBe('no-store');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(head.text).toBeUndefined();
  });

  it('shows counts only without verbose, and sites, stacks and addresses with it', async () => {
    const { monitor, server, port } = await expressApp({ warnAt: 1, failAt: 10 });
    const clients = [await leakUpgrade(port, '/chat?token=abc'), await leakUpgrade(port, '/chat')];
    await until(() => monitor.leaks().length === 2, 3000, '2 leaks');

    const plain = await request(server).get('/health/sockets?verbose=true').expect(200);
    const check = plain.body.checks['closewait:leaks'][0];
    expect(Object.keys(check).sort()).toEqual(
      [
        'byDirection',
        'byKind',
        'byState',
        'componentType',
        'observedUnit',
        'observedValue',
        'output',
        'status',
        'time',
        'tracked',
      ].sort(),
    );
    expect(check).toMatchObject({
      componentType: 'component',
      observedValue: 2,
      observedUnit: 'sockets',
      status: 'warn',
      byState: expect.objectContaining({ leaked: 2 }),
      byKind: { ...NO_LEAKS, 'half-closed': 2 },
      byDirection: { server: 2, client: 0 },
    });
    // Nothing that maps the app: no address, path, route, or stack frame.
    expect(plain.text).not.toContain(HOST);
    expect(plain.text).not.toContain(String(port));
    expect(plain.text).not.toContain('/chat');
    expect(plain.text).not.toContain('fixtures');
    expect(plain.text).not.toContain('    at ');

    const verbose = await request(server).get('/health/sockets/verbose').expect(200);
    const groups = verbose.body.checks['closewait:leaks'][0].groups;
    expect(groups).toHaveLength(1);
    const [group] = groups;
    expect(Object.keys(group).sort()).toEqual(
      [
        'appSite',
        'count',
        'direction',
        'kind',
        'oldestAgeMs',
        'site',
        'sockets',
        'stack',
        'where',
      ].sort(),
    );
    expect(group).toMatchObject({ kind: 'half-closed', direction: 'server', count: 2 });
    expect(group.where).toMatch(
      new RegExp(
        `^server 127\\.0\\.0\\.1:${port} \\(listen at test/fixtures/net\\.ts:\\d+:\\d+\\) · GET /chat on 'upgrade'$`,
      ),
    );
    expect(group.oldestAgeMs).toBeGreaterThanOrEqual(GRACE_MS - 2);
    expect(group.site).toContain('test/fixtures/net.ts');
    expect(group.appSite).toContain('test/fixtures/net.ts');
    expect(group.stack).toContain('health-express.test.ts');
    const leakIds = monitor.leaks().map((leak) => leak.id);
    expect(group.sockets).toHaveLength(2);
    for (const socket of group.sockets) {
      expect(Object.keys(socket).sort()).toEqual(
        ['id', 'localAddress', 'localPort', 'remoteAddress', 'remotePort'].sort(),
      );
      expect(leakIds).toContain(socket.id);
      expect(socket).toMatchObject({ localAddress: HOST, localPort: port, remoteAddress: HOST });
    }
    expect(group.sockets.map((s: { remotePort: number }) => s.remotePort).sort()).toEqual(
      clients.map((client) => client.localPort).sort(),
    );
    // Verbose still leaves the query string out (the report groups by path).
    expect(verbose.text).not.toContain('token=abc');
  });
});
