import type { Server, Socket } from 'node:net';
import { DestroyPolicy } from '../auto-destroy.js';
import { Discovery, type DiscoverySink } from '../discovery/discovery.js';
import { snapshotKernel, unsupportedKernelResult } from '../kernel/kernel-check.js';
import { kernelViewUnsupported } from '../kernel/process-sockets.js';
import type { ResolvedOptions } from '../options.js';
import {
  buildLeak,
  describeRecord,
  judgeHalfClosed,
  markProgress,
  toEpoch,
  unconsumedFinBytes,
} from '../report/leak-view.js';
import type {
  DestroyInfo,
  KernelCheckResult,
  KernelSummary,
  LeakKind,
  LeakResolution,
  SocketDirection,
  SocketLeak,
} from '../types.js';
import { ServerRecord, SocketRecord } from './record.js';
import { captureStack, type StackHolder } from './stack.js';

export interface TrackerEvents {
  leak(leak: SocketLeak): void;
  resolved(leak: SocketLeak, resolution: LeakResolution): void;
  destroyed(leak: SocketLeak, info: DestroyInfo): void;
  failed(error: unknown): void;
}

/** After a client leak with no stack, this many client sockets get one regardless of sampling. */
const STACK_BOOST_SOCKETS = 1000;
/** Origins that leaked without a stack: bounded, it only steers sampling. */
const MAX_HOT_ORIGINS = 1000;

type Tagged = Socket & Record<symbol, SocketRecord | undefined>;

/**
 * Tracks sockets found by discovery and applies the leak rules. Per socket: one small record,
 * an 'end' and a 'close' listener shared by all sockets, no timer. Half-closed sockets wait in
 * one queue served by one timer; the unconsumed-FIN rule is checked by one periodic sweep.
 */
