import { epochNow } from '../clock.js';
import type { SocketMonitor } from '../monitor.js';
import { buildReport, type SocketReportData } from '../report/report.js';
import type { LeakResolution, SocketLeak } from '../types.js';
import { type AtExitSocket, closeWaitAtExit } from './close-wait-at-exit.js';
import { writePrivateFile } from './private-file.js';
import type { WorkerLeaks } from './thread-leaks.js';

/** What a process under `closewait run` leaves behind when it exits: read by the command. */
export interface ExitReport {
  version: 1;
  pid: number;
  /** `process.argv` as the process saw it. */
  argv: string[];
  /** `exit`, or the signal that was ending the process when the report was written. */
  writtenOn: 'exit' | NodeJS.Signals;
  writtenAt: number;
  /**
   * Every leak detected while the process ran, grouped: those still open and those closed
   * before the report was written. A closed leak's age is the time it spent in CLOSE_WAIT.
   * `tracked` and `byState` are the sockets still open when the report was written.
   */
  report: SocketReportData;
  /** Leaks still open when the report was written. */
  stillOpen: number;
  /** Leaks past the listing cap: counted here, not in `report`. */
  notListed: number;
  /**
   * Sockets still in CLOSE_WAIT when the report was written that are not open leaks of
   * `report` (younger than graceMs, or never seen by Node), from /proc; undefined where /proc
   * could not tell (off Linux). Past the listing cap they are counted in `atExitNotListed`.
   */
  atExit?: AtExitSocket[];
  atExitNotListed?: number;
  /**
   * Leaks of the worker threads' monitors (the preload runs in each), one entry per thread that
   * leaked; `report` is the main thread's alone. Each `report` here has only leaks: the worker's
   * other sockets are not counted.
   */
  threads?: ThreadExitReport[];
}

export interface ThreadExitReport {
  threadId: number;
  report: SocketReportData;
  stillOpen: number;
  notListed: number;
}

/**
 * Leaks kept for the exit report. Each holds its creation stack (a few KB): past this many the
 * rest are only counted, so a process that leaks for days cannot grow without bound.
 */
const MAX_LISTED_LEAKS = 1000;

/**
 * Collects every leak of the run, so the exit report also names leaks that were closed late
 * (at shutdown, or by the auto-destroy policy): `report()` alone shows only open ones.
 */
export class LeakHistory {
  readonly #leaks = new Set<SocketLeak>();
  readonly #resolvedAt = new Map<SocketLeak, number>();
  #notListed = 0;

  constructor(
    private readonly monitor: SocketMonitor,
    private readonly workers?: WorkerLeaks,
  ) {
    monitor.on('leak', (leak) => {
      if (this.#leaks.size < MAX_LISTED_LEAKS) this.#leaks.add(leak);
      else this.#notListed++;
    });
    monitor.on('leak-resolved', (leak: SocketLeak, resolution: LeakResolution) => {
      if (this.#leaks.has(leak)) this.#resolvedAt.set(leak, resolution.resolvedAt);
    });
  }

  build(writtenOn: ExitReport['writtenOn'], now = epochNow()): ExitReport {
    const current = this.monitor.report();
    const leaks = [...this.#leaks].map((leak) => aged(leak, this.#resolvedAt.get(leak), now));
    const threads = this.workers?.threads().map((thread) => ({
      threadId: thread.threadId,
      report: buildReport(
        { open: 0, 'peer-ended': 0, 'fin-unconsumed': 0, leaked: 0 },
        thread.leaks.map((leak) => aged(leak, thread.resolvedAt.get(leak.id), now)),
        now,
      ),
      stillOpen: thread.leaks.filter((leak) => !thread.resolvedAt.has(leak.id)).length,
      notListed: thread.notListed,
    }));
    const atExit = closeWaitAtExit(this.monitor);
    // A worker thread's open leak is listed under its thread: not again as an untracked socket.
    if (atExit !== undefined && threads !== undefined) {
      const inThreads = new Set(
        this.workers!.threads().flatMap((thread) =>
          thread.leaks
            .filter((leak) => !thread.resolvedAt.has(leak.id))
            .map((leak) => `${leak.localPort}|${leak.remotePort}`),
        ),
      );
      atExit.sockets = atExit.sockets.filter(
        (socket) => !inThreads.has(`${socket.localPort}|${socket.remotePort}`),
      );
    }
    return {
      version: 1,
      pid: process.pid,
      argv: process.argv,
      writtenOn,
      writtenAt: now,
      report: buildReport(current.byState, leaks, now, current.kernel),
      stillOpen: current.leaked,
      notListed: this.#notListed,
      atExit: atExit?.sockets,
      atExitNotListed: atExit?.notListed,
      ...(threads === undefined || threads.length === 0 ? {} : { threads }),
    };
  }
}

/** buildReport ages a leak from its FIN to `now`; a closed one stopped aging when it closed. */
function aged(leak: SocketLeak, resolvedAt: number | undefined, now: number): SocketLeak {
  return resolvedAt === undefined
    ? leak
    : { ...leak, peerEndedAt: now - Math.max(0, resolvedAt - leak.peerEndedAt) };
}

/**
 * Writes synchronously (this runs in 'exit', where nothing async completes), atomically (a
 * reader never sees half a file) and privately (0600: the report holds the app's argv). Never
 * throws: the app's exit must stay the app's.
 */
export function writeExitReport(path: string, report: ExitReport): string | undefined {
  try {
    return writePrivateFile(path, JSON.stringify(report));
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
