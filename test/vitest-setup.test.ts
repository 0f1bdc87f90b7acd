import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeEach, describe, expect, it, onTestFailed, onTestFinished } from 'vitest';
import { configureSocketLeakCheck } from '../src/integrations/vitest.js';
import { closeAfterTest, HOST, listen, waitFor } from './fixtures/net.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const example = join(root, 'examples/vitest');

/** Child processes import closewait by name, so they run dist/: it must be built from src/. */
function expectFreshBuild(): void {
  for (const file of ['integrations/vitest', 'integrations/testing', 'errors']) {
    const built = join(root, 'dist', 'esm', `${file}.js`);
    let builtAt: number;
    try {
      builtAt = statSync(built).mtimeMs;
    } catch {
      throw new Error(`${built} is missing: run \`npm run build\` first`);
    }
    if (statSync(join(root, 'src', `${file}.ts`)).mtimeMs > builtAt) {
      throw new Error(`${built} is older than its source: run \`npm run build\` first`);
    }
  }
}

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs Node with `args` from the repository's root, in a child process, and collects output. */
async function runNode(args: string[], timeoutMs: number): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  // This process is a Vitest worker: a child Vitest must not believe it is one too.
  for (const key of Object.keys(env)) if (key.startsWith('VITEST')) delete env[key];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const timer = setTimeout(() => child.kill(), timeoutMs);
  const [code] = (await waitFor(child, 'close', timeoutMs + 1000)) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

interface JsonReport {
  testResults: Array<{
    name: string;
    assertionResults: Array<{ title: string; status: string; failureMessages: string[] }>;
  }>;
}

