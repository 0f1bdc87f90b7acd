import type { SocketMonitor } from '../monitor.js';
import { buildReport, type SocketReportData } from '../report/report.js';
import type { LeakResolution, SocketLeak } from '../types.js';
import { type AtExitSocket, closeWaitAtExit } from './close-wait-at-exit.js';
import { writePrivateFile } from './private-file.js';

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

  constructor(private readonly monitor: SocketMonitor) {
    monitor.on('leak', (leak) => {
      if (this.#leaks.size < MAX_LISTED_LEAKS) this.#leaks.add(leak);
      else this.#notListed++;
    });
    monitor.on('leak-resolved', (leak: SocketLeak, resolution: LeakResolution) => {
      if (this.#leaks.has(leak)) this.#resolvedAt.set(leak, resolution.resolvedAt);
    });
  }

  build(writtenOn: ExitReport['writtenOn'], now = Date.now()): ExitReport {
    const current = this.monitor.report();
    // buildReport ages a leak from its FIN to `now`; a closed one stopped aging when it closed.
    const leaks = [...this.#leaks].map((leak) => {
      const resolvedAt = this.#resolvedAt.get(leak);
      return resolvedAt === undefined
        ? leak
        : { ...leak, peerEndedAt: now - Math.max(0, resolvedAt - leak.peerEndedAt) };
    });
    const atExit = closeWaitAtExit(this.monitor);
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
    };
  }
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
