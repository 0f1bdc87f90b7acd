/**
 * Vitest setup file: `setupFiles: ['closewait/vitest']` checks every test for socket leaks and
 * fails the test that leaked. Also adds `await expect(scope).toHaveNoSocketLeaks()`.
 *
 * The check runs in an `onTestFinished` hook registered from `beforeEach`: Vitest calls those
 * after every `afterEach` hook (whatever `sequence.hooks` says), after `beforeEach` cleanup
 * functions and after `test.extend` fixture teardown (vitest 4.1, runner `runTest`), so a test
 * that closes its sockets in any of those is not blamed.
 */
import { beforeEach, expect } from 'vitest';
import { invalidOption } from '../options.js';
import { type CheckedTest, PerTestCheck } from './per-test-check.js';
import {
  type SocketLeakAssertOptions,
  type SocketLeakCheckOptions,
  SocketLeakError,
  SocketLeakScope,
} from './testing.js';

export type { SocketLeakAssertOptions, SocketLeakCheckOptions };

interface SocketLeakMatchers {
  /**
   * Passes when no socket created in the scope leaked; waits up to `timeoutMs` for leaking
   * sockets to close first. Must be awaited.
   */
  toHaveNoSocketLeaks(options?: SocketLeakAssertOptions): Promise<void>;
}

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: must repeat Vitest's own declaration exactly.
  interface Assertion<T = any> extends SocketLeakMatchers {}
  interface AsymmetricMatchersContaining extends SocketLeakMatchers {}
}

expect.extend({
  async toHaveNoSocketLeaks(received: unknown, options?: SocketLeakAssertOptions) {
    if (!(received instanceof SocketLeakScope)) {
      throw invalidOption('expect(scope)', 'a scope from socketLeakScope()', received);
    }
    try {
      await received.assert(options);
    } catch (error) {
      if (!(error instanceof SocketLeakError)) throw error;
      return { pass: false, message: () => error.message };
    }
    return {
      pass: true,
      message: () => 'closewait: expected the scope to leak a socket, but none leaked',
    };
  },
});

/** The running test as hooks see it (derived: the type's exported name differs across majors). */
type Test = Parameters<Parameters<typeof beforeEach>[0]>[0]['task'];

const check = new PerTestCheck('closewait/vitest', 'CLOSEWAIT_VITEST');

/**
 * At the top of a test file, or in a setup file listed after `closewait/vitest`: options for
 * every test of that file, or `false` to check none. Inside a test or a `beforeEach` hook: for
 * that test only, merged over the file's; `false` skips its check.
 */
export function configureSocketLeakCheck(options: SocketLeakCheckOptions | false): void {
  check.configure(options);
}

async function checkFinished(task: Test, test: CheckedTest): Promise<void> {
  // A failed test has its own error to show, and skipped ones ran nothing worth checking.
  const leak = await check.finish(test, task.result?.state === 'pass');
  if (leak !== undefined) throw leak;
}

// Destructured, not `(context) =>`: in a test using `test.extend` fixtures, Vitest 4 reads a
// hook's first parameter to find the fixtures it needs, and rejects one that is not a pattern.
beforeEach(({ task, onTestFinished }) => {
  try {
    // Sockets of tests running at once cannot be told apart: their scopes would blame each other.
    if (task.concurrent === true) {
      onTestFinished(check.beginConcurrent());
      return;
    }
    const test = check.begin(task.file.filepath);
    onTestFinished(() => checkFinished(task, test));
  } catch (error) {
    check.warn(error);
  }
});
