import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { epochNow } from './clock.js';
import { unsupportedKernelResult } from './kernel/kernel-check.js';
import { attachLeakLog } from './log/leak-log.js';
import { SafeLog } from './log/safe-log.js';
import {
  invalidOption,
  type ResolvedOptions,
  resolveOptions,
  type SocketMonitorOptions,
} from './options.js';
import { describeRecord, trackedSocketOf } from './report/leak-view.js';
import { buildReport, formatReport, type SocketReportData } from './report/report.js';
import { Tracker } from './tracking/tracker.js';
import type {
  DestroyInfo,
  KernelCheckResult,
  LeakResolution,
  SocketDetail,
  SocketDirection,
  SocketLeak,
  SocketMonitorEvents,
  TrackedSocket,
} from './types.js';

/** `report()`'s result: plain data (JSON-ready), and a table when turned into a string. */
export interface SocketReport extends SocketReportData {
  toString(): string;
}

/**
 * Internal failures go to the logger's `error`, or are process warnings when logging is off: a
 * bounded number per monitor.
 */
const MAX_WARNINGS = 10;

/** The tracker behind each monitor: closewait's own integrations read counts and rules here. */
const trackers = new WeakMap<object, Tracker>();

/** Internal (not exported from the package): undefined for a monitor of another copy. */
export function trackerOf(monitor: object): Tracker | undefined {
  return trackers.get(monitor);
}

export class SocketMonitor extends EventEmitter<SocketMonitorEvents> implements Disposable {
  readonly options: Readonly<ResolvedOptions>;
  readonly #tracker: Tracker;
  #warnings = 0;
  readonly #log: SafeLog | undefined;
  #detachLog: (() => void) | undefined;

  constructor(options?: SocketMonitorOptions) {
    super();
    this.options = Object.freeze(resolveOptions(options));
    this.#log = this.options.logger === undefined ? undefined : new SafeLog(this.options.logger);
    this.#tracker = new Tracker(this.options, {
      leak: (leak) => this.#emitSafely('leak', leak),
      resolved: (leak, resolution) => this.#emitSafely('leak-resolved', leak, resolution),
      destroyed: (leak, info) => this.#emitSafely('destroy', leak, info),
      failed: (error) => this.#failed(error),
    });
    trackers.set(this, this.#tracker);
  }

  /** Subscribes to Node's diagnostics channels. Sockets opened before this are not seen. */
  start(): this {
    this.#tracker.start();
    if (this.#log !== undefined && this.#detachLog === undefined) {
      this.#detachLog = attachLeakLog(this, this.#log, this.options, (error) =>
        this.#failed(error),
      );
    }
    return this;
  }

  /** Lets go of every socket and channel. Idempotent; open leaks are dropped unreported. */
  stop(): this {
    this.#tracker.stop();
    this.#detachLog?.();
    this.#detachLog = undefined;
    return this;
  }

  get running(): boolean {
    return this.#tracker.running;
  }

  [Symbol.dispose](): void {
    this.stop();
  }

  /**
   * Tracks a socket no channel announces (a custom stream transport, a socket opened before
   * `start()` on purpose). Returns false when the monitor is stopped or the socket closed.
   */
  track(socket: Socket, options?: { direction?: SocketDirection }): boolean {
    if (socket === null || typeof socket !== 'object' || typeof socket.on !== 'function') {
      throw new TypeError('closewait: track(socket) needs a net.Socket');
    }
    const direction = options?.direction;
    if (direction !== undefined && direction !== 'server' && direction !== 'client') {
      throw invalidOption('direction', `'server' or 'client'`, direction);
    }
    return this.#tracker.trackByHand(socket, direction);
  }

  /** Every tracked socket still open, with its state. */
  sockets(): TrackedSocket[] {
    const result: TrackedSocket[] = [];
    for (const record of this.#tracker.registry) result.push(trackedSocketOf(record));
    // Slots are reused, so registry order is not creation order.
    return result.sort((a, b) => a.id - b.id);
  }

  /**
   * Everything known of one tracked socket now (stack, site, server, request), leak or not; for
   * assertions that must name a socket before its grace has run out.
   */
  describe(id: number): SocketDetail | undefined {
    const record = this.#tracker.recordById(id);
    return record === undefined ? undefined : describeRecord(record, this.options.keepQuery);
  }

  /** Leaked sockets still open, oldest leak first. */
  leaks(): SocketLeak[] {
    const result: SocketLeak[] = [];
    for (const record of this.#tracker.leaked) {
      if (record.leak !== undefined) result.push(record.leak);
    }
    return result.sort((a, b) => a.peerEndedAt - b.peerEndedAt);
  }

  /**
   * Linux: compares tracked sockets with the kernel's CLOSE_WAIT rows (/proc/net/tcp{,6}):
   * confirms leaks, finds `unread-fin` ones Node cannot see, and lists CLOSE_WAIT sockets of
   * this process no channel announced. Elsewhere resolves with `supported: false`. Never rejects.
   */
  async kernelCheck(): Promise<KernelCheckResult> {
    try {
      return await this.#tracker.kernelCheck();
    } catch (error) {
      this.#failed(error);
      return unsupportedKernelResult(
        `kernel check failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  /** Counts, and leaks grouped by creation site (by server for accepted sockets). */
  report(): SocketReport {
    // Unsorted: grouping does not need leaks() order, and sorting 10,000 costs more than it.
    const leaks: SocketLeak[] = [];
    for (const record of this.#tracker.leaked)
      if (record.leak !== undefined) leaks.push(record.leak);
    const data = buildReport(
      this.#tracker.states.byState(),
      leaks,
      epochNow(),
      this.#tracker.kernel.last,
    );
    Object.defineProperty(data, 'toString', {
      value: () => formatReport(data),
      enumerable: false,
    });
    return data as SocketReport;
  }

  #emitSafely(event: 'leak', leak: SocketLeak): void;
  #emitSafely(event: 'leak-resolved', leak: SocketLeak, resolution: LeakResolution): void;
  #emitSafely(event: 'destroy', leak: SocketLeak, info: DestroyInfo): void;
  #emitSafely(
    event: keyof SocketMonitorEvents,
    leak: SocketLeak,
    detail?: LeakResolution | DestroyInfo,
  ) {
    // Each listener in its own try: one that throws (inside our timer or a socket's event)
    // must neither crash the app nor hide the leak from the listeners after it, as a plain
    // emit() would. rawListeners() keeps once() wrappers, which remove themselves when called.
    for (const listener of this.rawListeners(event) as Array<(...args: unknown[]) => void>) {
      try {
        listener.call(this, leak, detail);
      } catch (error) {
        this.#failed(error);
      }
    }
  }

  #failed(error: unknown): void {
    if (this.#warnings >= MAX_WARNINGS) return;
    this.#warnings++;
    if (this.#log !== undefined) {
      this.#log.write('error', { err: error }, 'closewait internal error (monitoring continues)');
      return;
    }
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.emitWarning(`closewait: internal error (monitoring continues): ${message}`, {
      code: 'CLOSEWAIT_INTERNAL',
    });
  }
}

export function createSocketMonitor(options?: SocketMonitorOptions): SocketMonitor {
  return new SocketMonitor(options);
}
