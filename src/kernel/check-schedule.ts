/**
 * When the periodic kernel check runs next. A fixed interval is taken as given; `'auto'` (the
 * default on Linux) spaces checks by what the last one cost and by whether a leak is waiting to
 * be confirmed:
 *
 *   regular = clamp(max(base, COST_FACTOR × last duration), AUTO_MIN_MS, AUTO_MAX_MS)
 *   base    = clamp(graceMs / 4, AUTO_MIN_MS, AUTO_BASE_MAX_MS)
 *
 * so a check never takes more than 1/COST_FACTOR of the time between checks (2 % of a core), and
 * the check reads the whole namespace's table, so its duration is what the table size costs here.
 * While an `unread-fin` suspect waits for its second sighting, the next check comes when that
 * suspect is due (its first sighting + graceMs) if that is sooner: the leak is declared graceMs
 * after it was first seen, not up to one more interval later.
 */
import { clearTimer, monotonicNow, setTimer } from '../clock.js';

export type KernelCheckInterval = number | 'auto';

/** 'auto' never checks more often than this, whatever the grace. */
export const AUTO_MIN_MS = 100;
/** Nor less often than this, however long a check takes. */
export const AUTO_MAX_MS = 60_000;
/** The interval while checks are cheap: a leak is first seen at most this long after it begins. */
export const AUTO_BASE_MAX_MS = 5_000;
/** A check may take at most 1/COST_FACTOR of the time between two regular checks. */
export const COST_FACTOR = 50;
/** While a suspect is due sooner, a check may come this many of its durations after the last. */
const DUE_COST_FACTOR = 10;
/** Even then, not closer together than this. */
const DUE_MIN_MS = 10;
/**
 * Timers are measured from libuv's loop time, cached when the loop turn began, so one can fire a
 * little before `performance.now()` reaches its due: aim just past it, or the check that should
 * confirm the suspect finds it a millisecond short of graceMs and one more check is needed.
 */
const DUE_MARGIN_MS = 2;

export interface ScheduleState {
  interval: KernelCheckInterval;
  graceMs: number;
  /** How long the last check took, in ms (0 before the first). */
  lastDurationMs: number;
  /** Ms until the earliest suspect is due for its second sighting; undefined when none waits. */
  suspectDueInMs: number | undefined;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** The interval 'auto' uses while checks cost next to nothing. */
export function autoBaseMs(graceMs: number): number {
  return clamp(graceMs / 4, AUTO_MIN_MS, AUTO_BASE_MAX_MS);
}

/** Ms from the end of one check to the start of the next. */
export function nextCheckDelay(state: ScheduleState): number {
  if (state.interval !== 'auto') return state.interval;
  const cost = Math.max(0, state.lastDurationMs);
  const regular = clamp(
    Math.max(autoBaseMs(state.graceMs), COST_FACTOR * cost),
    AUTO_MIN_MS,
    AUTO_MAX_MS,
  );
  if (state.suspectDueInMs === undefined) return Math.round(regular);
  const soonest = Math.max(DUE_MIN_MS, DUE_COST_FACTOR * cost);
  return Math.round(Math.min(regular, Math.max(soonest, state.suspectDueInMs + DUE_MARGIN_MS)));
}

/**
 * Runs `check` on that schedule, one timer at a time, `unref()`ed: it never keeps the process
 * alive. Whoever completes a check (the timer's or one the app asked for) reports it through
 * `checked()`, which sets the next one from what that check found.
 */
export class KernelCheckSchedule {
  #timer: NodeJS.Timeout | undefined;
  /** When #timer fires (monotonic ms). */
  #dueAt = Number.POSITIVE_INFINITY;
  #lastDurationMs = 0;
  #running = false;
  readonly #onTimer: () => void;

  constructor(
    private readonly interval: KernelCheckInterval,
    private readonly graceMs: number,
    check: () => Promise<unknown>,
    failed: (error: unknown) => void,
  ) {
    this.#onTimer = () => {
      this.#timer = undefined;
      this.#dueAt = Number.POSITIVE_INFINITY;
      check().catch(failed);
    };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#arm(this.delayAfter(0, undefined));
  }

  stop(): void {
    this.#running = false;
    clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** A check finished (or failed) after `durationMs`: the next one is set from it. */
  checked(durationMs: number, suspectDueInMs: number | undefined): void {
    if (!this.#running) return;
    this.#lastDurationMs = durationMs;
    clearTimer(this.#timer);
    this.#arm(this.delayAfter(durationMs, suspectDueInMs));
  }

  /**
   * A rule needs the kernel's word within `ms`: the next check comes by then, if the cost allows
   * (no sooner than a suspect's confirming check could).
   */
  checkWithin(ms: number): void {
    if (!this.#running) return;
    const delay = Math.max(ms, DUE_MIN_MS, DUE_COST_FACTOR * this.#lastDurationMs);
    if (this.#dueAt <= monotonicNow() + delay) return;
    clearTimer(this.#timer);
    this.#arm(Math.round(delay));
  }

  delayAfter(lastDurationMs: number, suspectDueInMs: number | undefined): number {
    return nextCheckDelay({
      interval: this.interval,
      graceMs: this.graceMs,
      lastDurationMs,
      suspectDueInMs,
    });
  }

  #arm(delayMs: number): void {
    this.#dueAt = monotonicNow() + delayMs;
    this.#timer = setTimer(this.#onTimer, delayMs);
    this.#timer.unref();
  }
}
