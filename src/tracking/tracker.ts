import type { Server, Socket } from 'node:net';
import { DestroyPolicy } from '../auto-destroy.js';
import { clearRepeating, epochNow, monotonicNow, setRepeating } from '../clock.js';
import { Discovery, type DiscoverySink } from '../discovery/discovery.js';
import { kernelViewUnsupported } from '../kernel/process-sockets.js';
import { KernelView } from '../kernel/reconcile.js';
import { sendQueueMoves } from '../kernel/send-queue.js';
import type { ResolvedOptions } from '../options.js';
import { buildLeak, rememberServerAddress, toEpoch } from '../report/leak-view.js';
import { DueQueue } from '../rules/due-queue.js';
import {
  judgeHalfClosed,
  judgeUnconsumedFin,
  markProgress,
  stillLeaking,
  unconsumedFinBytes,
} from '../rules/leak-rules.js';
import { SlicedJob } from '../rules/slice.js';
import type {
  DestroyInfo,
  KernelCheckResult,
  LeakKind,
  LeakResolution,
  SocketDirection,
  SocketLeak,
  TrackedSocketState,
} from '../types.js';
import { LeakCounts } from './leak-counts.js';
import { ServerRecord, SocketRecord } from './record.js';
import { SocketRegistry } from './registry.js';
import { captureStack, type StackHolder } from './stack.js';
import { StackSampler } from './stack-sampler.js';
import { StateCounts } from './state-counts.js';

export interface TrackerEvents {
  leak(leak: SocketLeak): void;
  resolved(leak: SocketLeak, resolution: LeakResolution): void;
  destroyed(leak: SocketLeak, info: DestroyInfo): void;
  failed(error: unknown): void;
}

type Tagged = Socket & Record<symbol, SocketRecord | typeof CLOSED | undefined>;

/**
 * Left on a socket once its record is dropped at 'close': our listeners are still attached (not
 * removing them saves work on every close), so if the socket connects again (a reconnecting
 * client) it gets a new record and no second pair of listeners. Holds nothing.
 */
const CLOSED = Symbol('closewait.closed');

/**
 * Tracks sockets found by discovery and applies the leak rules (rules/) on its clock. Per
 * socket: one small record in a slot of the registry, an 'end' and a 'close' listener shared by
 * all sockets, no timer. Half-closed sockets wait in the due queue; the unconsumed-FIN rule is
 * applied by a periodic sweep; both declare in bounded slices.
 */
export class Tracker implements DiscoverySink {
  /** Per tracker, so two monitors never share a record. */
  private readonly key = Symbol('closewait.record');
  private nextId = 0;
  private nextServerId = 0;
  readonly registry = new SocketRegistry();
  readonly leaked = new Set<SocketRecord>();
  /** Open leaks by direction and kind, kept as they come and go: health and metrics read it. */
  readonly counts = new LeakCounts();
  /** Tracked sockets by direction and state, kept as they change: reports read it. */
  readonly states = new StateCounts();
  private readonly halfClosed: DueQueue;
  private readonly servers = new WeakMap<Server, ServerRecord>();
  private readonly requestStacks = new WeakMap<object, StackHolder>();
  private readonly sampler: StackSampler;
  private readonly dueJob: SlicedJob;
  private readonly sweepJob: SlicedJob;
  /** Where the sweep stopped when its slice ran out: it resumes there. */
  private sweepCursor = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  readonly kernel: KernelView;
  private readonly kernelAvailable = kernelViewUnsupported() === undefined;
  private readonly policy: DestroyPolicy | undefined;
  private readonly discovery: Discovery;
  private readonly onEnd: (this: Socket) => void;
  private readonly onClose: (this: Socket) => void;
  running = false;

  constructor(
    readonly options: ResolvedOptions,
    private readonly events: TrackerEvents,
  ) {
    const tracker = this;
    this.onEnd = function onEnd() {
      try {
        tracker.peerEnded(this);
      } catch (error) {
        tracker.failed(error);
      }
    };
    this.onClose = function onClose() {
      try {
        tracker.closed(this);
      } catch (error) {
        tracker.failed(error);
      }
    };
    const failed = (error: unknown) => this.failed(error);
    this.dueJob = new SlicedJob((sliceEnd) => this.processDue(sliceEnd), failed);
    this.sweepJob = new SlicedJob((sliceEnd) => this.sweep(sliceEnd), failed);
    this.halfClosed = new DueQueue(options.graceMs, () => this.dueJob.runNow());
    this.sampler = new StackSampler(options.sampleRate);
    this.kernel = new KernelView(this.registry, options, {
      declare: (record, kind, now) => this.declare(record, kind, now),
      resolve: (record, reason, now) => this.resolve(record, reason, now),
      failed,
    });
    this.policy =
      options.autoDestroy === undefined
        ? undefined
        : new DestroyPolicy(options.autoDestroy, {
            stillLeaking: (record) => this.running && stillLeaking(record),
            act: (record, leak, dryRun) => this.destroyByPolicy(record, leak, dryRun),
            failed,
          });
    this.discovery = new Discovery(this, options.patchSocketConnect);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.discovery.start();
    this.sweepTimer = setRepeating(() => this.sweepJob.runNow(), this.options.sweepIntervalMs);
    this.sweepTimer.unref();
    this.kernel.startPeriodic(this.options.kernelCheckIntervalMs);
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.discovery.stop();
    clearRepeating(this.sweepTimer);
    this.sweepTimer = undefined;
    this.dueJob.cancel();
    this.sweepJob.cancel();
    this.kernel.stop();
    this.policy?.stop();
    for (const record of this.registry) this.release(record);
    this.registry.clear();
    this.halfClosed.clear();
    this.leaked.clear();
    this.counts.clear();
    this.states.clear();
  }

