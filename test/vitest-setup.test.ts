import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { configureSocketLeakCheck } from '../src/integrations/vitest.js';
import { closeAfterTest, HOST, listen, waitFor } from './fixtures/net.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const example = join(root, 'examples/vitest');

/** The example imports closewait/vitest by name, so it runs dist/: it must be built from src/. */
function expectFreshBuild(): void {
  for (const file of ['integrations/vitest', 'integrations/testing', 'errors']) {
    const built = join(root, 'dist', `${file}.js`);
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

/** Runs the example project's tests with the project's Vitest, in a child process. */
async function runExample(jsonFile: string): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  // This process is a Vitest worker: the child must not believe it is one too.
  for (const key of Object.keys(env)) if (key.startsWith('VITEST')) delete env[key];
  const child = spawn(
    process.execPath,
    [
      join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--root',
      example,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${jsonFile}`,
    ],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const timer = setTimeout(() => child.kill(), 60_000);
  const [code] = (await waitFor(child, 'close', 61_000)) as [number | null];
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
      const { code, output } = await runExample(jsonFile);
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
      expect(output).toContain(`sockets.test.ts:${createdAt}:`);
      expect(output).toMatch(/Tests\s+1 failed \| 1 passed \(2\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * This suite runs under the setup file (vitest.config.ts): the tests below leak on purpose and
 * check what the setup file makes of it. `it.fails` passes only when the test fails.
 */
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

  it.fails('fails a test that leaves a socket half-closed', async () => {
    configureSocketLeakCheck({ timeoutMs: 100 });
    onTestFailed(({ task }) => {
      errorsOfLeakyTest = task.result?.errors ?? [];
    });
    await leakHalfClosedClient();
  });

  it('... with a SocketLeakError naming the test file and line', () => {
    expect(errorsOfLeakyTest).toHaveLength(1);
    const error = errorsOfLeakyTest[0] as { name: string; message: string };
    expect(error.name).toBe('SocketLeakError');
    expect(error.message).toContain('half-closed · client socket');
    expect(error.message).toMatch(/created at test\/vitest-setup\.test\.ts:\d+:\d+/);
  });

  let errorsOfFailingTest: unknown[] = [];

  it.fails('does not add a leak error to a test that failed anyway', async () => {
    configureSocketLeakCheck({ timeoutMs: 100 });
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

  it('lets one test opt out with configureSocketLeakCheck(false)', async () => {
    configureSocketLeakCheck(false);
    await leakHalfClosedClient();
  });

  it('takes per-test ignore options', async () => {
    const client = await leakHalfClosedClient();
    configureSocketLeakCheck({ ignore: { ports: [client.remotePort!] } });
  });

  it.fails("takes per-test mode 'open'", async () => {
    configureSocketLeakCheck({ mode: 'open', timeoutMs: 100 });
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
