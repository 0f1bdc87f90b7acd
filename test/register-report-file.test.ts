import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childEnv, REGISTER_JS, spawnNode } from './fixtures/apps/spawn-app.js';

/**
 * The attack of issue 14: a shared sticky directory (/tmp), a process of ours that writes its
 * report there at exit, and another local user who plants a link or a file where the report
 * will go. Run as root, the other user is real (`nobody`, uid 65534, by spawn's uid/gid); run
 * as anyone else, the files are planted by the same user, which shows the same paths are
 * refused or replaced but not the ownership.
 */
const ROOT_USER = process.getuid?.() === 0;
const OTHER = { uid: 65_534, gid: 65_534 };

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A sticky, world-writable directory, as /tmp is. */
function sharedDir(): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'closewait-shared-'));
  chmodSync(dir, 0o1777);
  dirs.push(dir);
  return dir;
}

/** A file only we (root, when run as root) may write, holding `text`. */
function victimFile(text: string): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'closewait-victim-'));
  dirs.push(dir);
  chmodSync(dir, 0o755);
  const file = join(dir, 'precious');
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** Runs a shell command as the other user (or as us, not being root). */
function asOtherUser(script: string): void {
  const result = spawnSync('sh', ['-c', script], ROOT_USER ? OTHER : {});
  if (result.status !== 0) throw new Error(`as other user: ${script}: ${result.stderr}`);
}

/**
 * An app under the preload that exits when `go` appears: the test learns its pid first, so it
 * can plant files at the names that pid makes predictable.
 */
function appWaitingFor(go: string, reportFile: string) {
  const script = `
    const fs = require('node:fs');
    console.log('ready');
    const poll = setInterval(() => { if (fs.existsSync(${JSON.stringify(go)})) clearInterval(poll); }, 10);`;
  return spawnNode(['--import', REGISTER_JS, '-e', script], {
    env: childEnv({ CLOSEWAIT_REPORT_FILE: reportFile }),
  });
}

describe.skipIf(process.platform !== 'linux')(
  'CLOSEWAIT_REPORT_FILE in a shared directory (Linux: sticky /tmp semantics)',
  () => {
    it('does not write through a link planted at the temporary file name the pid predicts', async () => {
      const shared = sharedDir();
      const victim = victimFile('precious\n');
      const report = join(shared, 'report.json');
      const go = join(shared, 'go');
      const app = appWaitingFor(go, report);
      await app.waitFor('stdout', /ready/);
      // The old writer's temporary name: `<file>.<pid>.partial`.
      asOtherUser(`ln -s ${victim} ${report}.${app.pid}.partial`);
      writeFileSync(go, '');
      expect(await app.waitForExit()).toEqual({ code: 0, signal: null });

      expect(readFileSync(victim, 'utf8')).toBe('precious\n');
      const written = lstatSync(report);
      expect(written.isFile()).toBe(true);
      expect(written.mode & 0o777).toBe(0o600);
      expect(written.uid).toBe(process.getuid?.());
      expect(JSON.parse(readFileSync(report, 'utf8'))).toMatchObject({ pid: app.pid });
      // Nothing of ours is left beside it.
      expect(readdirSync(shared).sort()).toEqual(
        ['go', 'report.json', `report.json.${app.pid}.partial`].sort(),
      );
    });

    it('does not adopt files planted at the report or its temporary name: the report is a new private file', async () => {
      const shared = sharedDir();
      const report = join(shared, 'report.json');
      const go = join(shared, 'go');
      const app = appWaitingFor(go, report);
      await app.waitFor('stdout', /ready/);
      // World-writable files made first by the other user: adopting either would hand them the
      // report, argv and all.
      asOtherUser(
        `umask 000 && printf planted > ${report} && printf planted > ${report}.${app.pid}.partial`,
      );
      const planted = lstatSync(report);
      writeFileSync(go, '');
      expect(await app.waitForExit()).toEqual({ code: 0, signal: null });

      const written = lstatSync(report);
      expect(written.ino).not.toBe(planted.ino);
      expect(written.mode & 0o777).toBe(0o600);
      expect(written.uid).toBe(process.getuid?.());
      expect(JSON.parse(readFileSync(report, 'utf8'))).toMatchObject({ pid: app.pid });
      // The planted temporary file was not written to (nor renamed into place).
      expect(readFileSync(`${report}.${app.pid}.partial`, 'utf8')).toBe('planted');
    });

    it('refuses a report file that is a symbolic link, in one line, and leaves its target alone', async () => {
      const shared = sharedDir();
      const victim = victimFile('precious\n');
      const report = join(shared, 'report.json');
      asOtherUser(`ln -s ${victim} ${report}`);
      const app = spawnNode(['--import', REGISTER_JS, '-e', 'setTimeout(() => {}, 50)'], {
        env: childEnv({ CLOSEWAIT_REPORT_FILE: report }),
      });
      expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
      expect(app.stderr()).toBe(
        `closewait: CLOSEWAIT_REPORT_FILE: ${report} is a symbolic link, which closewait does ` +
          `not follow; no report will be written (pid ${app.pid}). Leaks are still logged.\n`,
      );
      expect(readFileSync(victim, 'utf8')).toBe('precious\n');
      expect(lstatSync(report).isSymbolicLink()).toBe(true);
    });

    it('refuses a directory (CLOSEWAIT_REPORT_FILE=/tmp), in one line, and leaves no <dir>.<pid>.partial', async () => {
      const shared = sharedDir();
      const target = join(shared, 'reports');
      asOtherUser(`mkdir ${target}`);
      const app = spawnNode(['--import', REGISTER_JS, '-e', 'setTimeout(() => {}, 50)'], {
        env: childEnv({ CLOSEWAIT_REPORT_FILE: target }),
      });
      expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
      expect(app.stderr()).toBe(
        `closewait: CLOSEWAIT_REPORT_FILE: ${target} is a directory; give a file name, such as ` +
          `${join(target, 'closewait-%p.json')}; no report will be written (pid ${app.pid}). ` +
          'Leaks are still logged.\n',
      );
      expect(readdirSync(shared)).toEqual(['reports']);
      expect(readdirSync(target)).toEqual([]);
      expect(existsSync(`${target}.${app.pid}.partial`)).toBe(false);
    });

    it('still expands %p to the pid', async () => {
      const shared = sharedDir();
      const app = spawnNode(['--import', REGISTER_JS, '-e', 'setTimeout(() => {}, 50)'], {
        env: childEnv({ CLOSEWAIT_REPORT_FILE: join(shared, 'report-%p.json') }),
      });
      expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
      const written = lstatSync(join(shared, `report-${app.pid}.json`));
      expect(written.mode & 0o777).toBe(0o600);
      expect(readdirSync(shared)).toEqual([`report-${app.pid}.json`]);
    });
  },
);
