/**
 * The real clock and timers, taken from Node's modules when closewait loads. Test runners' fake
 * timers (vitest's and Jest's, both @sinonjs/fake-timers) replace `globalThis.setTimeout`,
 * `globalThis.performance` and `Date`; a monitor that used those would never see a grace period
 * end under a fake clock (a leaky test passed), and an assertion that waited on them would hang.
 * `node:timers` and `node:perf_hooks` are left alone by both, so everything closewait times or
 * schedules goes through here.
 *
 * Each function is taken once, at load, not looked up per call: @sinonjs/fake-timers 15 installed
 * on the real global (`FakeTimers.install()`, sinon's `useFakeTimers()`) also replaces
 * `perf_hooks.performance.now` and the methods of the `node:timers` module in place.
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

// Looked up on the node:timers module at each call (not captured at load), so that a test can
// watch them with a spy on that module; fake timers never touch it.
export const setTimer = ((...args: Parameters<typeof timers.setTimeout>) =>
  timers.setTimeout(...args)) as typeof timers.setTimeout;
export const clearTimer = (timer: NodeJS.Timeout | undefined): void => timers.clearTimeout(timer);
export const setRepeating = ((...args: Parameters<typeof timers.setInterval>) =>
  timers.setInterval(...args)) as typeof timers.setInterval;
export const clearRepeating = (timer: NodeJS.Timeout | undefined): void =>
  timers.clearInterval(timer);
export const setImmediateReal = ((...args: Parameters<typeof timers.setImmediate>) =>
  timers.setImmediate(...args)) as typeof timers.setImmediate;
