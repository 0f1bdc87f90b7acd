import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExitReport } from '../src/register/exit-report.js';
import { childEnv, leakedPorts, REGISTER_JS, ROOT, spawnNode } from './fixtures/apps/spawn-app.js';

const PAUSED_READER_APP = join(ROOT, 'test/fixtures/apps/paused-reader-app.cjs');

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(process.platform !== 'linux')('the preload checks the kernel once at exit', () => {
  it("the exit report carries the kernel's CLOSE_WAIT sockets as they were at exit", async () => {
    const reportDir = mkdtempSync(join(os.tmpdir(), 'closewait-exit-check-'));
    dirs.push(reportDir);
    // A periodic check a day away: only the one at exit can have looked.
    const app = spawnNode(['--import', REGISTER_JS, PAUSED_READER_APP], {
      env: childEnv({
        CLOSEWAIT_KERNEL_CHECK_MS: '86400000',
        CLOSEWAIT_REPORT_FILE: join(reportDir, 'report-%p.json'),
        APP_LIFETIME_MS: '600',
      }),
    });
    const { port, pid } = await leakedPorts(app);
    const leakedAt = Date.now();
    expect(await app.waitForExit()).toEqual({ code: 0, signal: null });

    const report = JSON.parse(
      readFileSync(join(reportDir, `report-${pid}.json`), 'utf8'),
    ) as ExitReport;
    expect(report.report.kernel).toBeDefined();
    expect(report.report.kernel!.checkedAt).toBeGreaterThanOrEqual(leakedAt);
    // The paused server socket: tracked, so not unattributed.
    expect(report.report.kernel!.closeWait).toBe(1);
    expect(report.report.kernel!.unattributed).toEqual([]);
    expect(report.report.tracked).toBeGreaterThanOrEqual(2);
    expect(port).toBeGreaterThan(0);
  });
});