  // ---- discovery sink -------------------------------------------------------------------

  accepted(socket: Socket, server: Server): void {
    const record = this.serverRecordOf(server);
    rememberServerAddress(record);
    this.add(socket, 'server', undefined, record);
  }

  connected(socket: Socket, above: Function | undefined, stack?: StackHolder): void {
    const existing = this.recordOf(socket);
    if (existing !== undefined) {
      existing.stack ??= stack;
      return;
    }
    if (stack === undefined && above !== undefined && this.sampler.wants(undefined)) {
      stack = captureStack(this.options.stackLimit, above);
    }
    if (socket.destroyed) {
      // A re-connect() of a closed socket is announced before connect() revives it (Node 24:
      // destroyed is still true then): look again once connect() has returned.
      const later = stack;
      queueMicrotask(() => {
        try {
          if (!socket.destroyed) this.add(socket, 'client', later, undefined);
        } catch (error) {
          this.failed(error);
        }
      });
      return;
    }
    this.add(socket, 'client', stack, undefined);
  }

  listening(server: Server, above: Function): void {
    // One stack per listen() call: cheap, and it names every socket the server accepts.
    const record = this.serverRecordOf(server);
    record.listenStack = captureStack(this.options.stackLimit, above);
    record.info = undefined;
    record.sites = undefined;
    record.boundAddress = undefined;
    record.boundPort = undefined;
  }

  requestCreated(request: object, origin: string | undefined, above: Function): void {
    if (this.sampler.wants(origin)) {
      this.requestStacks.set(request, captureStack(this.options.stackLimit, above));
    }
  }

  requestSent(socket: Socket, request: object, method: string, origin: string, path: string) {
    const record = this.recordOf(socket) ?? this.add(socket, 'client', undefined, undefined);
    if (record === undefined) return;
    const context = record.more;
    context.requestMethod = method;
    context.requestOrigin = origin;
    context.requestPath = path;
    // The request's stack names the app's fetch()/request() call; the connection's never does.
    const stack = this.requestStacks.get(request);
    if (stack !== undefined) record.stack = stack;
  }

  requestNamed(socket: Socket, request: object): void {
    const stack = this.requestStacks.get(request);
    if (stack === undefined) return;
    const record = this.recordOf(socket) ?? this.add(socket, 'client', undefined, undefined);
    if (record !== undefined) record.stack = stack;
  }

  handedOver(socket: Socket, method: string, url: string): void {
    const record = this.recordOf(socket);
    if (record === undefined) return;
    const context = record.more;
    context.requestMethod = method;
    context.requestOrigin = undefined;
    context.requestPath = url;
    context.handoff = method === 'CONNECT' ? 'connect' : 'upgrade';
  }

  failed(error: unknown): void {
    try {
      this.events.failed(error);
    } catch {
      // The error reporter itself failed: there is nowhere safe left to report it.
    }
  }

  // ---- tracking -------------------------------------------------------------------------

  /** Tracks a socket given by the app; returns false when it cannot be tracked. */
  trackByHand(socket: Socket, direction: SocketDirection | undefined): boolean {
    if (!this.running) return false;
    // net.Socket starts with `server = null`; only accepted sockets have one.
    const server = (socket as Socket & { server?: Server | null }).server ?? undefined;
    const side = direction ?? (server !== undefined ? 'server' : 'client');
    const stack = this.sampler.wants(undefined)
      ? captureStack(this.options.stackLimit, this.trackByHand)
      : undefined;
    const serverRecord =
      side === 'server' && server !== undefined ? this.serverRecordOf(server) : undefined;
    return this.add(socket, side, stack, serverRecord) !== undefined;
  }

