/**
 * Jest test environment: `testEnvironment: 'closewait/jest'` checks every test for socket leaks
 * and fails the test that leaked, naming the line; the run goes on.
 *
 * An environment, not a setup file: a `setupFilesAfterEnv` hook runs before the test file's own
 * `afterEach` hooks (jest-circus runs a block's hooks in the order they were added), so a test
 * that closes its socket there would be blamed. jest-circus hands every event to the
 * environment and awaits it; `test_done` comes after all of the test's hooks, and an error added
 * to `test.errors` then fails the test (jest-circus 29 and 30, `_runTest`).
 *
 * The environment also runs outside the test files' vm contexts, loaded once per worker: one
 * monitor serves every test file, none of it is touched by a test's fake timers, and each test
 * file's context gets the monitor in its `Symbol.for('closewait.testing')` slot, so that
 * `closewait/testing` imported by a test shares it.
 *
 * It wraps another environment, `node` unless `testEnvironmentOptions.closewait.base` names one
 * ('jsdom', or a module path), resolved from the project's rootDir like Jest resolves its own.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { invalidOption } from '../options.js';
import { type CheckedTest, PerTestCheck } from './per-test-check.js';
import { SHARED_SLOT, type SharedTestingState, sharedTestingState } from './shared-monitor.js';
import type { SocketLeakAssertOptions, SocketLeakCheckOptions } from './testing.js';

export type { SocketLeakAssertOptions, SocketLeakCheckOptions };

/** `testEnvironmentOptions.closewait`: what JSON config can carry. */
export interface ClosewaitJestOptions extends Pick<SocketLeakAssertOptions, 'mode' | 'timeoutMs'> {
  /** The environment to wrap: 'node' (default), 'jsdom', or a module name or path. */
  base?: string;
  /** Like `ignore` of the assertions, without `match` (config is JSON). */
  ignore?: { sites?: string[]; ports?: number[] };
  /** false: check no test (turn it back on per test with `configureSocketLeakCheck`). */
  enabled?: boolean;
}

/** The part of a Jest environment this module relies on (same in Jest 29 and 30). */
interface JestEnvironmentLike {
  global: object;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  handleTestEvent?(event: CircusEvent, state: unknown): void | Promise<void>;
}

type JestEnvironmentClass = new (config: JestConfig, context: JestContext) => JestEnvironmentLike;

interface JestConfig {
  projectConfig?: { rootDir?: string; testEnvironmentOptions?: Record<string, unknown> };
}

interface JestContext {
  testPath?: string;
}

interface CircusTest {
  errors: unknown[];
  concurrent?: boolean;
  mode?: string;
}

interface CircusEvent {
  name: string;
  test?: CircusTest;
}

/** The slot's state in a test file's context: the run's monitor, and a way to reach the check. */
interface JestSlotState extends SharedTestingState {
  configureTest?: (options: SocketLeakCheckOptions | false) => void;
}

const NAME = 'closewait/jest';
const KNOWN_OPTIONS = new Set(['base', 'mode', 'timeoutMs', 'ignore', 'enabled']);

function closewaitOptions(config: JestConfig): ClosewaitJestOptions {
  const given = config.projectConfig?.testEnvironmentOptions?.closewait;
  if (given === undefined) return {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw invalidOption('testEnvironmentOptions.closewait', 'an object', given);
  }
  for (const [key, value] of Object.entries(given)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw invalidOption(`testEnvironmentOptions.closewait.${key}`, 'a known option', value);
    }
  }
  const options = given as ClosewaitJestOptions;
  if (options.base !== undefined && (typeof options.base !== 'string' || options.base === '')) {
    throw invalidOption(
      'testEnvironmentOptions.closewait.base',
      'an environment name',
      options.base,
    );
  }
  if (options.enabled !== undefined && typeof options.enabled !== 'boolean') {
    throw invalidOption('testEnvironmentOptions.closewait.enabled', 'a boolean', options.enabled);
  }
  return options;
}

