/**
 * Vitest setup file: `setupFiles: ['closewait/vitest']` checks every test for socket leaks and
 * fails the test that leaked. Also adds `await expect(scope).toHaveNoSocketLeaks()`.
 *
 * The check runs in an `onTestFinished` hook registered from `beforeEach`: Vitest calls those
 * after every `afterEach` hook (whatever `sequence.hooks` says), after `beforeEach` cleanup
 * functions and after `test.extend` fixture teardown (vitest 4.1, runner `runTest`), so a test
 * that closes its sockets in any of those is not blamed.
 */
import { beforeEach, expect, type TestContext } from 'vitest';
import { invalidOption } from '../options.js';
import {
  type SocketLeakAssertOptions,
  type SocketLeakCheckOptions,
  SocketLeakError,
  SocketLeakScope,
  socketLeakScope,
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

/** Options for every test of the file (or of the run, from a setup file); false turns it off. */
let fileOptions: SocketLeakCheckOptions | false = {};

interface CheckedTest {
  scope: SocketLeakScope;
  /** Set by `configureSocketLeakCheck()` inside the test; wins over the file's options. */
  options: SocketLeakAssertOptions | false | undefined;
}

/** The test running now. Concurrent tests are never checked, so there is at most one. */
let current: CheckedTest | undefined;

/**
 * Inside a test or a `beforeEach` hook: options (or `false` to skip the check) for this test
 * only. At the top of a test file or in a setup file listed after `closewait/vitest`: for every
 * test that follows in that file.
 */
export function configureSocketLeakCheck(options: SocketLeakCheckOptions | false): void {
  if (options !== false) {
    if (current !== undefined && options !== null && typeof options === 'object') {
      // The test's scope (its monitor, its test file) was made before the test started.
      for (const key of ['monitor', 'testFile'] as const) {
        if (options[key] !== undefined) {
          throw invalidOption(key, 'set at file level, not inside a test', options[key]);
        }
      }
    }
    // Validates now, so a bad option fails where it was written.
    socketLeakScope(options);
  }
  if (current !== undefined) current.options = options;
  else fileOptions = options;
}

function warn(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.emitWarning(`closewait/vitest: the socket leak check failed to run: ${message}`, {
    code: 'CLOSEWAIT_VITEST',
  });
}

async function checkFinished(context: TestContext, test: CheckedTest): Promise<void> {
  if (current === test) current = undefined;
  const options: SocketLeakCheckOptions | false = test.options ?? fileOptions;
  // A failed test has its own error to show, and skipped ones ran nothing worth checking.
  if (options === false || context.task.result?.state !== 'pass') return;
  try {
    const { monitor: _monitor, testFile: _testFile, ...assertOptions } = options;
    await test.scope.assert(assertOptions);
  } catch (error) {
    if (error instanceof SocketLeakError) throw error;
    warn(error);
  }
}

beforeEach((context) => {
  try {
    current = undefined;
    // Sockets of tests running at once cannot be told apart: their scopes would blame each other.
    if (context.task.concurrent === true) return;
    const monitor = fileOptions === false ? undefined : fileOptions.monitor;
    const testFile = context.task.file.filepath;
    const test: CheckedTest = { scope: socketLeakScope({ monitor, testFile }), options: undefined };
    current = test;
    context.onTestFinished(() => checkFinished(context, test));
  } catch (error) {
    warn(error);
  }
});
