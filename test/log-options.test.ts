import { describe, expect, it } from 'vitest';
import { createSocketMonitor } from '../src/index.js';
import { capturePino } from './fixtures/pino-capture.js';

describe('log options', () => {
  it('defaults: pino to stderr at warn, 10 lines a minute per site, no summary', () => {
    const monitor = createSocketMonitor();
    const logger = monitor.options.logger as unknown as { level: string };
    expect(logger.level).toBe('warn');
    expect(monitor.options.logRate).toEqual({ perSite: 10, intervalMs: 60_000 });
    expect(monitor.options.summaryIntervalMs).toBe(0);
  });

  it("takes the app's logger, false, a partial logRate and a summary interval", () => {
    const { logger } = capturePino();
    const monitor = createSocketMonitor({
      logger,
      logRate: { perSite: 3 },
      summaryIntervalMs: 60_000,
    });
    expect(monitor.options.logger).toBe(logger);
    expect(monitor.options.logRate).toEqual({ perSite: 3, intervalMs: 60_000 });
    expect(monitor.options.summaryIntervalMs).toBe(60_000);
    expect(createSocketMonitor({ logger: false }).options.logger).toBeUndefined();
  });

  it('fails at creation on bad values, naming the option and the value', () => {
    const bad: Array<[object, string]> = [
      [
        { logger: console },
        'closewait: option "logger" must be a pino logger (child, error, warn, info) or false',
      ],
      [{ logger: true }, 'option "logger" must be a pino logger'],
      [
        { logRate: 10 },
        'closewait: option "logRate" must be { perSite?, intervalMs? }; received 10',
      ],
      [{ logRate: { perSite: 0 } }, 'option "logRate.perSite" must be a finite number from 1'],
      [{ logRate: { perSite: 2.5 } }, 'option "logRate.perSite" must be an integer; received 2.5'],
      [
        { logRate: { intervalMs: 5 } },
        'option "logRate.intervalMs" must be a finite number from 10',
      ],
      [{ logRate: { persite: 5 } }, 'option "logRate.persite" must be a known option (typo?)'],
      [{ summaryIntervalMs: -1 }, 'option "summaryIntervalMs" must be a finite number from 10'],
      [{ summaryIntervalMs: '1m' }, 'option "summaryIntervalMs" must be a finite number'],
    ];
    for (const [options, message] of bad) {
      expect(() => createSocketMonitor(options as never)).toThrow(TypeError);
      expect(() => createSocketMonitor(options as never)).toThrow(message);
    }
  });
});