  /** A scan: for assertions and describe(), not for per-socket paths. */
  recordById(id: number): SocketRecord | undefined {
    for (const record of this.registry) if (record.id === id) return record;
    return undefined;
  }

  recordOf(socket: Socket): SocketRecord | undefined {
    const tag = (socket as Tagged)[this.key];
    return tag === CLOSED ? undefined : tag;
  }

  private add(
    socket: Socket,
    direction: SocketDirection,
    stack: StackHolder | undefined,
    server: ServerRecord | undefined,
  ): SocketRecord | undefined {
    const tag = (socket as Tagged)[this.key];
    if (tag !== undefined && tag !== CLOSED) return tag;
    if (!this.running || socket.destroyed) return undefined;
    const record = new SocketRecord(
      ++this.nextId,
      socket,
      direction,
      // Whole ms: a small integer is stored in the record, a fraction would box a HeapNumber.
      Math.floor(monotonicNow()),
      stack,
      server,
    );
    (socket as Tagged)[this.key] = record;
    if (tag === undefined) {
      socket.on('end', this.onEnd);
      socket.on('close', this.onClose);
    }
    this.registry.add(record);
    this.states.update(record);
    // A socket handed to track() late may have seen its 'end' already.
    if (socket.readableEnded) this.peerEnded(socket);
    return record;
  }

  private release(record: SocketRecord): void {
    const socket = record.socket;
    socket.removeListener('end', this.onEnd);
    socket.removeListener('close', this.onClose);
    this.discovery.release(socket);
    (socket as Tagged)[this.key] = undefined;
  }

  private serverRecordOf(server: Server): ServerRecord {
    let record = this.servers.get(server);
    if (record === undefined) {
      record = new ServerRecord(++this.nextServerId, server);
      this.servers.set(server, record);
    }
    return record;
  }

  private closed(socket: Socket): void {
    const record = this.recordOf(socket);
    if (record === undefined) return;
    this.registry.delete(record);
    this.states.remove(record);
    this.halfClosed.delete(record);
    this.kernel.forget(record);
    // No discovery.release(socket) and no removeListener here: a closed socket's listeners
    // fire again only if it reconnects (then CLOSED says they are still there), and scanning
    // them on every close is per-socket work for nothing (stop() still releases). An app that
    // keeps closed sockets (a pool, a list) must not keep our records too.
    (socket as Tagged)[this.key] = CLOSED;
    if (record.leak !== undefined) {
      const byPolicy = record.context?.destroyedByPolicy === true;
      this.resolve(record, byPolicy ? 'destroyed' : 'closed', monotonicNow());
    }
  }

  // ---- applying the rules ---------------------------------------------------------------

  private peerEnded(socket: Socket): void {
    const record = this.recordOf(socket);
    if (record === undefined || record.peerEndedAt !== 0) return;
    const now = monotonicNow();
    record.peerEndedAt = now;
    // 'end' means everything before the FIN was consumed at last.
    record.finUnreadSince = 0;
    this.states.update(record);
    if (record.context !== undefined) record.context.kernelFinSince = 0;
    const kind = record.leak?.kind;
    if (kind === 'unconsumed-fin' || kind === 'unread-fin') this.resolve(record, 'consumed', now);
    // Our FIN is already out (we ended first: the usual connection-per-request case): this
    // socket cannot be in CLOSE_WAIT and is about to close, so it needs no grace check.
    if (record.socket.writableFinished) return;
    markProgress(record);
    this.halfClosed.add(record, now);
  }

  /**
   * Judges the half-closed sockets whose grace has run out, until the slice ends. A declared
   * leak stays queued and is judged again each grace: progress withdraws it ('progress') and
   * the socket is judged afresh.
   */
  private processDue(sliceEnd: number): boolean {
    let now = monotonicNow();
    for (;;) {
      if (!this.running) return false;
      const record = this.halfClosed.takeDue(now);
      if (record === undefined) break;
      const verdict = judgeHalfClosed(record);
      if (verdict === 'closed') continue;
      if (verdict === 'progress') {
        if (record.leak !== undefined) this.resolve(record, 'progress', now);
      } else if (record.leak === undefined) {
        this.declare(record, verdict, now);
      } else if (record.leak.kind !== verdict) {
        // end() was called on a half-closed leak, and its FIN is stuck: a new leak, not the old.
        this.resolve(record, 'progress', now);
        this.declare(record, verdict, now);
      }
      if (this.running && !record.socket.destroyed) this.halfClosed.add(record, now);
      now = monotonicNow();
      if (now > sliceEnd) return true;
    }
    this.halfClosed.schedule(now);
    return false;
  }

