import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { expectNoLeak, startMonitor } from './fixtures/monitor.js';
import { listen, until } from './fixtures/net.js';
import { capturePino, LEVEL, type LogLine } from './fixtures/pino-capture.js';

const summaries = (lines: LogLine[]) => lines.filter((line) => line.summary !== undefined);

describe('periodic summary (summaryIntervalMs)', () => {
  it('is off by default', async () => {
    const { logger, lines } = capturePino();
    const monitor = startMonitor({ logger });
    expect(monitor.options.summaryIntervalMs).toBe(0);
    await expectNoLeak(monitor, 300);
    expect(lines).toEqual([]);
  });

  it('logs report() counts every interval: info while clean, warn once there are leaks', async () => {
    const { logger, lines } = capturePino();
    const monitor = startMonitor({ logger, summaryIntervalMs: 100 });
    await until(() => summaries(lines).length >= 1, 2000, 'a first summary');
    expect(summaries(lines)[0]).toMatchObject({
      level: LEVEL.info,
      component: 'closewait',
      summary: { leaked: 0, groupCount: 0, topGroups: [] },
    });

    const server = http.createServer();
    holdUpgrades(server);
    const port = await listen(server);
    await leakUpgrade(port);
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 2, 3000, '2 leaks');
    const before = summaries(lines).length;
    await until(() => summaries(lines).length > before, 2000, 'a summary after the leaks');
    const last = summaries(lines).at(-1)!;
    const report = monitor.report();
    expect(last.level).toBe(LEVEL.warn);
    expect(last.msg).toMatch(/^closewait summary: 2 CLOSE_WAIT socket leaks open .* in 1 place; /);
    expect(last.summary).toMatchObject({
      tracked: report.tracked,
      leaked: 2,
      byState: report.byState,
      byKind: { 'half-closed': 2, 'end-stuck': 0, 'unconsumed-fin': 0, 'unread-fin': 0 },
      byDirection: { server: 2, client: 0 },
      groupCount: 1,
      topGroups: [{ kind: 'half-closed', direction: 'server', count: 2 }],
    });
    expect((last.summary as { topGroups: Array<{ where: string }> }).topGroups[0]!.where).toContain(
      "GET /leak on 'upgrade'",
    );
  });

  it('stops with the monitor', async () => {
    const { logger, lines } = capturePino();
    const monitor = startMonitor({ logger, summaryIntervalMs: 50 });
    await until(() => summaries(lines).length >= 1, 2000, 'a first summary');
    monitor.stop();
    const count = summaries(lines).length;
    // An observation window that asserts absence: four intervals with no new line.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(summaries(lines)).toHaveLength(count);
  });
});
