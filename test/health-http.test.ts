import http from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createSocketMonitor, healthHandler } from '../src/index.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { startMonitor } from './fixtures/monitor.js';
import { listen, until } from './fixtures/net.js';

/** The handler as a whole node:http server: it answers any path, as a plain handler does. */
async function healthServer(monitor = startMonitor({ logger: false }), failAt = 2) {
  const server = http.createServer(healthHandler(monitor, { failAt }));
  const taken = holdUpgrades(server);
  const port = await listen(server);
  return { monitor, server, taken, port };
}

describe('healthHandler on node:http', () => {
  it('answers GET 200 pass, then 503 fail at failAt, then pass after the app closes its leaks', async () => {
    const { monitor, server, taken, port } = await healthServer();
    const pass = await request(server).get('/').expect(200);
    expect(pass.headers['content-type']).toBe('application/health+json');
    expect(pass.body.status).toBe('pass');

    await leakUpgrade(port);
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 2, 3000, '2 leaks');
    const fail = await request(server).get('/').expect(503);
    expect(fail.body.status).toBe('fail');
    expect(fail.body.checks['closewait:leaks'][0].observedValue).toBe(2);
    expect(Number(fail.headers['content-length'])).toBe(Buffer.byteLength(fail.text));

    for (const socket of taken) socket.destroy();
    await until(() => monitor.leaks().length === 0, 3000, 'resolved');
    expect((await request(server).get('/').expect(200)).body.status).toBe('pass');
  });

  it('answers HEAD like GET without a body, OPTIONS with 204, other methods with 405 and Allow', async () => {
    const { server } = await healthServer();
    const head = await request(server).head('/').expect(200);
    expect(head.headers['content-type']).toBe('application/health+json');
    expect(head.text).toBeUndefined();

    const options = await request(server).options('/').expect(204);
    expect(options.headers.allow).toBe('GET, HEAD, OPTIONS');
    for (const method of ['post', 'put', 'patch', 'delete'] as const) {
      const refused = await request(server)[method]('/').send('x').expect(405);
      expect(refused.headers.allow).toBe('GET, HEAD, OPTIONS');
      expect(refused.headers['cache-control']).toBe('no-store');
      expect(refused.text).toBe('');
    }
  });

  it('ignores the query string: no query turns verbose output on', async () => {
    const { monitor, server, port } = await healthServer(undefined, 10);
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 1, 3000, '1 leak');
    for (const path of ['/', '/?verbose=true', '/?verbose=1&stack=1']) {
      const response = await request(server).get(path).expect(200);
      expect(response.body.checks['closewait:leaks'][0].groups).toBeUndefined();
      expect(response.body.checks['closewait:leaks'][0].observedValue).toBe(1);
    }
  });

  it('says warn, not pass, while the monitor is not running', async () => {
    const monitor = createSocketMonitor({ logger: false });
    const { server } = await healthServer(monitor);
    const response = await request(server).get('/').expect(200);
    expect(response.body.status).toBe('warn');
    expect(response.body.checks['closewait:leaks'][0].output).toBe(
      'closewait is not running: leaks are not being watched (call start())',
    );
  });

  it('never throws, even when the check itself breaks: warn, so no healthy app is restarted', async () => {
    const monitor = startMonitor({ logger: false });
    // Verbose output builds the report's groups: break that.
    monitor.report = () => {
      throw new Error('broken report');
    };
    const server = http.createServer(healthHandler(monitor, { verbose: true }));
    await listen(server);
    const response = await request(server).get('/').expect(200);
    expect(response.body).toMatchObject({
      status: 'warn',
      checks: {
        'closewait:leaks': [
          { status: 'warn', output: 'closewait could not compute the check (internal error)' },
        ],
      },
    });
    expect(response.text).not.toContain('broken report');
  });

  it('fails at creation on a bad monitor or bad options, naming them', () => {
    const monitor = createSocketMonitor({ logger: false });
    expect(() => healthHandler({} as never)).toThrow(/option "monitor" must be a SocketMonitor/);
    expect(() => healthHandler(monitor, { failAt: 0 })).toThrow(
      'closewait: option "failAt" must be an integer of at least 1, or Infinity; received 0',
    );
    expect(() => healthHandler(monitor, { warnAt: 1.5 })).toThrow(/"warnAt".*received 1.5/);
    expect(() => healthHandler(monitor, { warnAt: 5, failAt: 2 })).toThrow(
      'closewait: option "warnAt" must be at most failAt (2); received 5',
    );
    expect(() => healthHandler(monitor, { verbose: 'yes' as never })).toThrow(
      'closewait: option "verbose" must be a boolean; received "yes"',
    );
    expect(() => healthHandler(monitor, { failat: 3 } as never)).toThrow(/"failat".*typo/);
    expect(() => healthHandler(monitor, { failAt: Number.POSITIVE_INFINITY })).not.toThrow();
  });
});
