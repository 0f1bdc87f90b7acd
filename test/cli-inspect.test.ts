import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../src/cli/help.js';
import { inspectCommand } from '../src/cli/inspect.js';
import {
  APPS,
  CLI_JS,
  childEnv,
  leakedPorts,
  spawnNode,
  spawnProcess,
} from './fixtures/apps/spawn-app.js';

const linux = process.platform === 'linux';

interface InspectJson {
  pid: number;
  command: string;
  tcpSockets: number;
  byState: Record<string, number>;
  closeWait: Array<{
    localAddress: string;
    localPort: number;
    remoteAddress: string;
    remotePort: number;
    receiveQueue: number;
    sendQueue: number;
    finRead: boolean;
    unreadBytes: number;
    peerState: string | null;
    inode: number;
    firstSeenAt?: string;
    seenForMs?: number;
  }>;
}

/** `closewait inspect <args>` to its end: exit code and output. */
async function inspect(args: string[]) {
  const cli = spawnNode([CLI_JS, 'inspect', ...args]);
  const { code } = await cli.waitForExit();
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** An app with no preload at all: closewait knows nothing of it until it looks from outside. */
async function uninstrumentedLeakyApp() {
  const app = spawnNode([APPS.esm], { env: childEnv({ APP_LIFETIME_MS: '15000' }) });
  const ports = await leakedPorts(app);
  return { app, ...ports };
}

/** Looks until the socket is listed: the kernel moves it to CLOSE_WAIT as the FIN is acked. */
async function lookUntilListed(pid: number, localPort: number, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await inspect([String(pid), '--json']);
    const json = JSON.parse(result.stdout) as InspectJson;
    if (json.closeWait.some((socket) => socket.localPort === localPort)) return { result, json };
    if (Date.now() > deadline)
      throw new Error(`port ${localPort} not in CLOSE_WAIT: ${result.stdout}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function hasPython(): boolean {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.runIf(linux)('closewait inspect <pid> (Linux, /proc)', () => {
  it('finds the CLOSE_WAIT socket of a Node process it did not instrument (--json, exit 1)', async () => {
    const { app, port, clientPort } = await uninstrumentedLeakyApp();
    const { result, json } = await lookUntilListed(app.pid, port);
    expect(result.code).toBe(1);
    expect(json).toMatchObject({ pid: app.pid, tcpSockets: 3 });
    expect(json.command).toContain('leaky-upgrade-app.mjs');
    // Its own three: the listener, the leaked server side, and its client waiting in FIN_WAIT2.
    expect(json.byState).toEqual({ LISTEN: 1, CLOSE_WAIT: 1, FIN_WAIT2: 1 });
    expect(json.closeWait).toHaveLength(1);
    expect(json.closeWait[0]).toMatchObject({
      localAddress: '127.0.0.1',
      localPort: port,
      remoteAddress: '127.0.0.1',
      remotePort: clientPort,
      receiveQueue: 0,
      sendQueue: 0,
      // Node read to the end: the process knows the peer left, and still keeps the socket.
      finRead: true,
      unreadBytes: 0,
      peerState: 'FIN_WAIT2',
    });
    // No age without --watch: the kernel has none to give.
    expect(json.closeWait[0]).not.toHaveProperty('seenForMs');
  });

  it('prints the sockets as a table', async () => {
    const { app, port, clientPort } = await uninstrumentedLeakyApp();
    await lookUntilListed(app.pid, port);
    const { code, stdout } = await inspect([String(app.pid)]);
    expect(code).toBe(1);
    expect(stdout).toContain(`pid ${app.pid} · `);
    expect(stdout).toContain(
      '1 CLOSE_WAIT socket (the peer closed, this process did not) · 3 TCP sockets',
    );
    expect(stdout).toMatch(/^LOCAL\s+REMOTE\s+RECV-Q\s+SEND-Q\s+FIN READ\s+PEER\s+INODE$/m);
    expect(stdout).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1:${port}\\s+127\\.0\\.0\\.1:${clientPort}\\s+0\\s+0\\s+yes\\s+FIN_WAIT2\\s+\\d+$`,
        'm',
      ),
    );
    expect(stdout).toContain('The kernel keeps no age for a socket');
  });

  it.runIf(hasPython())(
    'works for a process in any language: a Python server that stopped reading',
    async () => {
      const script = [
        'import socket, time',
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen()",
        "client = socket.create_connection(('127.0.0.1', server.getsockname()[1]))",
        'conn, _ = server.accept()',
        "client.sendall(b'x' * 1000); client.shutdown(socket.SHUT_WR)",
        "print('leaked', server.getsockname()[1], client.getsockname()[1], flush=True)",
        'time.sleep(15)',
      ].join('\n');
      const python = spawnProcess('python3', ['-c', script]);
      const match = await python.waitFor('stdout', /leaked (\d+) (\d+)/);
      const port = Number(match[1]);
      const { json } = await lookUntilListed(python.pid, port);
      expect(json.command).toMatch(/python3\S* -c import socket/);
      // Never read: the 1000 bytes wait in front of the FIN, which the kernel counts as one more.
      expect(json.closeWait[0]).toMatchObject({
        localPort: port,
        remotePort: Number(match[2]),
        receiveQueue: 1001,
        finRead: false,
        unreadBytes: 1000,
      });
      const { stdout } = await inspect([String(python.pid)]);
      expect(stdout).toMatch(new RegExp(`:${port}\\s+\\S+\\s+1001\\s+0\\s+no\\s+FIN_WAIT2\\s`));
      expect(stdout).toContain('FIN READ no: the process stopped reading');
    },
  );

  it('exits 0 when the process has no CLOSE_WAIT socket', async () => {
    const app = spawnNode(
      [
        '-e',
        "require('node:net').createServer().listen(0, '127.0.0.1'); setTimeout(() => {}, 15000);",
      ],
      { env: childEnv() },
    );
    // Its listener first, so there is something to count.
    const deadline = Date.now() + 3000;
    let result = await inspect([String(app.pid), '--json']);
    while ((JSON.parse(result.stdout) as InspectJson).tcpSockets === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      result = await inspect([String(app.pid), '--json']);
    }
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      tcpSockets: 1,
      byState: { LISTEN: 1 },
      closeWait: [],
    });
    const table = await inspect([String(app.pid)]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('0 CLOSE_WAIT sockets');
  });

  it('--watch: looks again, shows how long each socket has been seen, ends when the process exits', async () => {
    const { app, port } = await uninstrumentedLeakyApp();
    await lookUntilListed(app.pid, port);
    const watch = spawnNode([CLI_JS, 'inspect', String(app.pid), '--watch', '0.2', '--json']);
    await watch.waitFor('stdout', /(.*\n){3}/);
    const looks = watch
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as InspectJson);
    const first = looks[0]!.closeWait[0]!;
    const third = looks[2]!.closeWait[0]!;
    expect(third.firstSeenAt).toBe(first.firstSeenAt);
    expect(first.seenForMs).toBe(0);
    expect(third.seenForMs).toBeGreaterThanOrEqual(300);

    app.child.kill('SIGKILL');
    expect(await watch.waitForExit()).toEqual({ code: 1, signal: null });
    expect(watch.stderr()).toContain(`closewait inspect: process ${app.pid} exited`);
  });

  it('--watch table: a SEEN FOR column; Ctrl-C ends it with the exit code of what it saw', async () => {
    const { app, port } = await uninstrumentedLeakyApp();
    await lookUntilListed(app.pid, port);
    const watch = spawnNode([CLI_JS, 'inspect', '--watch', '0.2', String(app.pid)]);
    await watch.waitFor('stdout', /SEEN FOR[\s\S]*SEEN FOR/);
    expect(watch.stdout()).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port}\\s.*\\s\\d+\\.\\ds$`, 'm'));
    watch.child.kill('SIGINT');
    expect(await watch.waitForExit()).toEqual({ code: 1, signal: null });
  });

  it('escapes what the process put in its argv: no escape sequence reaches the terminal', async () => {
    const hostile = [
      '\x1b[2J\x1b[H', // clear the screen
      '\x1b]0;owned\x07', // set the window title (OSC)
      '\u009b31m', // C1 CSI, as UTF-8
      'del\x7f',
      '\u202eevil', // right-to-left override
      'tab\there',
    ];
    const app = spawnNode(['-e', 'setTimeout(() => {}, 15000)', '--', ...hostile], {
      env: childEnv(),
    });
    // spawn() returns once the child has exec'd: its argv is already in /proc.
    // Any control character but the table's own newlines.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
    const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;
    const table = await inspect([String(app.pid)]);
    expect(table.code).toBe(0);
    const heading = table.stdout.split('\n')[0]!;
    expect(heading).not.toMatch(raw);
    expect(heading).toContain(
      '\\x1b[2J\\x1b[H \\x1b]0;owned\\x07 \\x9b31m del\\x7f \\u202eevil tab here',
    );
    const json = await inspect([String(app.pid), '--json']);
    expect(json.stdout).not.toMatch(raw);
    // The data is intact for scripts: JSON escapes, it does not rewrite.
    expect((JSON.parse(json.stdout) as InspectJson).command).toContain(
      '\x1b[2J\x1b[H \x1b]0;owned\x07 \u009b31m del\x7f \u202eevil tab here',
    );
  });

  it('refuses a --watch interval Node cannot time (past a day), naming the option and the value', async () => {
    const sleeper = spawnNode(['-e', 'setTimeout(() => {}, 15000)'], { env: childEnv() });
    const cli = spawnNode([CLI_JS, 'inspect', '--watch=99999999999', String(sleeper.pid)]);
    expect(await cli.waitForExit(3000)).toEqual({ code: 2, signal: null });
    expect(cli.stderr()).toMatch(
      /^closewait inspect: option "--watch" must be seconds, from 0\.1 to 86400; received "99999999999"\n/,
    );
    expect(cli.stdout()).toBe('');
  });

  it('--watch into a pipe whose reader left (| head): ends quietly, no EPIPE stack', async () => {
    const sleeper = spawnNode(['-e', 'setTimeout(() => {}, 15000)'], { env: childEnv() });
    const watch = spawnNode([CLI_JS, 'inspect', '--watch', '0.1', String(sleeper.pid)]);
    await watch.waitFor('stdout', /0 CLOSE_WAIT sockets/);
    // As `head` does once it has its lines: the read end of the pipe is closed.
    watch.child.stdout!.destroy();
    expect(await watch.waitForExit()).toEqual({ code: 0, signal: null });
    expect(watch.stderr()).toBe('');
  });

  it('exits 2 for a process that does not exist, and for bad arguments', async () => {
    // Above any pid_max Linux allows (2^22).
    const gone = await inspect(['99999999']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('no process 99999999');
    for (const args of [[], ['abc'], ['1', '2'], ['1', '--watch', '0'], ['1', '--bogus']]) {
      expect((await inspect(args)).code).toBe(2);
    }
    const help = await inspect(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
    expect(help.stdout).toContain('The kernel keeps no age for a socket');
  });
});

describe('closewait inspect off Linux', () => {
  it('says it is unsupported and exits 2 (with --json, a JSON answer too)', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { out: (text) => out.push(text), err: (text) => err.push(text) };
    const reason =
      'the kernel check reads /proc/net/tcp, which exists on Linux only (this is darwin)';
    expect(await inspectCommand(['123', '--json'], io, () => reason)).toBe(2);
    expect(JSON.parse(out.join(''))).toEqual({ supported: false, reason });
    expect(err.join('')).toBe(`closewait inspect: unsupported here: ${reason}\n`);
  });
});
