import { describe, expect, it } from 'vitest';
import {
  AUTO_BASE_MAX_MS,
  AUTO_MAX_MS,
  AUTO_MIN_MS,
  autoBaseMs,
  COST_FACTOR,
  KernelCheckSchedule,
  nextCheckDelay,
} from '../src/kernel/check-schedule.js';
import { childEnv, REGISTER_JS, ROOT, spawnNode } from './fixtures/apps/spawn-app.js';
import { nextLeak, startMonitor } from './fixtures/monitor.js';
import { pausedReaderLeak, until } from './fixtures/net.js';

const auto = { interval: 'auto' as const, graceMs: 30_000, suspectDueInMs: undefined };

describe('the kernel check schedule', () => {
  it("'auto' spaces checks by grace while they are cheap, by their cost when they are not", () => {
    expect(nextCheckDelay({ ...auto, lastDurationMs: 0 })).toBe(AUTO_BASE_MAX_MS);
    expect(nextCheckDelay({ ...auto, lastDurationMs: 2 })).toBe(AUTO_BASE_MAX_MS);
    expect(nextCheckDelay({ ...auto, lastDurationMs: 300 })).toBe(300 * COST_FACTOR);
    expect(nextCheckDelay({ ...auto, lastDurationMs: 5_000 })).toBe(AUTO_MAX_MS);
    expect(autoBaseMs(2_000)).toBe(500);
    expect(autoBaseMs(200)).toBe(AUTO_MIN_MS);
  });

  it('checks again when a suspect is due, not a whole interval later', () => {
    expect(nextCheckDelay({ ...auto, lastDurationMs: 1, suspectDueInMs: 1_000 })).toBe(1_002);
    // Due later than the regular check: the regular one comes first.
    expect(nextCheckDelay({ ...auto, lastDurationMs: 1, suspectDueInMs: 20_000 })).toBe(5_000);
    // Overdue: soon, but never back to back with a check that costs.
    expect(nextCheckDelay({ ...auto, lastDurationMs: 0.1, suspectDueInMs: -3 })).toBe(10);
    expect(nextCheckDelay({ ...auto, lastDurationMs: 40, suspectDueInMs: 0 })).toBe(400);
  });

  it('keeps a fixed interval as given', () => {
    expect(nextCheckDelay({ ...auto, interval: 250, lastDurationMs: 40 })).toBe(250);
  });

  it('brings the next check forward when a rule needs the kernel soon, never back', async () => {
    const checks: number[] = [];
    const schedule = new KernelCheckSchedule(
      'auto',
      30_000,
      async () => checks.push(Date.now()),
      (e) => {
        throw e;
      },
    );
    schedule.start(); // the first check is 5 s away
    const asked = Date.now();
    schedule.checkWithin(50);
    schedule.checkWithin(4_000); // later than the one already set: no change
    await until(() => checks.length === 1, 2_000, 'the check asked for');
    expect(checks[0]! - asked).toBeLessThan(1_000);
    schedule.stop();
  });
});

describe.skipIf(process.platform !== 'linux')('the default kernel check (Linux: /proc)', () => {
  it('finds an unread-fin leak with no option set, graceMs after its first sighting', async () => {
    const graceMs = 400;
    const monitor = startMonitor({ graceMs, kernelCheckIntervalMs: undefined });
    expect(monitor.options.kernelCheckIntervalMs).toBe('auto');
    const { port } = await pausedReaderLeak();
    // How soon depends on what a check costs on this host now (the schedule spaces them by it):
    // the deadline is for a loaded one. When the confirming check comes is the unit tests' part.
    const leak = await nextLeak(monitor, (l) => l.kind === 'unread-fin', 20_000);
    expect(leak.localPort).toBe(port);
    expect(leak.detectedAt - leak.peerEndedAt).toBeGreaterThanOrEqual(graceMs);
  });

  it('keeps no process alive: an app with a default monitor exits on its own', async () => {
    const app = spawnNode(
      ['--input-type=module', '-e', `import(${JSON.stringify(REGISTER_JS)});`],
      { cwd: ROOT, env: childEnv() },
    );
    expect(await app.waitForExit(5_000)).toEqual({ code: 0, signal: null });
  });
});
