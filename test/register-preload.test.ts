import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExitReport } from '../src/register/exit-report.js';
import {
  APPS,
  childEnv,
  leakedPorts,
  listenSiteOf,
  pinoLines,
  REGISTER_JS,
  spawnNode,
  spawnProcess,
} from './fixtures/apps/spawn-app.js';

const GRACE = '200';
const HALF_CLOSED_MESSAGE =
  'CLOSE_WAIT socket leak: the peer closed the connection and this app never closed its socket';

interface LeakLine {
  level: number;
  component: string;
  msg: string;
  leak: {
    kind: string;
    direction: string;
    localPort: number;
    remotePort: number;
    where: string;
    server: { listenSite: string };
  };
}

/** Waits for the first leak line on the child's stderr and returns it parsed. */
async function firstLeakLine(app: ReturnType<typeof spawnNode>): Promise<LeakLine> {
  await app.waitFor('stderr', /"msg":"CLOSE_WAIT socket leak/, 5000);
  return pinoLines(app.stderr()).find((line) => line.leak !== undefined) as unknown as LeakLine;
}

/** GET with a fresh connection each time, so this test process holds no socket afterwards. */
function get(url: string, agent: http.Agent | false = false) {
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const request = http.get(url, { agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          type: String(response.headers['content-type']),
          body,
        }),
      );
    });
    request.on('error', reject);
    request.setTimeout(3000, () => request.destroy(new Error(`GET ${url} timed out`)));
  });
}

const canUnshareNetwork =
  process.platform === 'linux' && spawnSync('unshare', ['-n', 'true']).status === 0;

const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((addresses) =>
  addresses?.some((a) => a.family === 'IPv6' && a.address === '::1'),
);

