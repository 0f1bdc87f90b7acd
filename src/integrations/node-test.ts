/**
 * node:test: `checkSocketLeaks()` at the top of a test file checks each test of the file for
 * socket leaks and fails the test that leaked, naming the line; the other tests still run.
 *
 * node:test fails a test, and only that test, when its `afterEach` hook throws. A test's own
 * (or its suite's) `afterEach` hooks run before those of the file's top level, so a test that
 * closes its socket in a `describe`'s `afterEach` is not blamed; top-level `afterEach` hooks
 * run in the order they were added, so call `checkSocketLeaks()` after your own.
 */
import { afterEach, beforeEach } from 'node:test';
import { captureStack, framesOf, sitesOf } from '../tracking/stack.js';
import { type CheckedTest, PerTestCheck } from './per-test-check.js';
import type { SocketLeakAssertOptions, SocketLeakCheckOptions } from './testing.js';

export type { SocketLeakAssertOptions, SocketLeakCheckOptions };

/** `passed` exists on node:test's TestContext from Node 21 (@types/node 20 lacks it). */
function passedOf(context: object): boolean {
  return (context as { passed?: unknown }).passed !== false;
}

const check = new PerTestCheck('closewait/node-test', 'CLOSEWAIT_NODE_TEST');
/** Enough frames to get past our own to the test file's. */
const CALLER_FRAMES = 12;

/** The file that called us: the first frame outside closewait and node_modules. */
function callerFile(): string | undefined {
  const { appSite } = sitesOf(framesOf(captureStack(CALLER_FRAMES, checkSocketLeaks)));
  return appSite?.replace(/:\d+:\d+$/, '');
}

/**
 * Checks every test that follows in this file (or this `describe`, when called inside one).
 * `options` apply to each of them; inside a test, `configureSocketLeakCheck` changes one test.
 */
export function checkSocketLeaks(options?: SocketLeakCheckOptions): void {
  const { testFile = callerFile(), ...rest } = options ?? {};
  check.configure({ ...rest, ...(testFile === undefined ? {} : { testFile }) });
  const running = new WeakMap<object, CheckedTest>();
  beforeEach((context) => {
    try {
      running.set(context, check.begin(testFile));
    } catch (error) {
      check.warn(error);
    }
  });
  afterEach(async (context) => {
    const checked = running.get(context);
    if (checked === undefined) return;
    running.delete(context);
    // Before Node 21 a failed test is checked too: node:test keeps its first error, not ours.
    const leak = await check.finish(checked, passedOf(context));
    if (leak !== undefined) throw leak;
  });
}

/** Inside a test: options for that test only; `false` skips its check. */
export function configureSocketLeakCheck(options: SocketLeakCheckOptions | false): void {
  check.configure(options);
}
