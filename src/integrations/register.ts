/**
 * The preload: `node --import closewait/register app.js`, or
 * `NODE_OPTIONS="--import closewait/register"`. Starts a monitor before the app's first line,
 * configured from CLOSEWAIT_* variables (src/register-env.ts), logging leaks through pino to
 * stderr. It must leave the app as it was: a bad variable prints one line and the app runs
 * unmonitored; nothing here keeps the process alive (every timer and server is unref()ed) or
 * touches its exit code.
 *
 * No top-level await: `--import` would wait for it before the app's first line.
 */
import { isMainThread } from 'node:worker_threads';
import pino, { type Logger } from 'pino';
import { resolveHealthOptions } from '../health.js';
import { createSocketMonitor, type SocketMonitor } from '../monitor.js';
import { reportToPrimary } from '../register/cluster-health.js';
import { LeakHistory, writeExitReport } from '../register/exit-report.js';
import { loadMetrics, startHealthServer } from '../register/health-server.js';
import { targetProblem } from '../register/private-file.js';
import { reportBeforeSignalDeath } from '../register/signal-death.js';
import {
  type HealthServerSettings,
  problemLine,
  type RegisterSettings,
  readRegisterEnv,
} from '../register-env.js';

/**
 * Set once per process: the preload can arrive twice (by package name in NODE_OPTIONS and by
 * path from `closewait run`, or from two installed copies), and two monitors would log each
 * leak twice.
 */
const REGISTERED = Symbol.for('closewait.register');

function writeStderr(text: string): void {
  try {
    process.stderr.write(text);
  } catch {
    // stderr is closed: there is nowhere left to say it.
  }
}

/**
 * Under `closewait run` (or any CLOSEWAIT_REPORT_FILE), the report is written at 'exit', and
 * before SIGINT/SIGTERM end the process (a process a signal kills emits no 'exit'), without
 * changing how it ends: see signal-death.ts.
 */
function writeReportAtExit(monitor: SocketMonitor, path: string, log: Logger): void {
  const history = new LeakHistory(monitor);
  const write = (on: 'exit' | NodeJS.Signals) => {
    try {
      const problem = writeExitReport(path, history.build(on));
      if (problem !== undefined) log.error(`closewait could not write its report: ${problem}`);
    } catch {
      // Building the report failed: the app's exit goes on regardless.
    }
  };
  process.on('exit', () => write('exit'));
  reportBeforeSignalDeath(write);
}

/**
 * The side server; in a node:cluster worker, reports to the primary instead, which has the
 * port and answers for the whole cluster (cluster-health.ts). node:cluster is loaded only here,
 * with the port asked for: some application servers (Passenger) break when it is imported.
 */
function startHealth(monitor: SocketMonitor, settings: HealthServerSettings, log: Logger): void {
  const started = import('node:cluster').then(async ({ default: cluster }) => {
    if (!cluster.isWorker) {
      await startHealthServer(monitor, settings, log, cluster);
      return;
    }
    const metrics = await loadMetrics(monitor);
    const json = typeof metrics === 'string' ? undefined : metrics.json;
    reportToPrimary(monitor, resolveHealthOptions({ verbose: settings.verbose }), json);
  });
  started.catch((error: unknown) => {
    log.error({ err: error }, 'closewait health server failed; leaks are still logged');
  });
}

function start(settings: RegisterSettings): SocketMonitor {
  // Sync writes to fd 2, as the monitor's own default: no handle, nothing to flush at exit.
  const logger = pino({ level: settings.logLevel }, pino.destination({ dest: 2, sync: true }));
  const monitor = createSocketMonitor({
    ...settings.monitor,
    logger: settings.logLevel === 'silent' ? false : logger,
  }).start();
  const log = logger.child({ component: 'closewait' });
  // Preloads run again in every worker thread, whose sockets only its own channels announce:
  // a worker gets its own monitor and leak log, but the port, the exit report (one file per
  // pid) and the signals belong to the main thread.
  if (!isMainThread) return monitor;
  if (settings.health !== undefined) startHealth(monitor, settings.health, log);
  if (settings.reportFile !== undefined) {
    // Refused now, in one line, rather than at exit in a log line nobody waits for.
    const problem = targetProblem(settings.reportFile);
    if (problem === undefined) writeReportAtExit(monitor, settings.reportFile, log);
    else {
      writeStderr(
        `closewait: CLOSEWAIT_REPORT_FILE: ${problem}; no report will be written ` +
          `(pid ${process.pid}). Leaks are still logged.\n`,
      );
    }
  }
  return monitor;
}

function register(): void {
  const global = globalThis as { [REGISTERED]?: SocketMonitor | 'off' };
  if (global[REGISTERED] !== undefined) return;
  const env = readRegisterEnv();
  if (!env.ok) {
    global[REGISTERED] = 'off';
    writeStderr(problemLine(env.problems));
    return;
  }
  global[REGISTERED] = start(env.settings);
}

try {
  register();
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  writeStderr(
    `closewait: could not start (${message}). closewait is off in this process ` +
      `(pid ${process.pid}); the app runs unmonitored.\n`,
  );
}
