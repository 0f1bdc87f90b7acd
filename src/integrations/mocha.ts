/**
 * Mocha root hooks: `mocha --require closewait/mocha` (or `require: ['closewait/mocha']` in
 * .mocharc) checks every test for socket leaks and fails the test that leaked; the run goes on.
 *
 * Mocha has no event after a test's own `afterEach` hooks, and a failing `afterEach` hook stops
 * the rest of its suite. So the check is a root `afterEach` hook moved to run after every other
 * one, and it fails the test, not itself, through `this.test.error(err)`: Mocha then fails the
 * current test and carries on (mocha 10-12, `Runner#hook`). Mocha has already reported the test
 * as passed by then (it emits 'pass' before `afterEach`), so reporters show it both ways; the
 * run's failure count and exit code count it as failed.
 */
import { type CheckedTest, PerTestCheck } from './per-test-check.js';
import type { SocketLeakAssertOptions, SocketLeakCheckOptions } from './testing.js';

export type { SocketLeakAssertOptions, SocketLeakCheckOptions };

/** What the hooks read of Mocha's objects (stable since Mocha 8). */
interface MochaRunnable {
  file?: string;
  state?: string;
  parent?: MochaSuite;
  error?(error: unknown): void;
}

interface MochaSuite {
  root?: boolean;
  parent?: MochaSuite;
  getHooks?(name: string): Array<{ fn?: unknown }> | undefined;
}

interface MochaHookContext {
  currentTest?: MochaRunnable;
  test?: MochaRunnable;
}

const check = new PerTestCheck('closewait/mocha', 'CLOSEWAIT_MOCHA');
const running = new WeakMap<MochaRunnable, CheckedTest>();

/**
 * Options for every test from here on (in a file loaded with --require, or at the top of a test
 * file), or `false` to check none. Inside a test or its `beforeEach`: for that test only.
 */
export function configureSocketLeakCheck(options: SocketLeakCheckOptions | false): void {
  check.configure(options);
}

function rootOf(test: MochaRunnable): MochaSuite | undefined {
  let suite = test.parent;
  while (suite?.parent !== undefined && suite.root !== true) suite = suite.parent;
  return suite;
}

/**
 * Root hooks run in the order they were added, and test files add theirs after this plugin:
 * moving ours last makes it run after a test file's top-level `afterEach` too.
 */
function runLast(test: MochaRunnable): void {
  const hooks = rootOf(test)?.getHooks?.('afterEach');
  if (!Array.isArray(hooks)) return;
  const index = hooks.findIndex((hook) => hook.fn === checkAfterEach);
  if (index === -1 || index === hooks.length - 1) return;
  hooks.push(...hooks.splice(index, 1));
}

function startEach(this: MochaHookContext): void {
  const test = this.currentTest;
  if (test === undefined) return;
  try {
    runLast(test);
    running.set(test, check.begin(test.file));
  } catch (error) {
    check.warn(error);
  }
}

async function checkAfterEach(this: MochaHookContext): Promise<void> {
  const test = this.currentTest;
  const checked = test === undefined ? undefined : running.get(test);
  if (test === undefined || checked === undefined) return;
  running.delete(test);
  const leak = await check.finish(checked, test.state === 'passed');
  if (leak === undefined) return;
  // Mocha filters frame-like lines out of a stack and then prints the message again above what
  // is left: with no stack it prints the message once, frames included.
  leak.stack = '';
  // `this.test` is this hook: an error set on it fails the current test instead of the hook.
  if (typeof this.test?.error === 'function') this.test.error(leak);
  else throw leak;
}

/** Mocha's root hook plugin interface: picked up from any module given to --require. */
export const mochaHooks = {
  beforeEach: startEach,
  afterEach: checkAfterEach,
};
