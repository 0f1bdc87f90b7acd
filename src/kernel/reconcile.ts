import { epochNow, monotonicNow, setImmediateReal } from '../clock.js';
import { KernelReadError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { describeRecord } from '../report/leak-view.js';
import { judgeUnreadFin, unconsumedFinBytes } from '../rules/leak-rules.js';
import type { SocketRecord } from '../tracking/record.js';
import type { SocketRegistry } from '../tracking/registry.js';
import type {
  KernelCheckResult,
  KernelSummary,
  LeakKind,
  LeakResolution,
  SocketLeak,
} from '../types.js';
import { type KernelCheckInterval, KernelCheckSchedule } from './check-schedule.js';
import { snapshotKernelSync } from './exit-check.js';
import {
  failedKernelResult,
  type KernelSnapshot,
  snapshotKernel,
  unsupportedKernelResult,
} from './kernel-check.js';
import { kernelViewUnsupported } from './process-sockets.js';
import { socketKey, ThreadClaims } from './thread-claims.js';
import { endsOnCloseNotify, kernelHoldsFin } from './tls-fin.js';

export interface KernelHooks {
  declare(record: SocketRecord, kind: LeakKind, now: number): void;
  resolve(record: SocketRecord, reason: LeakResolution['reason'], now: number): void;
  failed(error: unknown): void;
}

/** Matched rows reconciled (or copied into the result) per turn of the event loop. */
const MATCHED_PER_SLICE = 1024;

const nextTurn = () => new Promise<void>((resolve) => setImmediateReal(resolve));

/**
 * The kernel's view reconciled with the tracked sockets: confirms leaks Node sees, and applies
 * the `unread-fin` rule, which only the kernel can (a FIN in CLOSE_WAIT behind bytes Node never
 * read, unchanged for `graceMs` across two checks).
 */
export class KernelView {
  /** Sockets the last check showed in CLOSE_WAIT with the FIN still unread by Node. */
  #suspects = new Set<SocketRecord>();
  #inFlight: Promise<KernelCheckResult> | undefined;
  #schedule: KernelCheckSchedule | undefined;
  /** What the monitors of other threads track, so their sockets are not unattributed here. */
  readonly #claims: ThreadClaims;
  /**
   * TLS sockets due as `unconsumed-fin` whose kind a check decides (tls-fin.ts): the first check
   * that shows them in CLOSE_WAIT. Until the FIN reaches the kernel there is nothing to decide.
   */
  readonly #tlsFinsToJudge = new Set<SocketRecord>();
  /** TLS sockets ended at close_notify whose FIN a check saw read: Node's view stands. */
  readonly #tlsFinRead = new WeakSet<SocketRecord>();
  /** Per suspect, the bytes in front of the FIN not consumed at first sight (kernel + Node). */
  readonly #unconsumedMark = new WeakMap<SocketRecord, number>();
  /** The last check failed to read /proc: the next failure is not logged again. */
  #failing = false;
  /** What the last check saw, for report(). */
  last: KernelSummary | undefined;

  constructor(
    private readonly registry: SocketRegistry,
    private readonly options: Pick<ResolvedOptions, 'graceMs' | 'keepQuery'>,
    private readonly hooks: KernelHooks,
  ) {
    this.#claims = new ThreadClaims((keys) => this.#trackedKeys(keys), hooks.failed);
  }

  /**
   * Where there is a kernel view: answers other threads' monitors, and checks on the schedule
   * `interval` sets (check-schedule.ts; 0: only when asked). Every timer is `unref()`ed.
   */
  startPeriodic(interval: KernelCheckInterval): void {
    if (this.#schedule !== undefined || kernelViewUnsupported() !== undefined) return;
    this.#claims.start();
    if (interval === 0) return;
    this.#schedule = new KernelCheckSchedule(
      interval,
      this.options.graceMs,
      () => this.check(),
      this.hooks.failed,
    );
    this.#schedule.start();
  }

  stop(): void {
    this.#schedule?.stop();
    this.#schedule = undefined;
    this.#claims.stop();
    this.#suspects.clear();
    this.#tlsFinsToJudge.clear();
  }

  /** A socket closed: it is no longer anyone's suspect. */
  forget(record: SocketRecord): void {
    this.#suspects.delete(record);
    this.#tlsFinsToJudge.delete(record);
  }

  /** A leak was declared: other threads' monitors hear of it, for their check at exit. */
  declared(record: SocketRecord): void {
    this.#claims.announce(record);
  }

  /**
   * The sweep saw a TLS stream end at close_notify, not consumed: ask the kernel, before the
   * grace runs out, whether it still holds the TCP FIN behind it (tls-fin.ts).
   */
  tlsEndSeen(record: SocketRecord): void {
    if (endsOnCloseNotify(record.socket)) this.#schedule?.checkWithin(this.options.graceMs / 2);
  }

  /**
   * The sweep would declare `unconsumed-fin`: true when the kernel decides the kind instead (a
   * TLS socket whose FIN no check has seen read yet), and a check is on its way to.
   */
  decidesTlsFin(record: SocketRecord): boolean {
    if (this.#schedule === undefined || !endsOnCloseNotify(record.socket)) return false;
    // No verdict to wait for from a kernel view that cannot be read (out of descriptors).
    if (this.#tlsFinRead.has(record) || this.#failing) return false;
    // Asked already: a check is on its way, or the FIN had not reached the kernel when one came
    // (a peer that sent close_notify and kept TCP open): the scheduled checks answer.
    if (this.#tlsFinsToJudge.has(record)) return true;
    this.#tlsFinsToJudge.add(record);
    this.freshCheck().catch((error: unknown) => this.hooks.failed(error));
    return true;
  }

  /**
   * A check that reads /proc after this call: the one in flight may have read it before what
   * the caller asks about happened (a FIN that just came, another thread's new leak). Callers
   * during one flight share the one check that follows it.
   */
  freshCheck(): Promise<KernelCheckResult> {
    const inFlight = this.#inFlight;
    if (inFlight === undefined) return this.check();
    return inFlight.then(
      () => this.check(),
      () => this.check(),
    );
  }

  /** One comparison with the kernel's table; concurrent calls share the one in flight. */
  check(): Promise<KernelCheckResult> {
    if (this.#inFlight === undefined) {
      const started = monotonicNow();
      this.#inFlight = this.#run().finally(() => {
        this.#inFlight = undefined;
        // Every check, asked for or periodic, sets when the next periodic one comes.
        this.#schedule?.checked(monotonicNow() - started, this.#suspectDueInMs());
      });
    }
    return this.#inFlight;
  }

  /**
   * The same check, read synchronously: for the report written at exit, where nothing
   * asynchronous completes. Other threads' claims are the ones last heard.
   */
  checkSync(): KernelCheckResult {
    const started = monotonicNow();
    const unsupported = kernelViewUnsupported();
    if (unsupported !== undefined) return unsupportedKernelResult(unsupported);
    const snapshot = snapshotKernelSync(this.registry);
    const steps = this.#reconcile(
      snapshot,
      this.#claims.unclaimedSync(snapshot.unattributed),
      started,
    );
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
    }
  }

  /** Ms until the earliest suspect is due for its confirming check, if one waits. */
  #suspectDueInMs(): number | undefined {
    let earliest: number | undefined;
    for (const record of this.#suspects) {
      const since = record.context?.kernelFinSince ?? 0;
      if (record.leak !== undefined || since === 0) continue;
      earliest = Math.min(earliest ?? since, since);
    }
    return earliest === undefined ? undefined : earliest + this.options.graceMs - monotonicNow();
  }

  /** Of these endpoint keys, the ones of sockets this monitor tracks (asked by other threads). */
  #trackedKeys(keys: ReadonlySet<string>): string[] {
    const mine: string[] = [];
    for (const record of this.registry) {
      const key = socketKey(record);
      if (key !== undefined && keys.has(key)) mine.push(key);
    }
    return mine;
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
    const unattributed = await this.#claims.unclaimed(snapshot.unattributed);
    const steps = this.#reconcile(snapshot, unattributed, started);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      await nextTurn();
    }
  }

  /**
   * `unattributed`: the snapshot's, less the rows a monitor of another thread tracks. Those are
   * still counted in `closeWait` and listed in `rows`: they are this process's sockets.
   */
  *#reconcile(
    snapshot: KernelSnapshot,
    unattributed: KernelSnapshot['unattributed'],
    started: number,
  ): Generator<void, KernelCheckResult> {
    const now = monotonicNow();
    const confirmed: SocketLeak[] = [];
    const hidden: KernelCheckResult['hidden'] = [];
    const suspects = new Set<SocketRecord>();
    let inSlice = 0;
    for (const { record, row } of snapshot.matched) {
      // 10,000 matched sockets (a flood) held the loop 70 ms in one pass on Node 24: a step
      // per slice of them; the periodic check yields to the loop between steps.
      if (++inSlice === MATCHED_PER_SLICE) {
        inSlice = 0;
        yield;
      }
      if (!this.registry.has(record)) continue; // closed while we read /proc
      const leak = record.leak;
      if (leak !== undefined && leak.kind !== 'unread-fin') {
        confirmed.push(leak);
        continue;
      }
      // Node has seen the FIN: its own rules (grace timer, sweep) are already on it; but a TLS
      // stream ends on close_notify, and the kernel may still hold the FIN behind it.
      if (record.peerEndedAt !== 0) continue;
      const tlsEnded = unconsumedFinBytes(record.socket) !== -1;
      if (tlsEnded && !(endsOnCloseNotify(record.socket) && kernelHoldsFin(row))) {
        if (endsOnCloseNotify(record.socket)) this.#tlsFinRead.add(record);
        // Node read the FIN behind close_notify and the app never consumed it: the sweep's
        // verdict stands. (A socket not in CLOSE_WAIT yet is not decided: its FIN is on its way.)
        if (this.#tlsFinsToJudge.delete(record) && record.leak === undefined) {
          this.hooks.declare(record, 'unconsumed-fin', now);
        }
        continue;
      }
      suspects.add(record);
      this.#tlsFinsToJudge.delete(record);
      const context = record.more;
      // What the app has not consumed in front of the FIN: the kernel's bytes and Node's buffer.
      // A slow reader can take from Node's buffer for longer than graceMs while Node, above
      // its high-water mark, reads nothing more from the kernel: that is progress too.
      const unconsumed = row.unreadBytes + record.socket.readableLength;
      const before = this.#unconsumedMark.get(record);
      const verdict = judgeUnreadFin(record, unconsumed, before, now, this.options.graceMs);
      if (verdict === 'changed') {
        // First sight, or the app read some of what sits in front of the FIN.
        if (leak !== undefined) this.hooks.resolve(record, 'consumed', now);
        // Node has been stuck at close_notify since the sweep saw it: the FIN is as old.
        context.kernelFinSince =
          tlsEnded && record.finUnreadSince !== 0 ? record.finUnreadSince : now;
        context.kernelUnreadMark = row.unreadBytes;
        this.#unconsumedMark.set(record, unconsumed);
      } else if (verdict === 'leak') {
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
    const rows: KernelCheckResult['rows'] = [];
    for (const { record, row } of snapshot.matched) {
      rows.push({ ...row, socketId: record.id });
      if (rows.length % MATCHED_PER_SLICE === 0) yield;
    }
    for (const row of snapshot.unattributed) rows.push({ ...row, socketId: undefined });
    const closeWait = snapshot.matched.length + snapshot.unattributed.length;
    this.last = { checkedAt: epochNow(), closeWait, unattributed };
    return {
      supported: true,
      reason: undefined,
      checkedAt: this.last.checkedAt,
      durationMs: monotonicNow() - started,
      closeWait,
      confirmed,
      hidden,
      unattributed,
      rows,
    };
  }
}
