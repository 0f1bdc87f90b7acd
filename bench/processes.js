/**
 * Child processes for the benchmark: every server variant and every load run is its own
 * process, fresh per round, so one variant's JIT state, heap or leftover sockets never reach
 * the next. Nothing is pinned to a core: on a 2-core machine the server and the load each get
 * one when the machine is otherwise idle.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

/** NODE_ENV unset: the default stack mode depends on it (sampling unless it is 'test'). */
function childEnv() {
  const env = { ...process.env };
  delete env.NODE_ENV;
  return env;
}

/** Reads JSON lines from a child's stdout, one object per line. */
function jsonLines(child) {
  const lines = [];
  const waiters = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text) => {
    buffered += text;
    let newline = buffered.indexOf('\n');
    while (newline !== -1) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (!line.startsWith('{')) continue;
      const value = JSON.parse(line);
      const waiter = waiters.shift();
      if (waiter) waiter(value);
      else lines.push(value);
    }
  });
  return () =>
    lines.length > 0 ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r));
}

function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Starts `node <script> ...args` and returns a handle to read its JSON lines and stop it.
 * `nodeArgs` go before the script (e.g. --expose-gc).
 */
export function startChild(script, args = [], nodeArgs = [], { raiseFdLimit = false } = {}) {
  const argv = [...nodeArgs, here(script), ...args.map(String)];
  // 10,000 sockets need more descriptors than the usual soft limit (1024): raise it to the hard
  // limit for this child only, the way `ulimit -n` would in a shell.
  const child = raiseFdLimit
    ? spawn(
        'bash',
        ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...argv],
        {
          env: childEnv(),
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      )
    : spawn(process.execPath, argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  const next = jsonLines(child);
  const exited = once(child, 'exit');
  return {
    child,
    next: (ms = 60_000) => withDeadline(next(), ms, `${script} ${args.join(' ')}`),
    /** SIGTERM, then the line the child prints on its way out (its own measurements). */
    async finish(ms = 10_000) {
      child.kill('SIGTERM');
      const last = await withDeadline(next(), ms, `${script} final line`);
      await exited;
      return last;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    exited,
  };
}

/** Runs a child to completion and returns the last JSON line it printed. */
export async function runChild(script, args = [], nodeArgs = [], options = {}) {
  const { timeoutMs = 120_000 } = options;
  const handle = startChild(script, args, nodeArgs, options);
  const result = await handle.next(timeoutMs);
  const [code] = await withDeadline(handle.exited, 10_000, `${script} exit`);
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  return result;
}

/** The hard limit on open descriptors, which a child may raise its soft limit to. */
export function hardFdLimit() {
  const result = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const text = result.stdout.trim();
  return text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text);
}
