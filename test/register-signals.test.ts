import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExitReport } from '../src/register/exit-report.js';
import { childEnv, REGISTER_JS, ROOT, spawnNode } from './fixtures/apps/spawn-app.js';

const APP = join(ROOT, 'test/fixtures/apps/signal-app.cjs');

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs the app one way, with or without the preload (and with a report file, as under
 * `closewait run`: that is when the preload listens for signals), sends `signal` from outside
 * once it is ready (or nothing), and returns how it ended and the report it left.
 */
async function endOf(way: string, signal: NodeJS.Signals | undefined, preload: boolean) {
  const dir = mkdtempSync(join(os.tmpdir(), 'closewait-signals-'));
  dirs.push(dir);
  const reportFile = join(dir, 'report.json');
  const app = spawnNode([...(preload ? ['--import', REGISTER_JS] : []), APP, way], {
    env: childEnv({ CLOSEWAIT_REPORT_FILE: reportFile }),
  });
  await app.waitFor('stdout', /ready/);
  if (signal !== undefined) app.child.kill(signal);
  const end = await app.waitForExit();
  let report: ExitReport | undefined;
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8')) as ExitReport;
  } catch {
    report = undefined;
  }
  return { end, report, stderr: app.stderr() };
}

const CASES: Array<{
  way: string;
  signal: NodeJS.Signals | undefined;
  end: { code: number | null; signal: NodeJS.Signals | null };
  writtenOn: ExitReport['writtenOn'];
}> = [
  { way: 'reraise', signal: 'SIGINT', end: { code: null, signal: 'SIGINT' }, writtenOn: 'SIGINT' },
  {
    way: 'reraise-later',
    signal: 'SIGINT',
    end: { code: null, signal: 'SIGINT' },
    writtenOn: 'SIGINT',
  },
  {
    way: 'timer-kill',
    signal: undefined,
    end: { code: null, signal: 'SIGTERM' },
    writtenOn: 'SIGTERM',
  },
  { way: 'handled-exit', signal: 'SIGTERM', end: { code: 0, signal: null }, writtenOn: 'exit' },
  { way: 'handled-drain', signal: 'SIGTERM', end: { code: 0, signal: null }, writtenOn: 'exit' },
  { way: 'none', signal: 'SIGTERM', end: { code: null, signal: 'SIGTERM' }, writtenOn: 'SIGTERM' },
  { way: 'none', signal: 'SIGINT', end: { code: null, signal: 'SIGINT' }, writtenOn: 'SIGINT' },
];

describe('the preload leaves how a process dies as it was', () => {
  it.each(CASES)(
    '$way, $signal from outside: ends as without closewait ($end.code $end.signal), report written on $writtenOn',
    async ({ way, signal, end, writtenOn }) => {
      const [without, withPreload] = await Promise.all([
        endOf(way, signal, false),
        endOf(way, signal, true),
      ]);
      expect(without.end).toEqual(end);
      expect(withPreload.end).toEqual(end);
      expect(withPreload.stderr).toBe('');
      expect(without.report).toBeUndefined();
      expect(withPreload.report).toMatchObject({ writtenOn });
    },
  );
});
