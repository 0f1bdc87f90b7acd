import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createSocketMonitor, type SocketLeak } from '../src/index.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { GRACE_MS, nextLeak, startMonitor } from './fixtures/monitor.js';
import { HOST, listen, until, waitFor } from './fixtures/net.js';
import { capturePino, LEVEL, type LogLine } from './fixtures/pino-capture.js';

const HALF_CLOSED_MESSAGE =
  'CLOSE_WAIT socket leak: the peer closed the connection and this app never closed its socket';

async function leakyServer() {
  const server = http.createServer();
  const taken = holdUpgrades(server);
  const port = await listen(server);
  return { port, taken };
}

/**
 * A separate process that makes one leak, closes it once reported, and exits: its stderr is
 * what an app's stderr would show. It imports closewait by package name, so dist/ must be
 * built (npm test builds it first).
 */
async function runLeakingChild(monitorOptions: string) {
  const script = `
    import http from 'node:http';
    import net from 'node:net';
    import { createSocketMonitor } from 'closewait';
    const monitor = createSocketMonitor(${monitorOptions}).start();
    const server = http.createServer();
    const taken = [];
    server.on('upgrade', (_req, socket) => {
      taken.push(socket);
      socket.write('HTTP/1.1 101 Switching Protocols\\r\\nConnection: Upgrade\\r\\nUpgrade: x\\r\\n\\r\\n');
    });
    monitor.on('leak', () => taken[0].destroy());
    monitor.on('leak-resolved', () => process.exit(0));
    server.listen(0, '127.0.0.1', () => {
      const client = net.connect(server.address().port, '127.0.0.1', () =>
        client.write('GET /x HTTP/1.1\\r\\nHost: x\\r\\nConnection: Upgrade\\r\\nUpgrade: x\\r\\n\\r\\n'));
      client.once('data', () => client.end());
    });
    setTimeout(() => process.exit(2), 5000).unref();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const lines = stderr
    .split('\n')
    .filter((text) => text.startsWith('{'))
    .map((text) => JSON.parse(text) as LogLine);
  return { code, stderr, stdout, lines };
}

const leakLines = (lines: LogLine[]) => lines.filter((line) => line.leak && line.level === 40);

describe('leak log (pino)', () => {
  it('writes one warn line per leak, the leak under `leak`, through a closewait child', async () => {
    const { logger, lines } = capturePino();
    const monitor = startMonitor({ logger });
    const { port } = await leakyServer();
    const clients: Socket[] = [];
    for (let i = 0; i < 3; i++) clients.push(await leakUpgrade(port, '/leak?token=s3cret'));
    await until(() => monitor.leaks().length === 3, 3000, '3 leaks');

    const warned = leakLines(lines);
    expect(warned).toHaveLength(3);
    const leaks = monitor.leaks();
    for (const line of warned) {
      const leak = leaks.find((l) => l.id === (line.leak as { id: number }).id) as SocketLeak;
      expect(leak).toBeDefined();
      expect(line).toMatchObject({
        level: LEVEL.warn,
        component: 'closewait',
        msg: HALF_CLOSED_MESSAGE,
      });
      const fields = line.leak as Record<string, unknown>;
      expect(fields).toMatchObject({
        id: leak.id,
        kind: 'half-closed',
        direction: 'server',
        localAddress: HOST,
        localPort: port,
        remoteAddress: HOST,
        remotePort: leak.remotePort,
        tls: false,
        bytesRead: leak.bytesRead,
        bytesWritten: leak.bytesWritten,
        unreadBytes: 0,
        pendingWriteBytes: 0,
        // The query string is cut: tokens ride in URLs and do not belong in logs.
        request: { method: 'GET', url: '/leak', handoff: 'upgrade' },
        server: { address: HOST, port },
      });
      expect(clients.map((c) => c.localPort)).toContain(fields.remotePort);
      expect(fields.bytesRead).toBeGreaterThan(0);
      expect(fields.bytesWritten).toBeGreaterThan(0);
      expect(fields.where).toContain(`server ${HOST}:${port}`);
      expect(fields.where).toContain("GET /leak on 'upgrade'");
      expect(fields.closeWaitMs).toBeGreaterThanOrEqual(GRACE_MS - 2);
      expect(fields.ageMs).toBeGreaterThanOrEqual(fields.closeWaitMs as number);
      expect(fields.site).toContain('test/fixtures/net.ts');
      expect((fields.server as { listenSite: string }).listenSite).toContain('fixtures/net.ts');
      expect(fields.stack).toContain('leak-log.test.ts');
    }
    expect(new Set(warned.map((line) => (line.leak as { id: number }).id)).size).toBe(3);
    expect(JSON.stringify(lines)).not.toContain('s3cret');
  });

  it('writes an info line when a leak resolves, naming the leak and the reason', async () => {
    const { logger, lines } = capturePino();
    const monitor = startMonitor({ logger });
    const { port, taken } = await leakyServer();
    await leakUpgrade(port);
    const leak = await nextLeak(monitor);

    const resolved = waitFor(monitor, 'leak-resolved');
    taken[0]!.destroy();
    await resolved;
    const info = lines.filter((line) => line.level === LEVEL.info);
    expect(info).toHaveLength(1);
    expect(info[0]).toMatchObject({
      component: 'closewait',
      msg: 'CLOSE_WAIT socket leak resolved: the app closed the socket',
      leak: { id: leak.id, kind: 'half-closed', direction: 'server', localPort: port },
      resolution: { reason: 'closed' },
    });
    expect((info[0]!.resolution as { leakedForMs: number }).leakedForMs).toBeGreaterThanOrEqual(0);
  });

  it('writes a warn line when the auto-destroy policy acts, then the resolution', async () => {
    const { logger, lines } = capturePino();
    const monitor = startMonitor({ logger, autoDestroy: { afterMs: 0 } });
    const { port } = await leakyServer();
    await leakUpgrade(port);
    const [resolvedLeak] = await waitFor<[SocketLeak]>(monitor, 'leak-resolved');
    const destroyLine = lines.find((line) => line.destroy !== undefined);
    expect(destroyLine).toMatchObject({
      level: LEVEL.warn,
      component: 'closewait',
      msg: 'closewait auto-destroy destroyed a CLOSE_WAIT socket leak the app never closed',
      leak: { id: resolvedLeak.id, kind: 'half-closed', direction: 'server', localPort: port },
      destroy: { dryRun: false },
    });
    expect(lines.filter((line) => line.resolution !== undefined)).toMatchObject([
      {
        level: LEVEL.info,
        msg: "CLOSE_WAIT socket leak resolved: closewait's auto-destroy policy closed the socket",
        leak: { id: resolvedLeak.id },
        resolution: { reason: 'destroyed' },
      },
    ]);
    // In order: the leak, what the policy did, and how it ended.
    const order = lines.map((line) =>
      line.destroy !== undefined ? 'destroy' : line.resolution !== undefined ? 'resolved' : 'leak',
    );
    expect(order).toEqual(['leak', 'destroy', 'resolved']);
  });

  it('logs to stderr at warn by default, and nothing with `logger: false` (real processes)', async () => {
    const byDefault = await runLeakingChild('{ graceMs: 100 }');
    expect(byDefault.code).toBe(0);
    expect(byDefault.stdout).toBe('');
    // The warn line only: the resolution is `info`, below the default level.
    expect(byDefault.lines).toHaveLength(1);
    expect(byDefault.lines[0]).toMatchObject({
      level: LEVEL.warn,
      component: 'closewait',
      msg: HALF_CLOSED_MESSAGE,
      leak: { kind: 'half-closed', direction: 'server', request: { url: '/x' } },
    });

    const off = await runLeakingChild('{ graceMs: 100, logger: false }');
    expect(off.code).toBe(0);
    expect(off.stdout).toBe('');
    expect(off.stderr).toBe('');
  });

  it('never lets a throwing logger reach the app: its listeners still run, monitoring goes on', async () => {
    const broken = {
      child: () => broken,
      warn: () => {
        throw new Error('transport down');
      },
      info: () => {
        throw new Error('transport down');
      },
      error: () => {
        throw new Error('transport down');
      },
    };
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const monitor = startMonitor({ logger: broken });
      const seen: number[] = [];
      monitor.on('leak', (leak) => seen.push(leak.id));
      const { port, taken } = await leakyServer();
      await leakUpgrade(port);
      await leakUpgrade(port);
      await until(() => seen.length === 2, 3000, 'both leaks reach the app listener');
      const resolved = waitFor(monitor, 'leak-resolved');
      taken[0]!.destroy();
      await resolved;
      await until(() => warnings.length > 0, 1000, 'a process warning');
      // One warning per logger, not one per line.
      expect(
        warnings.filter((w) => (w as { code?: string }).code === 'CLOSEWAIT_LOGGER'),
      ).toHaveLength(1);
      expect(warnings[0]!.message).toContain('transport down');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('sends internal failures (a throwing leak listener) to logger.error, not process warnings', async () => {
    const { logger, lines } = capturePino();
    // The app's listener is added before start(), so it would run before ours if ours were
    // merely appended.
    const monitor = createSocketMonitor({ graceMs: GRACE_MS, stacks: 'all', logger });
    monitor.on('leak', () => {
      throw new Error('bug in the app leak handler');
    });
    monitor.start();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const { port } = await leakyServer();
      await leakUpgrade(port);
      await until(() => lines.some((line) => line.level === LEVEL.error), 3000, 'an error line');
      const error = lines.find((line) => line.level === LEVEL.error)!;
      expect(error).toMatchObject({
        component: 'closewait',
        msg: 'closewait internal error (monitoring continues)',
        err: { type: 'Error', message: 'bug in the app leak handler' },
      });
      // Our line was written before the app's listener threw: ours runs first.
      expect(leakLines(lines)).toHaveLength(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(
        warnings.filter((w) => (w as { code?: string }).code === 'CLOSEWAIT_INTERNAL'),
      ).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      monitor.stop();
    }
  });
});
