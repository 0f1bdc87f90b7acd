import type { Server, Socket } from 'node:net';
import { Discovery, type DiscoverySink } from './discovery.js';
import { buildLeak, judgeHalfClosed, markProgress, toEpoch, unconsumedFinBytes } from './leak.js';
import type { ResolvedOptions } from './options.js';
import { ServerRecord, SocketRecord } from './record.js';
import { captureStack, type StackHolder } from './stack.js';
import type { LeakKind, LeakResolution, SocketDirection, SocketLeak } from './types.js';

export interface TrackerEvents {
  leak(leak: SocketLeak): void;
  resolved(leak: SocketLeak, resolution: LeakResolution): void;
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
    this.discovery = new Discovery(
      this,
      options.patchSocketConnect,
      () => this.wantsStack(undefined),
      (above) => captureStack(options.stackLimit, above),
    );
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.discovery.start();
    this.sweepTimer = setInterval(this.onSweep, this.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.discovery.stop();
    clearInterval(this.sweepTimer);
    clearTimeout(this.dueTimer);
    this.sweepTimer = undefined;
    this.dueTimer = undefined;
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
    this.serverRecordOf(server).listenStack = captureStack(this.options.stackLimit, above);
  }

  requestCreated(request: object, origin: string | undefined, above: Function): void {
    if (this.wantsStack(origin)) {
      this.requestStacks.set(request, captureStack(this.options.stackLimit, above));
    }
  }

  requestSent(socket: Socket, request: object, method: string, origin: string, path: string) {
    const record = this.recordOf(socket) ?? this.add(socket, 'client', undefined, undefined);
    if (record === undefined) return;
    record.requestMethod = method;
    record.requestOrigin = origin;
    record.requestPath = path;
    // The request's stack names the app's fetch()/request() call; the connection's never does.
    const stack = this.requestStacks.get(request);
    if (stack !== undefined) record.stack = stack;
  }

  handedOver(socket: Socket, method: string, url: string): void {
    const record = this.recordOf(socket);
    if (record === undefined) return;
    record.requestMethod = method;
    record.requestOrigin = undefined;
    record.requestPath = url;
    record.handoff = method === 'CONNECT' ? 'connect' : 'upgrade';
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
      performance.now(),
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
    if (record.leak?.kind === 'unconsumed-fin') this.resolve(record, 'consumed', now);
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
        // First sight of the unread FIN, or the app consumed some of what is in front of it.
        if (record.leak?.kind === 'unconsumed-fin') this.resolve(record, 'consumed', now);
        record.finUnreadSince = now;
        record.finUnreadLength = unread;
      } else if (record.leak === undefined && now - record.finUnreadSince >= graceMs) {
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
      const origin = record.requestOrigin;
      if (origin !== undefined && this.hotOrigins.size < MAX_HOT_ORIGINS) {
        this.hotOrigins.add(origin);
      } else {
        this.stackBoost = STACK_BOOST_SOCKETS;
      }
    }
    this.events.leak(leak);
  }

  private resolve(record: SocketRecord, reason: LeakResolution['reason'], now: number): void {
    const leak = record.leak;
    if (leak === undefined) return;
    record.leak = undefined;
    this.leaked.delete(record);
    this.events.resolved(leak, { reason, resolvedAt: toEpoch(now) });
  }

  private closed(socket: Socket): void {
    const record = this.recordOf(socket);
    if (record === undefined) return;
    this.tracked.delete(record);
    this.halfClosed.delete(record);
    this.discovery.release(socket);
    if (record.leak !== undefined) this.resolve(record, 'closed', performance.now());
  }
}
