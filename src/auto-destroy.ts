import { clearTimer, monotonicNow, setTimer } from './clock.js';
import type { SocketRecord } from './tracking/record.js';
import type { LeakKind, SocketLeak } from './types.js';

export interface AutoDestroyOptions {
  /** How long a socket must have been a leak before it is destroyed, in ms. */
  afterMs: number;
  /** Only log, count and emit 'destroy' for what would have been destroyed. Default false. */
  dryRun?: boolean;
  /** At most this many destructions per minute; the rest wait. Default 60. */
  maxPerMinute?: number;
  /** Return false to spare a leak. A filter that throws spares it too. */
  filter?: (leak: SocketLeak) => boolean;
  /**
   * Also act on `unconsumed-fin` leaks. Off by default: destroying errors a body the app may
   * still mean to read.
   */
  unconsumedFin?: boolean;
  /** Also act on `unread-fin` leaks found by the kernel check. Off by default. */
  kernel?: boolean;
}

export interface ResolvedAutoDestroy {
  afterMs: number;
  dryRun: boolean;
  maxPerMinute: number;
  filter: ((leak: SocketLeak) => boolean) | undefined;
  kinds: ReadonlySet<LeakKind>;
}

const MINUTE_MS = 60_000;

export interface DestroyHooks {
  /** Re-judges the socket now: the policy acts only on what is still a leak of that kind. */
  stillLeaking(record: SocketRecord): boolean;
  act(record: SocketRecord, leak: SocketLeak, dryRun: boolean): void;
  failed(error: unknown): void;
}

/**
 * Destroys leaks `afterMs` after they were declared. Leaks wait in one queue served by one
 * `unref()`ed timer: every leak is due `afterMs` after its detection, so insertion order is due
 * order. A per-minute budget bounds the damage of a wrong policy: past it, the queue waits for
 * the next minute instead of dropping anything.
 */
export class DestroyPolicy {
  private readonly queue = new Set<SocketRecord>();
  private readonly dueAt = new WeakMap<SocketRecord, number>();
  private timer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private windowCount = 0;
  private readonly onDue = () => {
    this.timer = undefined;
    try {
      this.processDue(monotonicNow());
    } catch (error) {
      this.hooks.failed(error);
    }
  };

  constructor(
    private readonly options: ResolvedAutoDestroy,
    private readonly hooks: DestroyHooks,
  ) {}

  consider(record: SocketRecord, now: number): void {
    const leak = record.leak;
    if (leak === undefined || !this.options.kinds.has(leak.kind)) return;
    this.dueAt.set(record, now + this.options.afterMs);
    this.queue.delete(record);
    this.queue.add(record);
    this.schedule(now);
  }

  forget(record: SocketRecord): void {
    this.queue.delete(record);
  }

  stop(): void {
    clearTimer(this.timer);
    this.timer = undefined;
    this.queue.clear();
  }

  private schedule(now: number, at?: number): void {
    if (this.timer !== undefined) return;
    const head = this.queue.values().next();
    if (head.done) return;
    const due = at ?? this.dueAt.get(head.value) ?? now;
    this.timer = setTimer(this.onDue, Math.max(1, Math.ceil(due - now)));
    this.timer.unref();
  }

  private processDue(now: number): void {
    if (now - this.windowStart >= MINUTE_MS) {
      this.windowStart = now;
      this.windowCount = 0;
    }
    for (const record of this.queue) {
      if ((this.dueAt.get(record) ?? 0) > now + 1) break;
      if (this.windowCount >= this.options.maxPerMinute) {
        this.schedule(now, this.windowStart + MINUTE_MS);
        return;
      }
      this.queue.delete(record);
      const leak = record.leak;
      if (leak === undefined || record.socket.destroyed) continue;
      if (!this.hooks.stillLeaking(record) || !this.allowedByFilter(leak)) continue;
      this.windowCount++;
      this.hooks.act(record, leak, this.options.dryRun);
    }
    this.schedule(now);
  }

  private allowedByFilter(leak: SocketLeak): boolean {
    const filter = this.options.filter;
    if (filter === undefined) return true;
    try {
      return filter(leak) !== false;
    } catch (error) {
      this.hooks.failed(error);
      return false;
    }
  }
}
