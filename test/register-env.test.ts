import { describe, expect, it } from 'vitest';
import { problemLine, REGISTER_ENV, readRegisterEnv } from '../src/register-env.js';
import {
  APPS,
  childEnv,
  leakedPorts,
  pinoLines,
  REGISTER_JS,
  spawnNode,
} from './fixtures/apps/spawn-app.js';

function problemsOf(env: Record<string, string>): string[] {
  const result = readRegisterEnv(env, 42);
  if (result.ok) throw new Error(`expected problems for ${JSON.stringify(env)}`);
  return result.problems;
}

describe('CLOSEWAIT_* environment', () => {
  it('maps every variable to its option', () => {
    const result = readRegisterEnv(
      {
        CLOSEWAIT_GRACE_MS: '1500',
        CLOSEWAIT_STACKS: '0.25',
        CLOSEWAIT_AUTO_DESTROY_MS: '60000',
        CLOSEWAIT_AUTO_DESTROY_DRY_RUN: 'yes',
        CLOSEWAIT_KERNEL_CHECK_MS: '5000',
        CLOSEWAIT_PATCH_CONNECT: 'true',
        CLOSEWAIT_SUMMARY_MS: '60000',
        CLOSEWAIT_LOG_LEVEL: 'INFO',
        CLOSEWAIT_HEALTH_PORT: '9464',
        CLOSEWAIT_HEALTH_HOST: '0.0.0.0',
        CLOSEWAIT_HEALTH_VERBOSE: '1',
        CLOSEWAIT_REPORT_FILE: '/tmp/closewait-%p.json',
      },
      42,
    );
    expect(result).toEqual({
      ok: true,
      settings: {
        monitor: {
          graceMs: 1500,
          stacks: { sampleRate: 0.25 },
          autoDestroy: { afterMs: 60000, dryRun: true },
          kernelCheckIntervalMs: 5000,
          patchSocketConnect: true,
          summaryIntervalMs: 60000,
        },
        logLevel: 'info',
        health: { port: 9464, host: '0.0.0.0', verbose: true },
        reportFile: '/tmp/closewait-42.json',
      },
    });
  });

  it('takes CLOSEWAIT_KERNEL_CHECK_MS=auto and 0 (off)', () => {
    const intervalOf = (value: string) => {
      const result = readRegisterEnv({ CLOSEWAIT_KERNEL_CHECK_MS: value }, 1);
      return result.ok ? result.settings.monitor.kernelCheckIntervalMs : result.problems;
    };
    expect(intervalOf('auto')).toBe('auto');
    expect(intervalOf('Auto')).toBe('auto');
    expect(intervalOf('0')).toBe(0);
    expect(intervalOf('often')).toEqual([
      'CLOSEWAIT_KERNEL_CHECK_MS must be a whole number of milliseconds; received "often"',
    ]);
  });

  it('keeps the defaults for unset and empty variables', () => {
    expect(readRegisterEnv({ CLOSEWAIT_GRACE_MS: '', PATH: '/bin' }, 1)).toEqual({
      ok: true,
      settings: { monitor: {}, logLevel: 'warn', health: undefined, reportFile: undefined },
    });
    expect(
      readRegisterEnv({ CLOSEWAIT_STACKS: 'all', CLOSEWAIT_HEALTH_PORT: '0' }, 1),
    ).toMatchObject({
      ok: true,
      settings: { monitor: { stacks: 'all' }, health: { port: 0, host: '127.0.0.1' } },
    });
  });

  it('names the variable and the value for each bad value', () => {
    expect(problemsOf({ CLOSEWAIT_GRACE_MS: '30s' })).toEqual([
      'CLOSEWAIT_GRACE_MS must be a whole number of milliseconds; received "30s"',
    ]);
    expect(problemsOf({ CLOSEWAIT_STACKS: 'some' })[0]).toMatch(
      /^CLOSEWAIT_STACKS must be all, none or a sample rate from 0 to 1; received "some"$/,
    );
    expect(problemsOf({ CLOSEWAIT_PATCH_CONNECT: 'maybe' })[0]).toContain(
      'CLOSEWAIT_PATCH_CONNECT must be 1/true/yes/on or 0/false/no/off; received "maybe"',
    );
    expect(problemsOf({ CLOSEWAIT_LOG_LEVEL: 'loud' })[0]).toContain(
      'CLOSEWAIT_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent; received "loud"',
    );
    expect(problemsOf({ CLOSEWAIT_HEALTH_PORT: '70000' })[0]).toContain(
      'CLOSEWAIT_HEALTH_PORT must be a port from 0 to 65535; received "70000"',
    );
    expect(problemsOf({ CLOSEWAIT_HEALTH_HOST: '::1' })).toEqual([
      'CLOSEWAIT_HEALTH_HOST needs CLOSEWAIT_HEALTH_PORT',
    ]);
    expect(problemsOf({ CLOSEWAIT_AUTO_DESTROY_DRY_RUN: '1' })).toEqual([
      'CLOSEWAIT_AUTO_DESTROY_DRY_RUN needs CLOSEWAIT_AUTO_DESTROY_MS',
    ]);
  });

  it('checks ranges where the options do, and names the variable, not the option', () => {
    expect(problemsOf({ CLOSEWAIT_GRACE_MS: '0' })).toEqual([
      'CLOSEWAIT_GRACE_MS must be a finite number from 1 to 2147483647; received "0"',
    ]);
    expect(problemsOf({ CLOSEWAIT_STACKS: '1.5' })).toEqual([
      'CLOSEWAIT_STACKS must be a finite number from 0 to 1; received "1.5"',
    ]);
    expect(problemsOf({ CLOSEWAIT_KERNEL_CHECK_MS: '10' })).toEqual([
      `CLOSEWAIT_KERNEL_CHECK_MS must be 'auto', 0 (off) or a number of ms from 100 to 86400000; received "10"`,
    ]);
  });

  it('takes an unknown CLOSEWAIT_ variable for a typo, and reports every problem at once', () => {
    expect(problemsOf({ CLOSEWAIT_GRACEMS: '100', CLOSEWAIT_STACKS: 'x' })).toEqual([
      'CLOSEWAIT_GRACEMS is not a closewait variable (typo?)',
      'CLOSEWAIT_STACKS must be all, none or a sample rate from 0 to 1; received "x"',
    ]);
  });

  it('documents every variable it reads', () => {
    for (const [name, text] of Object.entries(REGISTER_ENV)) {
      expect(name).toMatch(/^CLOSEWAIT_[A-Z_]+$/);
      expect(text.length).toBeGreaterThan(10);
    }
  });

  it('prints the problems as one line', () => {
    const line = problemLine(['CLOSEWAIT_A is bad', 'CLOSEWAIT_B is worse']);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(line).toContain('CLOSEWAIT_A is bad; CLOSEWAIT_B is worse');
    expect(line).toContain('the app runs unmonitored');
  });
});