describe('examples/vitest, run with setupFiles: ["closewait/vitest"]', () => {
  it('fails exactly the leaky test, with the line that created the socket', async () => {
    expectFreshBuild();
    const source = readFileSync(join(example, 'sockets.test.ts'), 'utf8').split('\n');
    const createdAt = source.findIndex((line) => line.includes('allowHalfOpen: true })')) + 1;
    expect(createdAt).toBeGreaterThan(0);

    const dir = mkdtempSync(join(tmpdir(), 'closewait-example-'));
    try {
      const jsonFile = join(dir, 'report.json');
      const { code, output } = await runNode(
        [
          join(root, 'node_modules/vitest/vitest.mjs'),
          'run',
          '--root',
          example,
          '--reporter=default',
          '--reporter=json',
          `--outputFile.json=${jsonFile}`,
        ],
        15_000,
      );
      expect(code, output).toBe(1);
      const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as JsonReport;
      expect(report.testResults).toHaveLength(1);
      const results = report.testResults[0]!.assertionResults;
      expect(results.map((result) => [result.title, result.status])).toEqual([
        ['leaky: reads the greeting but never closes its side', 'failed'],
        ['clean: closes its side when the server hangs up', 'passed'],
      ]);
      const failure = results[0]!.failureMessages.join('\n');
      expect(failure).toContain('SocketLeakError');
      expect(failure).toContain('half-closed · client socket');
      expect(failure).toContain(`sockets.test.ts:${createdAt}:`);
      // What a developer sees in the terminal: the message, the stack and the code frame.
      expect(output).toContain('FAIL  sockets.test.ts > leaky');
      expect(output).toContain(`created at examples/vitest/sockets.test.ts:${createdAt}:`);
      expect(output).toContain(`❯ sockets.test.ts:${createdAt}:`); // the code frame
      expect(output).toMatch(/Tests\s+1 failed \| 1 passed \(2\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The README's node:test snippet, verbatim, with one leaky and one clean test. */
const NODE_TEST_FILE = `import { once } from 'node:events';
import net from 'node:net';
import { after, beforeEach, test } from 'node:test';
import { socketLeakScope } from 'closewait/testing';

// t.after() hooks run once every afterEach hook is done: sockets closed there are not blamed.
beforeEach((t) => {
  const scope = socketLeakScope();
  t.after(() => scope.assert());
});

const server = net.createServer((socket) => socket.end('bye')).listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();
const clients = [];
after(() => {
  for (const client of clients) client.destroy();
  server.close();
});

test('leaky', async () => {
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  clients.push(client);
  client.resume();
  await once(client, 'end');
});

test('clean', async () => {
  const client = net.connect({ port, host: '127.0.0.1' });
  client.resume();
  await once(client, 'close');
});
`;

describe('node:test, through the runner-agnostic API', () => {
  it('fails exactly the test that leaked, naming its line', async () => {
    expectFreshBuild();
    // Inside the package, so that 'closewait/testing' resolves to this package's dist/.
    const dir = mkdtempSync(join(root, 'test', '.node-test-'));
    try {
      const file = join(dir, 'sockets.mjs');
      writeFileSync(file, NODE_TEST_FILE);
      const { code, output } = await runNode(['--test', '--test-reporter=spec', file], 15_000);
      expect(code, output).toBe(1);
      expect(output).toMatch(/✖ leaky/);
      expect(output).toMatch(/✔ clean/);
      expect(output).toMatch(/ℹ pass 1\s+ℹ fail 1/);
      expect(output).toContain('half-closed · client socket');
      const line = NODE_TEST_FILE.split('\n').findIndex((text) => text.includes('allowHalfOpen'));
      expect(output).toContain(`sockets.mjs:${line + 1}:`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * This suite runs under the setup file (vitest.config.ts): the tests below leak on purpose and
 * check what the setup file makes of it. `it.fails` passes only when the test fails.
 */
// File level: every test below fails fast; per-test options are merged over this.
configureSocketLeakCheck({ timeoutMs: 100 });

describe('the setup file, in this suite', () => {
  /** Leaked on purpose, closed only once the whole file is done. */
  const leftOpen: Socket[] = [];
  const servers: net.Server[] = [];
  afterAll(() => {
    for (const socket of leftOpen) socket.destroy();
    for (const server of servers) server.close();
  });

  async function leakHalfClosedClient(): Promise<Socket> {
    const port = await listen(net.createServer((socket) => socket.end()));
    const client = net.connect({ port, host: HOST, allowHalfOpen: true });
    leftOpen.push(client);
    client.on('error', () => {});
    client.resume();
    await waitFor(client, 'end');
    return client;
  }

  let errorsOfLeakyTest: unknown[] = [];
  let checkMs = 0;

  it.fails('fails a test that leaves a socket half-closed', async () => {
    onTestFailed(({ task }) => {
      errorsOfLeakyTest = task.result?.errors ?? [];
      checkMs = performance.now() - bodyDone;
    });
    await leakHalfClosedClient();
    const bodyDone = performance.now();
  });

  it('... with a SocketLeakError naming the test file and line', () => {
    // The file's timeoutMs (100), not the default 500.
    expect(checkMs).toBeGreaterThanOrEqual(95);
    expect(checkMs).toBeLessThan(450);
    expect(errorsOfLeakyTest).toHaveLength(1);
    const error = errorsOfLeakyTest[0] as { name: string; message: string };
    expect(error.name).toBe('SocketLeakError');
    expect(error.message).toContain('half-closed · client socket');
    expect(error.message).toMatch(/created at test\/vitest-setup\.test\.ts:\d+:\d+/);
  });

  let errorsOfFailingTest: unknown[] = [];

  it.fails('does not add a leak error to a test that failed anyway', async () => {
    onTestFailed(({ task }) => {
      errorsOfFailingTest = task.result?.errors ?? [];
    });
    await leakHalfClosedClient();
    expect('the test itself').toBe('failing');
  });

  it('... which keeps its own error only', () => {
    expect(errorsOfFailingTest).toHaveLength(1);
    expect((errorsOfFailingTest[0] as { name: string }).name).toBe('AssertionError');
  });

  it('is not fooled by sockets the fixtures close in afterEach (they run before the check)', async () => {
    // No opt-out: this passes only because test/fixtures/net.ts destroys the socket first.
    const port = await listen(net.createServer((socket) => socket.end()));
    const client = closeAfterTest(net.connect({ port, host: HOST, allowHalfOpen: true }));
    client.resume();
    await waitFor(client, 'end');
  });

  it('runs after onTestFinished hooks the test registers', async () => {
    const client = await leakHalfClosedClient();
    onTestFinished(() => {
      client.destroy();
    });
  });

  describe('with a beforeEach that returns a cleanup function', () => {
    let client: Socket | undefined;
    beforeEach(() => () => client?.destroy());

    it('runs after that cleanup function', async () => {
      client = await leakHalfClosedClient();
    });
  });

  const withClient = it.extend<{ halfClosedClient: Socket }>({
    // Vitest reads which fixtures this one needs from the pattern: it must destructure.
    halfClosedClient: async ({ task: _task }, use) => {
      const client = await leakHalfClosedClient();
      await use(client);
      client.destroy(); // teardown: runs after afterEach hooks, before the check
    },
  });

  withClient('runs after test.extend fixtures are torn down', async ({ halfClosedClient }) => {
    expect(halfClosedClient.readableEnded).toBe(true);
  });

  it('lets one test opt out with configureSocketLeakCheck(false)', async () => {
    configureSocketLeakCheck(false);
    await leakHalfClosedClient();
  });

  it('takes per-test ignore options', async () => {
    const client = await leakHalfClosedClient();
    configureSocketLeakCheck({ ignore: { ports: [client.remotePort!] } });
  });

  it.fails("takes per-test mode 'open'", async () => {
    configureSocketLeakCheck({ mode: 'open' });
    // Not the fixtures' listen(): its afterEach would close the connection before the check.
    const server = net.createServer((socket) => {
      leftOpen.push(socket);
      socket.resume();
    });
    servers.push(server.listen(0, HOST));
    await waitFor(server, 'listening');
    const client = net.connect({ port: (server.address() as AddressInfo).port, host: HOST });
    leftOpen.push(client);
    await waitFor(client, 'connect');
  });

  it.concurrent('does not check concurrent tests (their sockets cannot be told apart)', async () => {
    // Not checked, so not an opt-out either: this must not become the file's option.
    configureSocketLeakCheck(false);
    await leakHalfClosedClient();
  });

  it.fails('... and options set in one do not reach the tests after it', async () => {
    await leakHalfClosedClient();
  });

  it('refuses, inside a test, options that shape the scope made before it', () => {
    expect(() => configureSocketLeakCheck({ testFile: 'other.test.ts' })).toThrow(
      /option "testFile" must be set at file level, not inside a test/,
    );
    expect(() => configureSocketLeakCheck({ mode: 'opened' as 'open' })).toThrow(
      /option "mode" must be 'close-wait' or 'open'; received "opened"/,
    );
  });
});
