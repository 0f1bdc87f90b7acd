import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { healthCheck } from '../src/index.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { startMonitor } from './fixtures/monitor.js';
import { listen, until } from './fixtures/net.js';

describe('healthCheck(): the health check as data, for any framework', () => {
  it('returns status, headers and the health+json payload: 200 pass, 200 warn, 503 at failAt', async () => {
    const monitor = startMonitor({ logger: false });
    const server = http.createServer();
    const taken = holdUpgrades(server);
    const port = await listen(server);
    try {
      expect(healthCheck(monitor, { failAt: 2 })).toMatchObject({
        statusCode: 200,
        headers: { 'content-type': 'application/health+json', 'cache-control': 'no-store' },
        payload: { status: 'pass', checks: { 'closewait:leaks': [{ observedValue: 0 }] } },
      });
      await leakUpgrade(port);
      await until(() => monitor.leaks().length === 1, 3000, '1 leak');
      expect(healthCheck(monitor, { failAt: 2 })).toMatchObject({
        statusCode: 200,
        payload: { status: 'warn' },
      });
      await leakUpgrade(port);
      await until(() => monitor.leaks().length === 2, 3000, '2 leaks');
      const fail = healthCheck(monitor, { failAt: 2, verbose: true });
      expect(fail.statusCode).toBe(503);
      expect(fail.payload.status).toBe('fail');
      expect(fail.payload.checks['closewait:leaks'][0].groups?.[0]?.count).toBe(2);
      // Plain data: a framework serializes it as it likes.
      expect(JSON.parse(JSON.stringify(fail.payload))).toEqual(fail.payload);
    } finally {
      for (const socket of taken) socket.destroy();
      server.close();
      monitor.stop();
    }
  });

  it('throws a TypeError naming a bad option or monitor', () => {
    const monitor = startMonitor({ logger: false });
    try {
      expect(() => healthCheck(monitor, { failAt: 0 })).toThrow(/option "failAt"/);
      expect(() => healthCheck(monitor, { verbos: true } as never)).toThrow(/option "verbos"/);
      expect(() => healthCheck({} as never)).toThrow(/option "monitor"/);
    } finally {
      monitor.stop();
    }
  });
});
