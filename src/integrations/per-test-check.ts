/**
 * The per-test leak check every runner integration shares (vitest, jest, mocha, node-test):
 * a scope opened when a test starts, asserted once the test and all of its own hooks are done,
 * with options for the whole run and overrides for one test. Each integration only decides
 * when a test starts and ends, and how a failure reaches its runner.
 */
import { invalidOption } from '../options.js';
import {
  type SocketLeakAssertOptions,
  type SocketLeakCheckOptions,
  SocketLeakError,
  type SocketLeakScope,
  socketLeakScope,
} from './testing.js';

interface CheckedTest {
  scope: SocketLeakScope;
  /** Set by `configure()` inside the test: merged over the run's options. */
  options: SocketLeakAssertOptions | false | undefined;
}

export type { CheckedTest };

export class PerTestCheck {
  readonly #name: string;
  readonly #warningCode: string;
  /** Options for every test (a setup file or the top of a test file); false checks none. */
  #runOptions: SocketLeakCheckOptions | false = {};
  /** The test running now; tests that run at once are never checked, so there is one. */
  #current: CheckedTest | undefined;
  /** Tests running at once now: options they set must not become the run's. */
  #concurrentRunning = 0;

  /** `name` and `warningCode` say which integration warns: 'closewait/vitest', 'CLOSEWAIT_VITEST'. */
  constructor(name: string, warningCode: string) {
    this.#name = name;
    this.#warningCode = warningCode;
  }

  /**
   * Outside a test: options for every test from then on, or `false` to check none. Inside a
   * test or its `beforeEach`: for that test only, merged over the run's; `false` skips it.
   */
  configure(options: SocketLeakCheckOptions | false): void {
    if (options !== false) {
      if (this.#current !== undefined && options !== null && typeof options === 'object') {
        // The test's scope (its monitor, its test file) was made before the test started.
        for (const key of ['monitor', 'testFile'] as const) {
          if (options[key] !== undefined) {
            throw invalidOption(key, 'set at file level, not inside a test', options[key]);
          }
        }
      }
      // Validates now, so that a bad option fails where it was written.
      socketLeakScope(options);
    }
    if (this.#current !== undefined) this.#current.options = options;
    else if (this.#concurrentRunning === 0) this.#runOptions = options;
  }

  /** A test starts (before its `beforeEach` hooks): its scope opens. */
  begin(testFile: string | undefined): CheckedTest {
    this.#current = undefined;
    const monitor = this.#runOptions === false ? undefined : this.#runOptions.monitor;
    const test: CheckedTest = {
      scope: socketLeakScope({ monitor, ...(testFile === undefined ? {} : { testFile }) }),
      options: undefined,
    };
    this.#current = test;
    return test;
  }

  /** Sockets of tests running at once cannot be told apart: such tests are not checked. */
  beginConcurrent(): () => void {
    this.#current = undefined;
    this.#concurrentRunning++;
    return () => {
      this.#concurrentRunning--;
    };
  }

  /**
   * The test and all of its hooks are done. Resolves to the leak error to fail it with, or
   * undefined. A test that failed already has its own error to show: pass `passed: false`.
   */
  async finish(test: CheckedTest, passed: boolean): Promise<SocketLeakError | undefined> {
    if (this.#current === test) this.#current = undefined;
    const { options } = test;
    if (options === false || !passed) return undefined;
    if (options === undefined && this.#runOptions === false) return undefined;
    try {
      const { monitor: _monitor, testFile: _testFile, ...fromRun } = this.#runOptions || {};
      await test.scope.assert({ ...fromRun, ...options });
    } catch (error) {
      if (error instanceof SocketLeakError) return error;
      this.warn(error);
    }
    return undefined;
  }

  /** The check could not run: said once per occurrence, never thrown into the test run. */
  warn(error: unknown): void {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    try {
      process.emitWarning(`${this.#name}: the socket leak check failed to run: ${message}`, {
        code: this.#warningCode,
      });
    } catch {
      // No process to warn on: nothing else to do.
    }
  }
}
