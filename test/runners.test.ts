/**
 * Real test runners on the sample projects under examples/runners/: Jest 29 and 30 (CommonJS,
 * ESM, ts-jest), Mocha, node --test and Vitest 2, 3 and 4, each with closewait packed and
 * installed as a user would get it (scripts/install-examples.mjs). In every one: the leaky test
 * fails naming its line, a test that closes its socket in its own afterEach passes, a clean test
 * passes, the run goes on after the failure, and a leak under fake timers still fails.
 */
import { describe, expect, it } from 'vitest';
import {
  exampleDir,
  jestLikeTests,
  lineOf,
  mochaTests,
  type RunnerRun,
  runExample,
  type TestOutcome,
  tapTests,
} from './fixtures/runner-examples.js';

interface RunnerCase {
  name: string;
  example: string;
  args: string[];
  readTests: (output: string, report: string | undefined) => Map<string, TestOutcome>;
  nodeOptions?: string;
  /** The two test files, relative to the example. */
  sockets: string;
  fakeTimers: string;
  /** Whether the fake-timers file also checks that every file shares one monitor. */
  oneMonitor: boolean;
}

const jest = (example: string, projects: string[], dir: string, ext: string): RunnerCase => ({
  name: `${example} ${projects[0]}`,
  example,
  args: [
    'node_modules/jest/bin/jest.js',
    '--selectProjects',
    ...projects,
    // One process: the one-monitor test must see the files that ran before it.
    '--runInBand',
    '--json',
    '--outputFile={report}',
  ],
  readTests: jestLikeTests,
  ...(ext === 'mjs' ? { nodeOptions: '--experimental-vm-modules' } : {}),
  sockets: `${dir}/sockets.test.${ext}`,
  fakeTimers: `${dir}/fake-timers.test.${ext}`,
  oneMonitor: true,
});

const vitest = (example: string): RunnerCase => ({
  name: example,
  example,
  args: ['node_modules/vitest/vitest.mjs', 'run', '--reporter=json', '--outputFile={report}'],
  readTests: jestLikeTests,
  sockets: 'sockets.test.js',
  fakeTimers: 'fake-timers.test.js',
  oneMonitor: false,
});

const CASES: RunnerCase[] = [
  jest('jest29', ['cjs', 'cjs-fake-timers'], 'cjs', 'js'),
  jest('jest29', ['esm', 'esm-fake-timers'], 'esm', 'mjs'),
  jest('jest30', ['cjs', 'cjs-fake-timers'], 'cjs', 'js'),
  jest('jest30', ['esm', 'esm-fake-timers'], 'esm', 'mjs'),
  {
    name: 'mocha',
    example: 'mocha',
    args: ['node_modules/mocha/bin/mocha.js', '--require', 'closewait/mocha', '--reporter', 'json'],
    readTests: mochaTests,
    sockets: 'test/sockets.test.js',
    fakeTimers: 'test/fake-timers.test.js',
    oneMonitor: true,
  },
  {
    name: 'node --test',
    example: 'node-test',
    args: ['--test', '--test-reporter=tap'],
    readTests: tapTests,
    sockets: 'test/sockets.test.mjs',
    fakeTimers: 'test/fake-timers.test.mjs',
    oneMonitor: true,
  },
  vitest('vitest2'),
  vitest('vitest3'),
  vitest('vitest4'),
];

/** At most this many runners at once: each is a Node process or two, on two CI cores. */
const AT_ONCE = 3;
let running = 0;
const waiting: Array<() => void> = [];

async function limited<T>(task: () => Promise<T>): Promise<T> {
  while (running >= AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await task();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function outcome(run: RunnerRun, title: string): TestOutcome {
  const found = run.tests.get(title);
  if (found === undefined) {
    throw new Error(`no result for ${JSON.stringify(title)}:\n${run.output.slice(-4000)}`);
  }
  return found;
}

const LEAK_MESSAGE = 'closewait: 1 socket left half-closed (CLOSE_WAIT)';
const CONNECT_LINE = 'allowHalfOpen: true });';

describe.concurrent('a leaky test fails, naming its line; the rest of the run is untouched', () => {
  for (const runner of CASES) {
    it(runner.name, { timeout: 120_000 }, async () => {
      const dir = exampleDir(runner.example);
      const run = await limited(() =>
        runExample(runner.example, runner.args, runner.readTests, {
          ...(runner.nodeOptions === undefined ? {} : { nodeOptions: runner.nodeOptions }),
        }),
      );
      const leaky = outcome(run, 'leaky: never closes its side');
      expect(leaky.status).toBe('failed');
      expect(leaky.message).toContain(LEAK_MESSAGE);
      expect(leaky.message).toContain(lineOf(dir, runner.sockets, CONNECT_LINE));

      expect(outcome(run, 'cleans up after itself').status).toBe('passed');
      expect(outcome(run, 'clean: closes when the server hangs up').status).toBe('passed');
      expect(outcome(run, 'still runs after a failure').status).toBe('passed');

      const fake = outcome(run, 'leaky under fake timers');
      expect(fake.status).toBe('failed');
      expect(fake.message).toContain(LEAK_MESSAGE);
      expect(fake.message).toContain(lineOf(dir, runner.fakeTimers, CONNECT_LINE));
      if (runner.oneMonitor) {
        expect(outcome(run, 'shares one monitor with the other test files').status).toBe('passed');
      }
      expect(run.code).not.toBe(0);
    });
  }

  it('jest30 with ts-jest', { timeout: 120_000 }, async () => {
    const dir = exampleDir('jest30');
    const run = await limited(() =>
      runExample(
        'jest30',
        [
          'node_modules/jest/bin/jest.js',
          '--selectProjects',
          'ts-jest',
          '--json',
          '--outputFile={report}',
        ],
        jestLikeTests,
      ),
    );
    const leaky = outcome(run, 'leaky: never closes its side');
    expect(leaky.status).toBe('failed');
    expect(leaky.message).toContain(lineOf(dir, 'ts/sockets.test.ts', CONNECT_LINE));
    expect(outcome(run, 'cleans up after itself').status).toBe('passed');
    expect(outcome(run, 'clean: closes when the server hangs up').status).toBe('passed');
    expect(outcome(run, 'still runs after a failure').status).toBe('passed');
    expect(run.code).not.toBe(0);
  });
});