/** Like Jest: `jest-environment-<name>` first, then `<name>`, from the project's rootDir. */
function loadBase(config: JestConfig, base: string): JestEnvironmentClass {
  const rootDir = config.projectConfig?.rootDir ?? process.cwd();
  const requireFromRoot = createRequire(join(rootDir, 'package.json'));
  const tried: string[] = [];
  for (const name of [`jest-environment-${base}`, base]) {
    let resolved: string;
    try {
      resolved = requireFromRoot.resolve(name);
    } catch {
      tried.push(name);
      continue;
    }
    const loaded = requireFromRoot(resolved) as Record<string, unknown>;
    const found = loaded.TestEnvironment ?? loaded.default ?? loaded;
    if (typeof found === 'function') return found as JestEnvironmentClass;
  }
  throw invalidOption(
    'testEnvironmentOptions.closewait.base',
    `an environment installed where ${rootDir} resolves it (tried ${tried.join(', ')})`,
    base,
  );
}

function checkedEnvironment(Base: JestEnvironmentClass): JestEnvironmentClass {
  return class ClosewaitCheckedEnvironment extends Base {
    readonly #check = new PerTestCheck(NAME, 'CLOSEWAIT_JEST');
    readonly #testFile: string | undefined;
    readonly #tests = new Map<CircusTest, CheckedTest>();

    constructor(config: JestConfig, context: JestContext) {
      super(config, context);
      this.#testFile = context?.testPath;
      const { base: _base, enabled, ...assertOptions } = closewaitOptions(config);
      this.#check.configure(enabled === false ? false : assertOptions);
    }

    override async setup(): Promise<void> {
      await super.setup();
      // One monitor per worker, from this realm; a fresh state object per test file, because
      // Jest 30 empties what a test file's global held once the file is done.
      const { monitor } = sharedTestingState();
      const state: JestSlotState = {
        version: 1,
        monitor,
        configureTest: (options) => this.#check.configure(options),
      };
      Object.defineProperty(this.global, SHARED_SLOT, {
        value: state,
        configurable: true,
        writable: true,
      });
    }

    override async handleTestEvent(event: CircusEvent, state: unknown): Promise<void> {
      await super.handleTestEvent?.(event, state);
      const test = event.test;
      if (test === undefined) return;
      try {
        if (event.name === 'test_start') {
          // A concurrent test's function starts before its turn: its sockets cannot be told
          // apart from its neighbours'.
          if (test.concurrent !== true) this.#tests.set(test, this.#check.begin(this.#testFile));
        } else if (event.name === 'test_done') {
          const checked = this.#tests.get(test);
          if (checked === undefined) return;
          this.#tests.delete(test);
          const leak = await this.#check.finish(checked, test.errors.length === 0);
          if (leak !== undefined) test.errors.push(leak);
        } else if (event.name === 'test_skip' || event.name === 'test_todo') {
          this.#tests.delete(test);
        }
      } catch (error) {
        this.#check.warn(error);
      }
    }
  };
}

const checkedByBase = new WeakMap<JestEnvironmentClass, JestEnvironmentClass>();

/**
 * The environment Jest instantiates. It builds, once per base environment, a subclass of that
 * base with the check added, and returns an instance of it.
 */
const ClosewaitEnvironment = function ClosewaitEnvironment(
  config: JestConfig,
  context: JestContext,
): JestEnvironmentLike {
  const Base = loadBase(config, closewaitOptions(config).base ?? 'node');
  let Checked = checkedByBase.get(Base);
  if (Checked === undefined) {
    Checked = checkedEnvironment(Base);
    checkedByBase.set(Base, Checked);
  }
  return new Checked(config, context);
} as unknown as JestEnvironmentClass;

/**
 * In a test file (or a `beforeEach`) run by the closewait/jest environment: inside a test, options
 * for that test only (`false` skips its check); at the top of a file, for the tests that follow.
 */
export function configureSocketLeakCheck(options: SocketLeakCheckOptions | false): void {
  const state = (globalThis as { [SHARED_SLOT]?: JestSlotState })[SHARED_SLOT];
  if (typeof state?.configureTest !== 'function') {
    throw new Error(
      `${NAME}: configureSocketLeakCheck() works in tests run with testEnvironment: '${NAME}'`,
    );
  }
  state.configureTest(options);
}

export { ClosewaitEnvironment as TestEnvironment };
export default ClosewaitEnvironment;
