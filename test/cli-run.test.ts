import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  APPS,
  CLI_JS,
  childEnv,
  leakedPorts,
  listenSiteOf,
  pinoLines,
  ROOT,
  spawnNode,
} from './fixtures/apps/spawn-app.js';
import { unreadBodyBytes } from './fixtures/net.js';

const linux = process.platform === 'linux';

/** `closewait run -- <command...>` from the repo root (the table shows paths relative to it). */
function closewaitRun(
  command: string[],
  extra: Record<string, string> = {},
  options: string[] = [],
  spawnOptions: { detached?: boolean } = {},
) {
  return spawnNode([CLI_JS, 'run', ...options, '--', ...command], {
    env: childEnv({ CLOSEWAIT_GRACE_MS: '200', ...extra }),
    ...spawnOptions,
  });
}

/**
 * `closewait run` as a terminal's foreground job: in a process group of its own, where a Ctrl-C
 * is a SIGINT to the whole group (`kill(-pgid)`), the app included.
 */
function closewaitRunAsJob(command: string[], extra: Record<string, string> = {}) {
  return closewaitRun(command, extra, [], { detached: true });
}

/** The table row of a half-closed server leak at the app's listen() line, as printed. */
function tableRow(app: string, port: number): RegExp {
  const site = relative(ROOT, listenSiteOf(app)).replaceAll('.', '\\.');
  return new RegExp(
    `^\\s+1\\s+\\S+\\s+half-closed\\s+server\\s+server 127\\.0\\.0\\.1:${port} \\(listen at ${site}\\d+\\)`,
    'm',
  );
}

