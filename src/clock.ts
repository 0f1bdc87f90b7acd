/**
 * The real clock and timers, taken from Node's modules when closewait loads. Test runners' fake
 * timers (vitest's and Jest's, both @sinonjs/fake-timers) replace `globalThis.setTimeout`,
 * `globalThis.performance` and `Date`; a monitor that used those would never see a grace period
 * end under a fake clock (a leaky test passed), and an assertion that waited on them would hang.
 * Everything closewait times or schedules goes through here, with the functions of
 * `node:perf_hooks` and `node:timers` taken once, at load: installed on the real global,
 * @sinonjs/fake-timers 15 (`FakeTimers.install()`, sinon's `useFakeTimers()`) also replaces
 * `perf_hooks.performance.now` and node:timers' methods in place, and node:test's mock timers
 * replace node:timers' methods too.
 */
import { performance } from 'node:perf_hooks';
import timers from 'node:timers';

const realNow: () => number = performance.now.bind(performance);

/** Monotonic milliseconds (`performance.now()` of the real clock). */
export const monotonicNow: () => number = realNow;
/** Epoch milliseconds at `monotonicNow() === 0`. */
export const timeOrigin: number = performance.timeOrigin;
/**
 * Epoch milliseconds of the real clock. From the monotonic clock, not `Date.now`: in Jest the
 * module runs in the test's realm, whose `Date` may already be fake when closewait loads.
 */
export const epochNow: () => number = () => Math.round(timeOrigin + realNow());

/**
 * The timer functions of node:timers, captured at load. Not looked up on the module per call:
 * fake timers do reach it when installed on the real global (@sinonjs/fake-timers 15's
 * `install()`, node:test's `mock.timers.enable()` on Node 20 to 26 both replace its methods), and
 * an assertion waiting on a fake setTimeout never ends. Internal, and an object so that a test
 * can spy on what closewait schedules (`vi.spyOn(realTimers, 'setInterval')`).
 */
export const realTimers = {
  setTimeout: timers.setTimeout,
  clearTimeout: timers.clearTimeout,
  setInterval: timers.setInterval,
  clearInterval: timers.clearInterval,
  setImmediate: timers.setImmediate,
};

export const setTimer = ((...args: Parameters<typeof timers.setTimeout>) =>
  realTimers.setTimeout(...args)) as typeof timers.setTimeout;
export const clearTimer = (timer: NodeJS.Timeout | undefined): void =>
  realTimers.clearTimeout(timer);
export const setRepeating = ((...args: Parameters<typeof timers.setInterval>) =>
  realTimers.setInterval(...args)) as typeof timers.setInterval;
export const clearRepeating = (timer: NodeJS.Timeout | undefined): void =>
  realTimers.clearInterval(timer);
export const setImmediateReal = ((...args: Parameters<typeof timers.setImmediate>) =>
  realTimers.setImmediate(...args)) as typeof timers.setImmediate;
