import { clearTimer, monotonicNow, setTimer } from '../clock.js';
/** What the gate reports for one site at the end of a window in which it held lines back. */
export interface FloodCount<T> {
  key: string;
  /** The leak that opened the window: names the site on the flood line. */
  sample: T;
  /** Lines let through in the window (the limit). */
  logged: number;
  /** Leaks counted instead of logged. */
  suppressed: number;
}

interface SiteWindow<T> {
  start: number;
  logged: number;
  suppressed: number;
  sample: T;
}

/**
 * Sites remembered at once. A route with ids in its path makes a new site per id: past this
 * many, the rest share one window, so memory stays bounded however many sites leak.
 */
const MAX_SITES = 1000;
const OTHER_SITES = '(other sites)';

/**
 * Lets `perSite` lines per `intervalMs` through for each site and counts the rest; each site
 * that held lines back is reported once when its window ends. One `unref()`ed timer, armed only
 * while some site holds a count, so a quiet gate costs nothing.
 */
export class FloodGate<T> {
  readonly #windows = new Map<string, SiteWindow<T>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly perSite: number,
    readonly intervalMs: number,
    private readonly report: (count: FloodCount<T>) => void,
  ) {}

  /** True when the line may be written; false when it was counted instead. */
  admit(key: string, sample: T, now: number): boolean {
    let window = this.#windows.get(key);
    if (window !== undefined && now - window.start >= this.intervalMs) {
      this.#close(key, window);
      window = undefined;
    }
    if (window === undefined) {
      if (this.#windows.size >= MAX_SITES) this.#closeEnded(now);
      if (this.#windows.size >= MAX_SITES) key = OTHER_SITES;
      window = this.#windows.get(key);
      if (window === undefined) {
        window = { start: now, logged: 0, suppressed: 0, sample };
        this.#windows.set(key, window);
      }
    }
    if (window.logged < this.perSite) {
      window.logged++;
      return true;
    }
    window.suppressed++;
    if (this.#timer === undefined) this.#arm(window.start + this.intervalMs - now);
    return false;
  }

  /** Reports every count now (the monitor is stopping) and forgets every window. */
  close(): void {
    clearTimer(this.#timer);
    this.#timer = undefined;
    for (const [key, window] of this.#windows) this.#close(key, window);
  }

  #arm(delayMs: number): void {
    this.#timer = setTimer(() => this.#onTimer(), Math.max(1, delayMs));
    this.#timer.unref();
  }

  #onTimer(): void {
    this.#timer = undefined;
    const now = monotonicNow();
    this.#closeEnded(now);
    let nextEnd = Number.POSITIVE_INFINITY;
    for (const window of this.#windows.values()) {
      if (window.suppressed > 0) nextEnd = Math.min(nextEnd, window.start + this.intervalMs);
    }
    if (nextEnd !== Number.POSITIVE_INFINITY) this.#arm(nextEnd - now);
  }

  #closeEnded(now: number): void {
    for (const [key, window] of this.#windows) {
      if (now - window.start >= this.intervalMs) this.#close(key, window);
    }
  }

  #close(key: string, window: SiteWindow<T>): void {
    this.#windows.delete(key);
    if (window.suppressed === 0) return;
    const { logged, suppressed, sample } = window;
    this.report({ key, sample, logged, suppressed });
  }
}
