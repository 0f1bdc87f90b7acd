import { clearTimer, monotonicNow, setTimer } from '../clock.js';

/**
 * Longest stretch of closewait work in one turn of the event loop. A flood (10,000 sockets
 * half-closed at once) is declared, logged and counted in slices of this length, the rest on
 * later turns, so the app's requests keep being served in between.
 */
export const SLICE_MS = 8;

/**
 * End of the current slice, shared by every job (and every monitor): the due queue, the sweep
 * and the kernel view firing in one turn share one slice instead of taking one each.
 */
let sharedSliceEnd = 0;

/**
 * Runs `work` now and again on later turns while it reports unfinished business (returns
 * true). One pending continuation at a time; `unref()`ed, so it never keeps a process alive.
 */
export class SlicedJob {
  #timer: NodeJS.Timeout | undefined;
  readonly #run = () => {
    this.#timer = undefined;
    this.runNow();
  };

  constructor(
    private readonly work: (sliceEnd: number) => boolean,
    private readonly failed: (error: unknown) => void,
  ) {}

  runNow(): void {
    const now = monotonicNow();
    if (now >= sharedSliceEnd) sharedSliceEnd = now + SLICE_MS;
    else if (sharedSliceEnd - now < 1) {
      // Another job spent this slice moments ago: take the next turn.
      this.later();
      return;
    }
    let more = false;
    try {
      more = this.work(sharedSliceEnd);
    } catch (error) {
      this.failed(error);
    }
    if (more) this.later();
  }

  /** Continue on a later turn (a 0 ms timer: after I/O, unlike a microtask or an immediate). */
  later(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimer(this.#run, 0);
    this.#timer.unref();
  }

  cancel(): void {
    clearTimer(this.#timer);
    this.#timer = undefined;
  }
}
