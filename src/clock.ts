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

export const setTimer: typeof timers.setTimeout = timers.setTimeout;
export const clearTimer: typeof timers.clearTimeout = timers.clearTimeout;
export const setRepeating: typeof timers.setInterval = timers.setInterval;
export const clearRepeating: typeof timers.clearInterval = timers.clearInterval;
export const setImmediateReal: typeof timers.setImmediate = timers.setImmediate;
