import { clearRepeating, epochNow, monotonicNow, setRepeating } from '../clock.js';
import { KernelReadError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { describeRecord } from '../report/leak-view.js';
import { unconsumedFinBytes } from '../rules/leak-rules.js';
import type { SocketRecord } from '../tracking/record.js';
import type { SocketRegistry } from '../tracking/registry.js';
import type {
  KernelCheckResult,
  KernelSummary,
  LeakKind,
  LeakResolution,
  SocketLeak,
} from '../types.js';
import {
  failedKernelResult,
  type KernelSnapshot,
  snapshotKernel,
  unsupportedKernelResult,
} from './kernel-check.js';
import { kernelViewUnsupported } from './process-sockets.js';

export interface KernelHooks {
  declare(record: SocketRecord, kind: LeakKind, now: number): void;
  resolve(record: SocketRecord, reason: LeakResolution['reason'], now: number): void;
  failed(error: unknown): void;
}

/**
 * The kernel's view reconciled with the tracked sockets: confirms leaks Node sees, and applies
 * the `unread-fin` rule, which only the kernel can (a FIN in CLOSE_WAIT behind bytes Node never
 * read, unchanged for `graceMs` across two checks).
 */
export class KernelView {
  /** Sockets the last check showed in CLOSE_WAIT with the FIN still unread by Node. */
  #suspects = new Set<SocketRecord>();
  #inFlight: Promise<KernelCheckResult> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The last check failed to read /proc: the next failure is not logged again. */
  #failing = false;
  /** What the last check saw, for report(). */
  last: KernelSummary | undefined;

  constructor(
    private readonly registry: SocketRegistry,
    private readonly options: Pick<ResolvedOptions, 'graceMs' | 'keepQuery'>,
    private readonly hooks: KernelHooks,
  ) {}

  /** Checks every `intervalMs` (0: never) where there is a kernel view; `unref()`ed. */
  startPeriodic(intervalMs: number): void {
    if (intervalMs <= 0 || this.#timer !== undefined || kernelViewUnsupported() !== undefined) {
      return;
    }
    this.#timer = setRepeating(() => {
      if (this.#inFlight === undefined) this.check().catch((error) => this.hooks.failed(error));
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearRepeating(this.#timer);
    this.#timer = undefined;
    this.#suspects.clear();
  }

  /** A socket closed: it is no longer anyone's suspect. */
  forget(record: SocketRecord): void {
    this.#suspects.delete(record);
  }

  /** One comparison with the kernel's table; concurrent calls share the one in flight. */
  check(): Promise<KernelCheckResult> {
    this.#inFlight ??= this.#run().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #run(): Promise<KernelCheckResult> {
    const started = monotonicNow();
    const unsupported = kernelViewUnsupported();
    if (unsupported !== undefined) return unsupportedKernelResult(unsupported);
    let snapshot: KernelSnapshot;
    try {
      snapshot = await snapshotKernel(this.registry);
    } catch (error) {
      if (!(error instanceof KernelReadError)) throw error;
      // A check that saw nothing: every leak and suspect stays as the last good check left it.
      // Logged once per streak of failures (out of descriptors, every check fails).
      if (!this.#failing) this.hooks.failed(error);
      this.#failing = true;
      return failedKernelResult(error, monotonicNow() - started);
    }
    this.#failing = false;
    const now = monotonicNow();
    const confirmed: SocketLeak[] = [];
    const hidden: KernelCheckResult['hidden'] = [];
    const suspects = new Set<SocketRecord>();
    for (const { record, row } of snapshot.matched) {
      if (!this.registry.has(record)) continue; // closed while we read /proc
      const leak = record.leak;
      if (leak !== undefined && leak.kind !== 'unread-fin') {
        confirmed.push(leak);
        continue;
      }
      // Node has seen the FIN: its own rules (grace timer, sweep) are already on it.
      if (record.peerEndedAt !== 0 || unconsumedFinBytes(record.socket) !== -1) continue;
      suspects.add(record);
      const context = record.more;
      if (context.kernelFinSince === 0 || row.unreadBytes < context.kernelUnreadMark) {
        // First sight, or the app read some of what sits in front of the FIN.
        if (leak !== undefined) this.hooks.resolve(record, 'consumed', now);
        context.kernelFinSince = now;
        context.kernelUnreadMark = row.unreadBytes;
      } else if (leak === undefined && now - context.kernelFinSince >= this.options.graceMs) {
        this.hooks.declare(record, 'unread-fin', now);
      }
      hidden.push({
        socket: describeRecord(record, this.options.keepQuery),
        unreadBytes: row.unreadBytes,
        leak: record.leak,
      });
    }
    for (const record of this.#suspects) {
      if (suspects.has(record)) continue;
      // No longer CLOSE_WAIT with an unread FIN: Node read it, or the socket closed.
      if (record.context !== undefined) record.context.kernelFinSince = 0;
      if (record.leak?.kind === 'unread-fin') this.hooks.resolve(record, 'consumed', now);
    }
    this.#suspects = suspects;
    const closeWait = snapshot.matched.length + snapshot.unattributed.length;
    this.last = { checkedAt: epochNow(), closeWait, unattributed: snapshot.unattributed };
    return {
      supported: true,
      reason: undefined,
      checkedAt: this.last.checkedAt,
      durationMs: monotonicNow() - started,
      closeWait,
      confirmed,
      hidden,
      unattributed: snapshot.unattributed,
      rows: [
        ...snapshot.matched.map(({ record, row }) => ({ ...row, socketId: record.id })),
        ...snapshot.unattributed.map((row) => ({ ...row, socketId: undefined })),
      ],
    };
  }
}