  /**
   * The unconsumed-FIN rule, for every tracked socket: Node read the FIN, the app never
   * consumed the bytes in front of it. Resumes where the last slice stopped.
   */
  private sweep(sliceEnd: number): boolean {
    const graceMs = this.options.graceMs;
    const registry = this.registry;
    let now = monotonicNow();
    for (let slot = this.sweepCursor; slot < registry.capacity; slot++) {
      if (!this.running) return false;
      // 50,000 sockets take a few ms to look at: check the slice's clock every 1,024.
      if ((slot & 1023) === 1023 && monotonicNow() > sliceEnd) {
        this.sweepCursor = slot;
        return true;
      }
      const record = registry.at(slot);
      if (record === undefined) continue;
      const unread = unconsumedFinBytes(record.socket);
      const verdict = judgeUnconsumedFin(record, unread, now, graceMs);
      if (verdict === 'gone') {
        record.finUnreadSince = 0;
        this.states.update(record);
        if (record.leak?.kind === 'unconsumed-fin') this.resolve(record, 'consumed', now);
      } else if (verdict === 'changed') {
        // A FIN the kernel held, now read by Node behind unconsumed bytes, is progress too.
        const kind = record.leak?.kind;
        if (kind === 'unconsumed-fin' || kind === 'unread-fin') {
          this.resolve(record, 'consumed', now);
        }
        if (record.context !== undefined) record.context.kernelFinSince = 0;
        record.finUnreadSince = now;
        record.finUnreadLength = unread;
        this.states.update(record);
        this.kernel.tlsEndSeen(record);
      } else if (verdict === 'leak') {
        // A TLS stream's end may be close_notify with the FIN still in the kernel: it decides.
        if (this.kernel.decidesTlsFin(record)) continue;
        this.declare(record, 'unconsumed-fin', now);
        now = monotonicNow();
        if (now > sliceEnd) {
          this.sweepCursor = slot + 1;
          return true;
        }
      }
    }
    this.sweepCursor = 0;
    return false;
  }

  private declare(record: SocketRecord, kind: LeakKind, now: number): void {
    const leak = buildLeak(record, kind, now, this.options.keepQuery);
    record.leak = leak;
    this.states.update(record);
    this.leaked.add(record);
    this.counts.add(leak);
    if (record.server !== undefined) record.server.hasLeaked = true;
    if (leak.stack === undefined && record.direction === 'client') {
      this.sampler.leakedUnnamed(record.context?.requestOrigin);
    }
    this.kernel.declared(record);
    this.events.leak(leak);
    // A 'leak' listener may have stopped the monitor: a stopped monitor never acts.
    if (this.running) this.policy?.consider(record, now);
  }

  private resolve(record: SocketRecord, reason: LeakResolution['reason'], now: number): void {
    const leak = record.leak;
    if (leak === undefined) return;
    record.leak = undefined;
    if (record.slot !== -1) this.states.update(record);
    this.leaked.delete(record);
    this.counts.remove(leak);
    this.policy?.forget(record);
    this.events.resolved(leak, { reason, resolvedAt: toEpoch(now) });
  }

  private destroyByPolicy(record: SocketRecord, leak: SocketLeak, dryRun: boolean): void {
    if (!this.running) return;
    if ((leak.kind !== 'end-stuck' && leak.kind !== 'half-closed') || !this.kernelAvailable) {
      this.destroyNow(record, leak, dryRun);
      return;
    }
    // Linux: the kernel's send queue is the last word on progress (see sendQueueMoves).
    sendQueueMoves(record).then(
      (moves) => {
        if (!this.running || record.leak !== leak || record.socket.destroyed) return;
        if (moves !== true) {
          this.destroyNow(record, leak, dryRun);
          return;
        }
        const now = monotonicNow();
        this.resolve(record, 'progress', now);
        markProgress(record);
        this.halfClosed.add(record, now);
      },
      (error: unknown) => this.failed(error),
    );
  }

  private destroyNow(record: SocketRecord, leak: SocketLeak, dryRun: boolean): void {
    if (!dryRun) {
      record.more.destroyedByPolicy = true;
      record.socket.destroy();
    }
    this.events.destroyed(leak, { dryRun, destroyedAt: epochNow() });
  }

  /** The report's counts, without its groups: what health and the periodic summary need. */
  summary() {
    const byState = this.states.byState();
    let tracked = 0;
    for (const state of Object.keys(byState) as TrackedSocketState[]) tracked += byState[state];
    const counts = this.counts;
    return {
      tracked,
      leaked: counts.total,
      byState,
      byKind: counts.byKind(),
      byDirection: counts.byDirection(),
    };
  }

  /** One comparison with the kernel's table, read after this call (KernelView.freshCheck). */
  kernelCheck(): Promise<KernelCheckResult> {
    return this.kernel.freshCheck();
  }

  /** The same, read synchronously: for the report written at exit. */
  kernelCheckSync(): KernelCheckResult {
    return this.kernel.checkSync();
  }
}