describe('closewait run -- <command>', () => {
  it('ESM app that exits by itself: its output passes through, the table names the leak and its line, exit 1', async () => {
    const run = closewaitRun([process.execPath, APPS.esm], { APP_LIFETIME_MS: '1500' });
    const { port, clientPort } = await leakedPorts(run);
    expect(await run.waitForExit()).toEqual({ code: 1, signal: null });

    const stderr = run.stderr();
    // Logged as it happened, by the preload, with the listen() line...
    const leakLine = pinoLines(stderr).find((line) => line.leak !== undefined) as {
      leak: { localPort: number; remotePort: number; server: { listenSite: string } };
    };
    expect(leakLine.leak).toMatchObject({ localPort: port, remotePort: clientPort });
    expect(leakLine.leak.server.listenSite).toContain(listenSiteOf(APPS.esm));
    // ...and in the table at the end.
    expect(stderr).toMatch(
      /closewait run: `\S+ \S+leaky-upgrade-app\.mjs` exited with code 0 after/,
    );
    expect(stderr).toMatch(/closewait: 1 leaked socket .* in 1 group/);
    expect(stderr).toMatch(tableRow(APPS.esm, port));
    expect(stderr).toContain("GET /live on 'upgrade'");
  });

  it('CommonJS app stopped with SIGTERM: passed on, the app shuts down, the table still shows the leak it closed late', async () => {
    const run = closewaitRun([process.execPath, APPS.cjs], { APP_LIFETIME_MS: '10000' });
    const { port } = await leakedPorts(run);
    await run.waitFor('stderr', /"msg":"CLOSE_WAIT socket leak/);
    run.child.kill('SIGTERM');
    expect(await run.waitForExit()).toEqual({ code: 1, signal: null });

    const stderr = run.stderr();
    expect(stderr).toMatch(/half-open-server-app\.cjs` exited with code 0 after/);
    expect(stderr).toMatch(tableRow(APPS.cjs, port));
    expect(stderr).toContain('1 of them was closed before the process exited');
  });

  it('ESM app with no signal handler, stopped with Ctrl-C: it dies of it, and the report still comes back', async () => {
    const run = closewaitRunAsJob([process.execPath, APPS.esm], { APP_LIFETIME_MS: '10000' });
    const { port } = await leakedPorts(run);
    await run.waitFor('stderr', /"msg":"CLOSE_WAIT socket leak/);
    process.kill(-run.pid, 'SIGINT');
    expect(await run.waitForExit()).toEqual({ code: 1, signal: null });
    expect(run.stderr()).toContain('was stopped by SIGINT (sent to the process group)');
    expect(run.stderr()).toMatch(tableRow(APPS.esm, port));
  });

  it('a Ctrl-C reaches the app once: closewait does not pass on what the group already got', async () => {
    // Counts SIGINTs, says when the first came, and how many came in the second after it.
    const app = `
      let count = 0;
      process.on('SIGINT', () => {
        if (count++ > 0) return;
        console.log('got one');
        setTimeout(() => { console.log('sigint ' + count); process.exit(0); }, 1000);
      });
      setInterval(() => {}, 1000);
      console.log('ready');`;
    const run = closewaitRunAsJob([process.execPath, '-e', app]);
    await run.waitFor('stdout', /ready/);
    // Two SIGINTs that reach a process before it has taken the first are one (signals do not
    // queue): closewait is held still until the app has taken the group's, so that a second
    // one passed on by closewait would be counted.
    process.kill(run.pid, 'SIGSTOP');
    process.kill(-run.pid, 'SIGINT');
    await run.waitFor('stdout', /got one/);
    process.kill(run.pid, 'SIGCONT');
    expect(await run.waitForExit()).toEqual({ code: 0, signal: null });
    expect(run.stdout()).toContain('sigint 1\n');
    expect(run.stderr()).toContain('exited with code 0');
  });

  it('SIGTERM to closewait alone is passed on to the app, once', async () => {
    const app = `
      let count = 0;
      process.on('SIGTERM', () => {
        if (count++ === 0) setTimeout(() => { console.log('sigterm ' + count); process.exit(0); }, 500);
      });
      setInterval(() => {}, 1000);
      console.log('ready');`;
    const run = closewaitRunAsJob([process.execPath, '-e', app]);
    await run.waitFor('stdout', /ready/);
    run.child.kill('SIGTERM');
    expect(await run.waitForExit()).toEqual({ code: 0, signal: null });
    expect(run.stdout()).toContain('sigterm 1\n');
  });

  it.runIf(linux)(
    'a short-lived app with no CLOSEWAIT_* set: a socket still in CLOSE_WAIT at exit is listed, exit 1',
    async () => {
      // Exits 300 ms after its client hung up: far inside the default 30 s grace.
      const script = `
      const net = require('node:net');
      const server = net.createServer({ allowHalfOpen: true }, () => {});
      server.listen(0, '127.0.0.1', () => {
        const client = net.connect(server.address().port, '127.0.0.1', () => client.end());
        client.on('end', () => {});
        setTimeout(() => process.exit(0), 300);
      });`;
      const run = spawnNode([CLI_JS, 'run', '--', process.execPath, '-e', script], {
        env: childEnv(),
      });
      expect(await run.waitForExit()).toEqual({ code: 1, signal: null });
      const stderr = run.stderr();
      expect(stderr).toMatch(/closewait: 0 leaked sockets/);
      expect(stderr).toContain('closewait: 1 socket was still in CLOSE_WAIT at exit');
      expect(stderr).toMatch(
        /^\s+1\s+at exit\s+half-closed\s+server\s+server 127\.0\.0\.1:\d+ \(listen at \[eval\]/m,
      );
    },
  );

  it.runIf(linux)(
    'a short-lived app that leaves a fetch() body unread: listed at exit, exit 1',
    async () => {
      const bytes = unreadBodyBytes('fetch');
      // The server sends the body and hangs up; the app reads the headers only, then exits.
      const script = `
      const http = require('node:http');
      const server = http.createServer((request, response) => {
        response.setHeader('Connection', 'close');
        response.end(Buffer.alloc(${bytes}, 0x61));
      });
      server.listen(0, '127.0.0.1', async () => {
        const response = await fetch('http://127.0.0.1:' + server.address().port + '/body');
        console.log('status ' + response.status);
        setTimeout(() => process.exit(0), 300);
      });`;
      const run = spawnNode([CLI_JS, 'run', '--', process.execPath, '-e', script], {
        env: childEnv(),
      });
      expect(await run.waitForExit()).toEqual({ code: 1, signal: null });
      expect(run.stdout()).toContain('status 200');
      const stderr = run.stderr();
      expect(stderr).toContain('still in CLOSE_WAIT at exit');
      expect(stderr).toMatch(
        /^\s+1\s+at exit\s+\S+\s+client\s+.*GET http:\/\/127\.0\.0\.1:\d+\/body/m,
      );
    },
  );

  it('exits 0 with an empty table when nothing leaked', async () => {
    const script = `
      const net = require('node:net');
      const server = net.createServer((socket) => socket.end());
      server.listen(0, '127.0.0.1', () => {
        const client = net.connect(server.address().port, '127.0.0.1');
        client.resume();
        client.on('close', () => server.close());
      });`;
    const run = closewaitRun([process.execPath, '-e', script]);
    expect(await run.waitForExit()).toEqual({ code: 0, signal: null });
    expect(run.stderr()).toMatch(/closewait: 0 leaked sockets .* of 0 tracked, in 0 groups/);
  });

  it("passes the app's own failure through, whatever it leaked", async () => {
    const run = closewaitRun([process.execPath, APPS.esm], {
      APP_LIFETIME_MS: '1500',
      APP_EXIT_CODE: '5',
    });
    expect(await run.waitForExit()).toEqual({ code: 5, signal: null });
    expect(run.stderr()).toContain('exited with code 5');
    expect(run.stderr()).toMatch(/closewait: 1 leaked socket/);
  });

  it('prints a table per Node process when the command starts several (%p in the report file)', async () => {
    const parent = `
      const { spawnSync } = require('node:child_process');
      const result = spawnSync(process.execPath, [${JSON.stringify(APPS.esm)}], { stdio: 'inherit' });
      process.exitCode = result.status;`;
    const run = closewaitRun([process.execPath, '-e', parent], { APP_LIFETIME_MS: '1500' });
    const { port, pid } = await leakedPorts(run);
    expect(await run.waitForExit()).toEqual({ code: 1, signal: null });
    const stderr = run.stderr();
    expect(stderr).toContain(`-- pid ${pid}: node test/fixtures/apps/leaky-upgrade-app.mjs`);
    expect(stderr).toMatch(/^-- pid \d+: node$/m);
    expect(stderr).toMatch(tableRow(APPS.esm, port));
  });

  it('writes the reports as JSON with --report-json', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'closewait-run-test-'));
    try {
      const file = join(dir, 'report.json');
      const run = closewaitRun([process.execPath, APPS.esm], { APP_LIFETIME_MS: '1500' }, [
        '--report-json',
        file,
      ]);
      const { port, pid } = await leakedPorts(run);
      expect(await run.waitForExit()).toEqual({ code: 1, signal: null });
      const json = JSON.parse(readFileSync(file, 'utf8'));
      expect(json).toMatchObject({ code: 0, signal: null });
      expect(json.reports).toHaveLength(1);
      expect(json.reports[0]).toMatchObject({ pid, writtenOn: 'exit', stillOpen: 1, notListed: 0 });
      const group = json.reports[0].report.groups[0];
      expect(group).toMatchObject({ kind: 'half-closed', direction: 'server', count: 1 });
      expect(group.server).toMatchObject({ port });
      expect(group.stack).toContain(listenSiteOf(APPS.esm));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 when no report comes back (not a Node command)', async () => {
    const run = closewaitRun(['sh', '-c', 'exit 0']);
    expect(await run.waitForExit()).toEqual({ code: 2, signal: null });
    expect(run.stderr()).toContain('no report came back');
  });

  it('exits 128 + 9 when the app is killed by a signal it did not get from closewait (SIGKILL: no report)', async () => {
    const run = closewaitRun([process.execPath, '-e', "process.kill(process.pid, 'SIGKILL')"]);
    expect(await run.waitForExit()).toEqual({ code: 137, signal: null });
    expect(run.stderr()).toContain('was stopped by SIGKILL after');
    expect(run.stderr()).toContain('no report came back');
  });

  it('exits 2 when the command cannot start', async () => {
    const run = closewaitRun(['/nonexistent/closewait-test-command']);
    expect(await run.waitForExit()).toEqual({ code: 2, signal: null });
    expect(run.stderr()).toContain('could not start `/nonexistent/closewait-test-command`');
  });

  it('refuses a bad CLOSEWAIT_* value before starting the app, in one line', async () => {
    const run = closewaitRun([process.execPath, APPS.esm], { CLOSEWAIT_GRACE_MS: '-1' });
    expect(await run.waitForExit()).toEqual({ code: 2, signal: null });
    expect(run.stderr()).toBe(
      'closewait run: CLOSEWAIT_GRACE_MS must be a whole number of milliseconds; received "-1"\n',
    );
    expect(run.stdout()).toBe('');
  });

  it('explains itself with --help, exit codes included; usage errors exit 2', async () => {
    const help = spawnNode([CLI_JS, 'run', '--help']);
    expect(await help.waitForExit()).toEqual({ code: 0, signal: null });
    expect(help.stdout()).toContain('Usage: closewait run');
    expect(help.stdout()).toContain('Exit codes:');

    const nothing = spawnNode([CLI_JS, 'run']);
    expect(await nothing.waitForExit()).toEqual({ code: 2, signal: null });
    expect(nothing.stderr()).toContain('no command to run');

    const top = spawnNode([CLI_JS, '--help']);
    expect(await top.waitForExit()).toEqual({ code: 0, signal: null });
    for (const name of ['closewait run', 'closewait inspect', 'CLOSEWAIT_GRACE_MS']) {
      expect(top.stdout()).toContain(name);
    }
    const unknown = spawnNode([CLI_JS, 'frobnicate']);
    expect(await unknown.waitForExit()).toEqual({ code: 2, signal: null });
  });
});