describe('a bad value in a real process', () => {
  it('prints one line on stderr; the app starts, runs unmonitored and keeps its exit code', async () => {
    const app = spawnNode(['--import', REGISTER_JS, APPS.esm], {
      env: childEnv({
        // Valid on its own: monitored, the app's leak would be logged well within its lifetime.
        CLOSEWAIT_GRACE_MS: '200',
        CLOSEWAIT_STACKS: 'sometimes',
        APP_LIFETIME_MS: '1000',
        APP_EXIT_CODE: '4',
      }),
    });
    // The app runs: its own output is there, and it leaks as ever.
    await leakedPorts(app);
    expect(await app.waitForExit()).toEqual({ code: 4, signal: null });
    const stderrLines = app.stderr().split('\n').filter(Boolean);
    expect(stderrLines).toEqual([
      `closewait: CLOSEWAIT_STACKS must be all, none or a sample rate from 0 to 1; received "sometimes". closewait is off in this process (pid ${app.pid}); the app runs unmonitored.`,
    ]);
    expect(pinoLines(app.stderr())).toEqual([]);
  });

  it('does the same for a CommonJS app through NODE_OPTIONS', async () => {
    const app = spawnNode([APPS.cjs], {
      env: childEnv({
        NODE_OPTIONS: '--import closewait/register',
        CLOSEWAIT_HEALTH_PORT: 'http',
        APP_LIFETIME_MS: '500',
      }),
    });
    await leakedPorts(app);
    expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
    const stderrLines = app.stderr().split('\n').filter(Boolean);
    expect(stderrLines).toHaveLength(1);
    expect(stderrLines[0]).toMatch(
      /^closewait: CLOSEWAIT_HEALTH_PORT must be a port from 0 to 65535; received "http"\. closewait is off/,
    );
  });
});
