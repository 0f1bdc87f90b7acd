import { clearTimer, monotonicNow, setTimer } from '../clock.js';
import type { SocketRecord } from '../tracking/record.js';

/**
 * Sockets whose peer ended them, waiting for their half-closed check: one queue, one
 * `unref()`ed timer for all of them, no timer per socket. Every record is due `graceMs` after
 * it is (re)queued, so insertion order is due order and the head is always the next due.
 *
 * An array with a moving head, not a Set: declared leaks are re-queued every grace (to see
 * them move again), and a Set re-hashed by 10,000 re-queues per grace is garbage that the
 * scavenger copies. Each record knows its entry's position (`dueIndex`, counted from the
 * queue's first entry ever), so removing it clears the entry at once: a closed socket is not
 * kept until its turn comes.
 */
export class DueQueue {
  #entries: Array<SocketRecord | undefined> = [];
  /** Position of `#entries[0]` since the queue began. */
  #base = 0;
  #head = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #onTimer = () => {
    this.#timer = undefined;
    this.onDue();
  };

  constructor(
    private readonly graceMs: number,
    private readonly onDue: () => void,
  ) {}

  /** (Re)queues `record`, due `graceMs` from `now`. */
  add(record: SocketRecord, now: number): void {
    this.delete(record);
    record.dueAt = now + this.graceMs;
    record.dueIndex = this.#base + this.#entries.length;
    this.#entries.push(record);
    this.schedule(now);
  }

  delete(record: SocketRecord): void {
    if (record.dueIndex < 0) return;
    const local = record.dueIndex - this.#base;
    if (local >= 0 && this.#entries[local] === record) this.#entries[local] = undefined;
    record.dueIndex = -1;
  }

  /**
   * The head, when it is due by `now`; removed from the queue. Timers run on libuv's cached loop
   * clock, which can trail the monotonic clock by ~1 ms: due within 1 ms counts as due.
   */
  takeDue(now: number): SocketRecord | undefined {
    const head = this.#first();
    if (head === undefined || head.dueAt > now + 1) return undefined;
    this.delete(head);
    return head;
  }

  /** Arms the timer for the head, unless it is armed already. */
  schedule(now = monotonicNow()): void {
    if (this.#timer !== undefined) return;
    const head = this.#first();
    if (head === undefined) return;
    this.#timer = setTimer(this.#onTimer, Math.max(1, Math.ceil(head.dueAt - now)));
    this.#timer.unref();
  }

  clear(): void {
    clearTimer(this.#timer);
    this.#timer = undefined;
    for (const record of this.#entries) if (record !== undefined) record.dueIndex = -1;
    this.#base += this.#entries.length;
    this.#entries = [];
    this.#head = 0;
  }

  /** The first live entry, dropping the cleared ones in front of it. */
  #first(): SocketRecord | undefined {
    const entries = this.#entries;
    while (this.#head < entries.length && entries[this.#head] === undefined) this.#head++;
    if (this.#head === entries.length) {
      this.#base += entries.length;
      entries.length = 0;
      this.#head = 0;
      return undefined;
    }
    // Drop the consumed front once it is most of the array: amortized O(1) per entry.
    if (this.#head >= 1024 && this.#head * 2 >= entries.length) {
      this.#base += this.#head;
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
    return this.#entries[this.#head];
  }
}