describe('node --import closewait/register (unmodified apps)', () => {
  it('ESM app, preload by absolute path from another cwd: the leak is logged with its line, the exit code kept', async () => {
    const app = spawnNode(['--import', REGISTER_JS, APPS.esm], {
      cwd: os.tmpdir(),
      env: childEnv({ CLOSEWAIT_GRACE_MS: GRACE, APP_LIFETIME_MS: '2000', APP_EXIT_CODE: '3' }),
    });
    const { port, clientPort } = await leakedPorts(app);
    const line = await firstLeakLine(app);
    expect(line).toMatchObject({
      level: 40,
      component: 'closewait',
      msg: HALF_CLOSED_MESSAGE,
      leak: { kind: 'half-closed', direction: 'server', localPort: port, remotePort: clientPort },
    });
    // The default stacks (1% sampled) still name a server's sockets: listen() is always captured.
    expect(line.leak.server.listenSite).toContain(listenSiteOf(APPS.esm));
    expect(line.leak.where).toContain("GET /live on 'upgrade'");

    expect(await app.waitForExit()).toEqual({ code: 3, signal: null });
  });

  it('CommonJS app, NODE_OPTIONS="--import closewait/register" by package name: logged, then exits on its own', async () => {
    const app = spawnNode([APPS.cjs], {
      env: childEnv({
        NODE_OPTIONS: '--import closewait/register',
        CLOSEWAIT_GRACE_MS: GRACE,
        APP_LIFETIME_MS: '10000',
      }),
    });
    const { port, clientPort } = await leakedPorts(app);
    const line = await firstLeakLine(app);
    expect(line.leak).toMatchObject({
      kind: 'half-closed',
      localPort: port,
      remotePort: clientPort,
    });
    expect(line.leak.server.listenSite).toContain(listenSiteOf(APPS.cjs));

    // The app's own SIGTERM handler still runs: it closes everything and exits by itself.
    app.child.kill('SIGTERM');
    expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
    // Closed at last: the resolution is logged at info, below the default level (warn).
    expect(app.stderr()).not.toContain('resolved');
  });

  it('CommonJS app with node -r closewait/register (require of the ESM preload, Node >= 20.19)', async () => {
    const app = spawnNode(['-r', 'closewait/register', APPS.cjs], {
      env: childEnv({ CLOSEWAIT_GRACE_MS: GRACE, APP_LIFETIME_MS: '10000' }),
    });
    await leakedPorts(app);
    const line = await firstLeakLine(app);
    expect(line.leak.server.listenSite).toContain(listenSiteOf(APPS.cjs));
    app.child.kill('SIGTERM');
    expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
  });

  it('keeps nothing alive: every feature on, a short script exits at once with its own code', async () => {
    const reportDir = mkdtempSync(join(os.tmpdir(), 'closewait-preload-'));
    try {
      const started = Date.now();
      const app = spawnNode(
        ['--import', REGISTER_JS, '-e', 'setTimeout(() => { process.exitCode = 7; }, 500);'],
        {
          env: childEnv({
            CLOSEWAIT_GRACE_MS: GRACE,
            CLOSEWAIT_HEALTH_PORT: '0',
            CLOSEWAIT_KERNEL_CHECK_MS: '100',
            CLOSEWAIT_SUMMARY_MS: '100',
            CLOSEWAIT_AUTO_DESTROY_MS: '100',
            CLOSEWAIT_REPORT_FILE: join(reportDir, 'report-%p.json'),
            CLOSEWAIT_LOG_LEVEL: 'info',
          }),
        },
      );
      expect(await app.waitForExit(5000)).toEqual({ code: 7, signal: null });
      expect(app.stderr()).toContain('closewait health server listening');
      // Node's own startup is most of it; an unref() missing would hold it for seconds.
      expect(Date.now() - started).toBeLessThan(4000);
      expect(existsSync(join(reportDir, `report-${app.pid}.json`))).toBe(true);
    } finally {
      rmSync(reportDir, { recursive: true, force: true });
    }
  });

  it('serves /health/sockets, / and /metrics on CLOSEWAIT_HEALTH_PORT; a kept-alive scraper does not hold the app', async () => {
    // The CommonJS app exits on its own once it has closed its sockets: only a handle of ours
    // could keep it running.
    const app = spawnNode(['--import', REGISTER_JS, APPS.cjs], {
      env: childEnv({
        CLOSEWAIT_GRACE_MS: GRACE,
        CLOSEWAIT_HEALTH_PORT: '0',
        CLOSEWAIT_LOG_LEVEL: 'info',
        APP_LIFETIME_MS: '2500',
      }),
    });
    const [, url] = await app.waitFor('stderr', /listening on (http:\/\/127\.0\.0\.1:\d+)\//);
    await leakedPorts(app);
    await firstLeakLine(app);

    const health = await get(`${url}/health/sockets`);
    expect(health.status).toBe(200);
    expect(health.type).toBe('application/health+json');
    const payload = JSON.parse(health.body);
    expect(payload.status).toBe('warn');
    expect(payload.checks['closewait:leaks'][0]).toMatchObject({ observedValue: 1 });
    expect(JSON.parse((await get(`${url}/`)).body).status).toBe('warn');

    const metrics = await get(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain(
      'closewait_leaked_sockets{direction="server",kind="half-closed"} 1',
    );
    expect((await get(`${url}/nope`)).status).toBe(404);

    // A scraper's keep-alive connection stays open (the server's keepAliveTimeout is 5 s): the
    // app must exit at the end of its lifetime all the same, well before that.
    const agent = new http.Agent({ keepAlive: true });
    try {
      expect((await get(`${url}/health/sockets`, agent)).status).toBe(200);
      expect(await app.waitForExit(2500)).toEqual({ code: 0, signal: null });
    } finally {
      agent.destroy();
    }
  });

  it.runIf(hasIpv6Loopback)('binds the health server to CLOSEWAIT_HEALTH_HOST', async () => {
    const app = spawnNode(['--import', REGISTER_JS, '-e', 'setTimeout(() => {}, 3000);'], {
      env: childEnv({
        CLOSEWAIT_HEALTH_PORT: '0',
        CLOSEWAIT_HEALTH_HOST: '::1',
        CLOSEWAIT_LOG_LEVEL: 'info',
      }),
    });
    const [, url] = await app.waitFor('stderr', /listening on (http:\/\/\[::1\]:\d+)\//);
    expect(JSON.parse((await get(`${url}/health/sockets`)).body).status).toBe('pass');
  });

  it('says nothing at the default level when the health server binds loopback', async () => {
    const app = spawnNode(['--import', REGISTER_JS, '-e', 'setTimeout(() => {}, 200);'], {
      env: childEnv({ CLOSEWAIT_HEALTH_PORT: '0', CLOSEWAIT_HEALTH_VERBOSE: '1' }),
    });
    expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
    expect(app.stderr()).toBe('');
  });

  // 0.0.0.0 inside a network namespace of its own (`unshare -n`, root): the port is reachable
  // from nowhere, and the address is the one a user would give.
  it.runIf(canUnshareNetwork)(
    'warns when the health server binds an address other hosts can reach, louder with verbose on',
    async () => {
      const run = (verbose: string) =>
        spawnProcess(
          'unshare',
          ['-n', process.execPath, '--import', REGISTER_JS, '-e', 'setTimeout(() => {}, 200);'],
          {
            env: childEnv({
              CLOSEWAIT_HEALTH_PORT: '0',
              CLOSEWAIT_HEALTH_HOST: '0.0.0.0',
              CLOSEWAIT_HEALTH_VERBOSE: verbose,
            }),
          },
        );
      const [quiet, verbose] = [run('0'), run('1')];
      for (const app of [quiet, verbose]) {
        expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
      }
      const [quietLine] = pinoLines(quiet.stderr());
      expect(quietLine).toMatchObject({ level: 40, health: { address: '0.0.0.0' } });
      expect(quietLine!.msg).toMatch(
        /^closewait health server listening on http:\/\/0\.0\.0\.0:\d+\/health\/sockets: CLOSEWAIT_HEALTH_HOST=0\.0\.0\.0 is not a loopback address: other hosts can read/,
      );
      const [verboseLine] = pinoLines(verbose.stderr());
      expect(verboseLine).toMatchObject({ level: 40 });
      expect(verboseLine!.msg).toContain('CLOSEWAIT_HEALTH_VERBOSE is on');
      expect(verboseLine!.msg).toContain('stacks');
      expect(pinoLines(quiet.stderr())).toHaveLength(1);
      expect(pinoLines(verbose.stderr())).toHaveLength(1);
    },
  );

  it('says once when the health port is taken, and keeps logging leaks', async () => {
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const app = spawnNode(['--import', REGISTER_JS, APPS.esm], {
        env: childEnv({
          CLOSEWAIT_GRACE_MS: GRACE,
          CLOSEWAIT_HEALTH_PORT: String(port),
          APP_LIFETIME_MS: '10000',
        }),
      });
      await app.waitFor('stderr', /could not listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
      await leakedPorts(app);
      await firstLeakLine(app);
    } finally {
      blocker.close();
    }
  });

  it('watches worker threads too; the side server and the report stay with the main thread', async () => {
    const reportDir = mkdtempSync(join(os.tmpdir(), 'closewait-preload-'));
    try {
      const app = spawnNode(['--import', REGISTER_JS, APPS.worker], {
        env: childEnv({
          CLOSEWAIT_GRACE_MS: GRACE,
          CLOSEWAIT_HEALTH_PORT: '0',
          CLOSEWAIT_LOG_LEVEL: 'info',
          CLOSEWAIT_REPORT_FILE: join(reportDir, 'report-%p.json'),
        }),
      });
      const line = await firstLeakLine(app);
      expect(line.leak.server.listenSite).toContain(listenSiteOf(APPS.worker));
      expect(await app.waitForExit()).toEqual({ code: 0, signal: null });
      const lines = pinoLines(app.stderr());
      expect(lines.filter((line) => String(line.msg).includes('health server'))).toHaveLength(1);
      const report = JSON.parse(
        readFileSync(join(reportDir, `report-${app.pid}.json`), 'utf8'),
      ) as ExitReport;
      // The main thread's own monitor saw no socket of the worker's.
      expect(report.report.tracked).toBe(0);
    } finally {
      rmSync(reportDir, { recursive: true, force: true });
    }
  });

  it('CLOSEWAIT_AUTO_DESTROY_MS destroys the leak the app never closes', async () => {
    const app = spawnNode(['--import', REGISTER_JS, APPS.esm], {
      env: childEnv({
        CLOSEWAIT_GRACE_MS: GRACE,
        CLOSEWAIT_AUTO_DESTROY_MS: '100',
        APP_LIFETIME_MS: '10000',
      }),
    });
    await leakedPorts(app);
    await firstLeakLine(app);
    await app.waitFor('stderr', /closewait auto-destroy destroyed a CLOSE_WAIT socket leak/);
  });

  it('CLOSEWAIT_REPORT_FILE: a SIGTERM the app does not handle still kills it, after the report is written', async () => {
    const reportDir = mkdtempSync(join(os.tmpdir(), 'closewait-preload-'));
    try {
      const app = spawnNode(['--import', REGISTER_JS, APPS.esm], {
        env: childEnv({
          CLOSEWAIT_GRACE_MS: GRACE,
          CLOSEWAIT_REPORT_FILE: join(reportDir, 'report-%p.json'),
          APP_LIFETIME_MS: '10000',
        }),
      });
      await leakedPorts(app);
      await firstLeakLine(app);
      app.child.kill('SIGTERM');
      // Died of the signal, as it would have without closewait.
      expect(await app.waitForExit()).toEqual({ code: null, signal: 'SIGTERM' });
      const report = JSON.parse(
        readFileSync(join(reportDir, `report-${app.pid}.json`), 'utf8'),
      ) as ExitReport;
      expect(report).toMatchObject({ pid: app.pid, writtenOn: 'SIGTERM', stillOpen: 1 });
      expect(report.report.groups[0]!.site).toContain(listenSiteOf(APPS.esm));
    } finally {
      rmSync(reportDir, { recursive: true, force: true });
    }
  });
});