export class Tracker implements DiscoverySink {
  /** Per tracker, so two monitors never share a record. */
  private readonly key = Symbol('closewait.record');
  private nextId = 0;
  private nextServerId = 0;
  readonly tracked = new Set<SocketRecord>();
  /** Half-closed sockets in due order: each is added with `dueAt = now + graceMs`. */
  private readonly halfClosed = new Set<SocketRecord>();
  readonly leaked = new Set<SocketRecord>();
  private readonly servers = new WeakMap<Server, ServerRecord>();
  private readonly requestStacks = new WeakMap<object, StackHolder>();
  private readonly hotOrigins = new Set<string>();
  private stackBoost = 0;
  private dueTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private kernelTimer: NodeJS.Timeout | undefined;
  private kernelCheckInFlight: Promise<KernelCheckResult> | undefined;
  /** Sockets the last kernel check showed in CLOSE_WAIT with the FIN still unread by Node. */
  private kernelSuspects = new Set<SocketRecord>();
  /** What the last kernel check saw, for report(). */
  lastKernel: KernelSummary | undefined;
  private readonly policy: DestroyPolicy | undefined;
  private readonly discovery: Discovery;
  private readonly onEnd: (this: Socket) => void;
  private readonly onClose: (this: Socket) => void;
  private readonly onDue: () => void;
  private readonly onSweep: () => void;
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
    this.onDue = () => {
      this.dueTimer = undefined;
      try {
        this.processDue(performance.now());
      } catch (error) {
        this.failed(error);
      }
      this.scheduleDue(performance.now());
    };
    this.onSweep = () => {
      try {
        this.sweep(performance.now());
      } catch (error) {
        this.failed(error);
      }
    };
    this.policy =
      options.autoDestroy === undefined
        ? undefined
        : new DestroyPolicy(options.autoDestroy, {
            stillLeaking: (record) => this.stillLeaking(record),
            act: (record, leak, dryRun) => this.destroyByPolicy(record, leak, dryRun),
            failed: (error) => this.failed(error),
          });
    this.discovery = new Discovery(this, options.patchSocketConnect);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.discovery.start();
    this.sweepTimer = setInterval(this.onSweep, this.options.sweepIntervalMs);
    this.sweepTimer.unref();
    if (this.options.kernelCheckIntervalMs > 0 && kernelViewUnsupported() === undefined) {
      this.kernelTimer = setInterval(() => {
        if (this.kernelCheckInFlight === undefined) {
          this.kernelCheck().catch((error: unknown) => this.failed(error));
        }
      }, this.options.kernelCheckIntervalMs);
      this.kernelTimer.unref();
    }
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.discovery.stop();
    clearInterval(this.sweepTimer);
    clearInterval(this.kernelTimer);
    clearTimeout(this.dueTimer);
    this.sweepTimer = undefined;
    this.kernelTimer = undefined;
    this.dueTimer = undefined;
    this.policy?.stop();
    this.kernelSuspects.clear();
    for (const record of this.tracked) this.release(record);
    this.tracked.clear();
    this.halfClosed.clear();
    this.leaked.clear();
  }

  // ---- discovery sink -------------------------------------------------------------------

  accepted(socket: Socket, server: Server): void {
    this.add(socket, 'server', undefined, this.serverRecordOf(server));
  }

  connected(socket: Socket, above: Function | undefined, stack?: StackHolder): void {
    const existing = this.recordOf(socket);
    if (existing !== undefined) {
      existing.stack ??= stack;
      return;
    }
    if (stack === undefined && above !== undefined && this.wantsStack(undefined)) {
      stack = captureStack(this.options.stackLimit, above);
    }
    this.add(socket, 'client', stack, undefined);
  }

  listening(server: Server, above: Function): void {
    // One stack per listen() call: cheap, and it names every socket the server accepts.
    const record = this.serverRecordOf(server);
    record.listenStack = captureStack(this.options.stackLimit, above);
    record.info = undefined;
  }

  requestCreated(request: object, origin: string | undefined, above: Function): void {
    if (this.wantsStack(origin)) {
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
    const stack = this.wantsStack(undefined)
      ? captureStack(this.options.stackLimit, this.trackByHand)
      : undefined;
    const serverRecord =
      side === 'server' && server !== undefined ? this.serverRecordOf(server) : undefined;
    return this.add(socket, side, stack, serverRecord) !== undefined;
  }

  recordOf(socket: Socket): SocketRecord | undefined {
    return (socket as Tagged)[this.key];
  }

  private add(
    socket: Socket,
    direction: SocketDirection,
    stack: StackHolder | undefined,
    server: ServerRecord | undefined,
  ): SocketRecord | undefined {
    const existing = this.recordOf(socket);
    if (existing !== undefined) return existing;
    if (!this.running || socket.destroyed) return undefined;
    const record = new SocketRecord(
      ++this.nextId,
      socket,
      direction,
      // Whole ms: a small integer is stored in the record, a fraction would box a HeapNumber.
      Math.floor(performance.now()),
      stack,
      server,
    );
    (socket as Tagged)[this.key] = record;
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    this.tracked.add(record);
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

  /** Sampling, made adaptive: origins and sites that leaked unnamed get stacks from then on. */
  private wantsStack(origin: string | undefined): boolean {
    const rate = this.options.sampleRate;
    if (rate >= 1) return true;
    if (rate <= 0) return false;
    if (this.stackBoost > 0) {
      this.stackBoost--;
      return true;
    }
    if (origin !== undefined && this.hotOrigins.has(origin)) return true;
    return Math.random() < rate;
  }

  // ---- leak rules -----------------------------------------------------------------------

  private peerEnded(socket: Socket): void {
    const record = this.recordOf(socket);
    if (record === undefined || record.peerEndedAt !== 0) return;
    const now = performance.now();
    record.peerEndedAt = now;
    // 'end' means everything before the FIN was consumed at last.
    record.finUnreadSince = 0;
    if (record.context !== undefined) record.context.kernelFinSince = 0;
    const kind = record.leak?.kind;
    if (kind === 'unconsumed-fin' || kind === 'unread-fin') this.resolve(record, 'consumed', now);
    // Our FIN is already out (we ended first: the usual connection-per-request case): this
    // socket cannot be in CLOSE_WAIT and is about to close, so it needs no grace check.
    if (record.socket.writableFinished) return;
    markProgress(record);
    this.enqueue(record, now);
  }

  private enqueue(record: SocketRecord, now: number): void {
    record.dueAt = now + this.options.graceMs;
    this.halfClosed.delete(record);
    this.halfClosed.add(record);
    this.scheduleDue(now);
  }

  private scheduleDue(now: number): void {
    if (this.dueTimer !== undefined || !this.running) return;
    const head = this.halfClosed.values().next();
    if (head.done) return;
    this.dueTimer = setTimeout(this.onDue, Math.max(1, Math.ceil(head.value.dueAt - now)));
    this.dueTimer.unref();
  }

  private processDue(now: number): void {
    for (const record of this.halfClosed) {
      // Timers run on libuv's cached loop clock, which can trail performance.now() by ~1 ms.
      if (record.dueAt > now + 1) break;
      this.halfClosed.delete(record);
      if (record.leak !== undefined) continue;
      const verdict = judgeHalfClosed(record);
      if (verdict === 'progress') this.enqueue(record, now);
      else if (verdict !== 'closed') this.declare(record, verdict, now);
    }
  }

  private sweep(now: number): void {
    const graceMs = this.options.graceMs;
    for (const record of this.tracked) {
      const unread = unconsumedFinBytes(record.socket);
      if (unread === -1) {
        if (record.finUnreadSince !== 0) {
          record.finUnreadSince = 0;
          if (record.leak?.kind === 'unconsumed-fin') this.resolve(record, 'consumed', now);
        }
        continue;
      }
      if (record.finUnreadSince === 0 || unread !== record.finUnreadLength) {
        // First sight of the unread FIN, or the app consumed some of what is in front of it
        // (a FIN the kernel held is now read by Node: that is progress too).
        const kind = record.leak?.kind;
        if (kind === 'unconsumed-fin' || kind === 'unread-fin') {
          this.resolve(record, 'consumed', now);
        }
        if (record.context !== undefined) record.context.kernelFinSince = 0;
        record.finUnreadSince = now;
        record.finUnreadLength = unread;
      } else if (record.leak === undefined && now - record.finUnreadSince >= graceMs - 1) {
        // (- 1: the sweep runs on libuv's whole-millisecond clock; without the tolerance a
        // leak due now waits one more sweep. Measured by the bench: +250 ms at graceMs 1000.)
        this.declare(record, 'unconsumed-fin', now);
      }
    }
  }

  private declare(record: SocketRecord, kind: LeakKind, now: number): void {
    const leak = buildLeak(record, kind, now);
    record.leak = leak;
    this.leaked.add(record);
    if (record.server !== undefined) record.server.hasLeaked = true;
    if (leak.stack === undefined && record.direction === 'client') {
      const origin = record.context?.requestOrigin;
      if (origin !== undefined && this.hotOrigins.size < MAX_HOT_ORIGINS) {
        this.hotOrigins.add(origin);
      } else {
        this.stackBoost = STACK_BOOST_SOCKETS;
      }
    }
    this.events.leak(leak);
    this.policy?.consider(record, now);
  }

  private resolve(record: SocketRecord, reason: LeakResolution['reason'], now: number): void {
    const leak = record.leak;
    if (leak === undefined) return;
    record.leak = undefined;
    this.leaked.delete(record);
    this.policy?.forget(record);
    this.events.resolved(leak, { reason, resolvedAt: toEpoch(now) });
  }

  private closed(socket: Socket): void {
    const record = this.recordOf(socket);
    if (record === undefined) return;
    this.tracked.delete(record);
    this.halfClosed.delete(record);
    this.kernelSuspects.delete(record);
    // No discovery.release(socket) here: a closed socket's listeners never fire again, and
    // scanning them on every close is per-socket work for nothing (stop() still releases).
    // An app that keeps closed sockets (a pool, a list) must not keep our records too.
    (socket as Tagged)[this.key] = undefined;
    if (record.leak !== undefined) {
      const byPolicy = record.context?.destroyedByPolicy === true;
      this.resolve(record, byPolicy ? 'destroyed' : 'closed', performance.now());
    }
  }

  // ---- auto-destroy ---------------------------------------------------------------------

  /** The policy acts only on what is still a leak of the same kind when its time comes. */
  private stillLeaking(record: SocketRecord): boolean {
    const kind = record.leak?.kind;
    if (kind === 'half-closed' || kind === 'end-stuck') return judgeHalfClosed(record) === kind;
    if (kind === 'unconsumed-fin') {
      return unconsumedFinBytes(record.socket) === record.finUnreadLength;
    }
    if (kind === 'unread-fin') {
      return record.peerEndedAt === 0 && unconsumedFinBytes(record.socket) === -1;
    }
    return false;
  }

  private destroyByPolicy(record: SocketRecord, leak: SocketLeak, dryRun: boolean): void {
    if (!dryRun) {
      record.more.destroyedByPolicy = true;
      record.socket.destroy();
    }
    this.events.destroyed(leak, { dryRun, destroyedAt: Date.now() });
  }

  // ---- kernel view ----------------------------------------------------------------------

  /** One comparison with the kernel's table; concurrent calls share the one in flight. */
  kernelCheck(): Promise<KernelCheckResult> {
    this.kernelCheckInFlight ??= this.runKernelCheck().finally(() => {
      this.kernelCheckInFlight = undefined;
    });
    return this.kernelCheckInFlight;
  }

  private async runKernelCheck(): Promise<KernelCheckResult> {
    const started = performance.now();
    const unsupported = kernelViewUnsupported();
    if (unsupported !== undefined) return unsupportedKernelResult(unsupported);
    const snapshot = await snapshotKernel(this.tracked);
    const now = performance.now();
    const confirmed: SocketLeak[] = [];
    const hidden: KernelCheckResult['hidden'] = [];
    const suspects = new Set<SocketRecord>();
    for (const { record, row } of snapshot.matched) {
      if (!this.tracked.has(record)) continue; // closed while we read /proc
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
        if (leak !== undefined) this.resolve(record, 'consumed', now);
        context.kernelFinSince = now;
        context.kernelUnreadMark = row.unreadBytes;
      } else if (leak === undefined && now - context.kernelFinSince >= this.options.graceMs) {
        this.declare(record, 'unread-fin', now);
      }
      hidden.push({
        socket: describeRecord(record),
        unreadBytes: row.unreadBytes,
        leak: record.leak,
      });
    }
    for (const record of this.kernelSuspects) {
      if (suspects.has(record)) continue;
      // No longer CLOSE_WAIT with an unread FIN: Node read it, or the socket closed.
      if (record.context !== undefined) record.context.kernelFinSince = 0;
      if (record.leak?.kind === 'unread-fin') this.resolve(record, 'consumed', now);
    }
    this.kernelSuspects = suspects;
    const closeWait = snapshot.matched.length + snapshot.unattributed.length;
    this.lastKernel = {
      checkedAt: Date.now(),
      closeWait,
      unattributed: snapshot.unattributed,
    };
    return {
      supported: true,
      reason: undefined,
      checkedAt: this.lastKernel.checkedAt,
      durationMs: performance.now() - started,
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
