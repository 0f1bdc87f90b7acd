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

/** The running test as hooks see it (derived: the type's exported name differs across majors). */
type Test = Parameters<Parameters<typeof beforeEach>[0]>[0]['task'];

/** Options for every test of the file (or of the run, from a setup file); false turns it off. */
let fileOptions: SocketLeakCheckOptions | false = {};

interface CheckedTest {
  scope: SocketLeakScope;
  /** Set by `configureSocketLeakCheck()` inside the test: merged over the file's options. */
  options: SocketLeakAssertOptions | false | undefined;
}

/** The test running now. Concurrent tests are never checked, so there is at most one. */
let current: CheckedTest | undefined;
/** Concurrent tests running now: options they set must not become the file's. */
let concurrentRunning = 0;

/**
 * At the top of a test file, or in a setup file listed after `closewait/vitest`: options for
 * every test of that file, or `false` to check none. Inside a test or a `beforeEach` hook: for
 * that test only, merged over the file's; `false` skips its check.
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
  else if (concurrentRunning === 0) fileOptions = options;
}

function warn(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.emitWarning(`closewait/vitest: the socket leak check failed to run: ${message}`, {
    code: 'CLOSEWAIT_VITEST',
  });
}

async function checkFinished(task: Test, test: CheckedTest): Promise<void> {
  if (current === test) current = undefined;
  const { options } = test;
  // A failed test has its own error to show, and skipped ones ran nothing worth checking.
  if (options === false || task.result?.state !== 'pass') return;
  if (options === undefined && fileOptions === false) return;
  try {
    const { monitor: _monitor, testFile: _testFile, ...fromFile } = fileOptions || {};
    await test.scope.assert({ ...fromFile, ...options });
  } catch (error) {
    if (error instanceof SocketLeakError) throw error;
    warn(error);
  }
}

// Destructured, not `(context) =>`: in a test using `test.extend` fixtures, Vitest 4 reads a
// hook's first parameter to find the fixtures it needs, and rejects one that is not a pattern.
beforeEach(({ task, onTestFinished }) => {
  try {
    current = undefined;
    // Sockets of tests running at once cannot be told apart: their scopes would blame each other.
    if (task.concurrent === true) {
      concurrentRunning++;
      onTestFinished(() => {
        concurrentRunning--;
      });
      return;
    }
    const monitor = fileOptions === false ? undefined : fileOptions.monitor;
    const testFile = task.file.filepath;
    const test: CheckedTest = { scope: socketLeakScope({ monitor, testFile }), options: undefined };
    current = test;
    onTestFinished(() => checkFinished(task, test));
  } catch (error) {
    warn(error);
  }
});
