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
import { createSocketMonitor, kernelCheckAtExit, type SocketMonitor } from '../monitor.js';
import { LeakHistory, writeExitReport } from '../register/exit-report.js';
import { startHealthServer } from '../register/health-server.js';
import { sendLeaksToMainThread, WorkerLeaks } from '../register/thread-leaks.js';
import { problemLine, type RegisterSettings, readRegisterEnv } from '../register-env.js';

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
 * Under `closewait run` (or any CLOSEWAIT_REPORT_FILE), the report is written at 'exit' and when
 * SIGINT/SIGTERM arrive: a process a signal kills emits no 'exit'. When the app has no handler
 * of its own for that signal, ours steps aside and raises it again, so the process still dies of
 * it as it would have (same exit status); when the app has one, the app decides when to exit and
 * 'exit' writes the report again, fresher.
 */
function writeReportAtExit(monitor: SocketMonitor, path: string, log: Logger): void {
  const history = new LeakHistory(monitor, new WorkerLeaks());
  const write = (on: 'exit' | NodeJS.Signals) => {
    try {
      // One last look at the kernel: an unread-fin leak whose grace ran out since the last
      // periodic check is declared, and the report's CLOSE_WAIT counts are the ones at exit.
      if (monitor.running && monitor.options.kernelCheckIntervalMs !== 0) {
        monitor[kernelCheckAtExit]();
      }
      const problem = writeExitReport(path, history.build(on));
      if (problem !== undefined) log.error(`closewait could not write its report: ${problem}`);
    } catch {
      // Building the report failed: the app's exit goes on regardless.
    }
  };
  process.on('exit', () => write('exit'));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      write(signal);
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
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
  // pid) and the signals belong to the main thread, to which a worker sends its leaks.
  if (!isMainThread) {
    if (settings.reportFile !== undefined) sendLeaksToMainThread(monitor);
    return monitor;
  }
  if (settings.health !== undefined) {
    startHealthServer(monitor, settings.health, log).catch((error: unknown) => {
      log.error({ err: error }, 'closewait health server failed; leaks are still logged');
    });
  }
  if (settings.reportFile !== undefined) writeReportAtExit(monitor, settings.reportFile, log);
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
