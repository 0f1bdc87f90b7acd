import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { kernelEndpoints } from '../src/kernel/kernel-address.js';
import { scanCloseWait } from '../src/kernel/kernel-check.js';
import { closeWaitRows, socketInodesOf } from '../src/kernel/process-sockets.js';
import { startMonitor } from './fixtures/monitor.js';
import { pausedReaderLeak } from './fixtures/net.js';
import { type TableSocket, writeProcNetTcpTable } from './fixtures/proc-net-tcp-table.js';
import { watchLoopBlocks } from './helpers/loop-block.js';

const linux = process.platform === 'linux';
/** Issue 17: the kernel check's longest event-loop block. */
const BLOCK_LIMIT_MS = 20;
const TRACKED = 10_000;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/**
 * The longest block of `work`, as the median of three runs. Measured as main-thread CPU time
 * (test/helpers/loop-block.js): on a loaded 2-core machine the wall-clock gaps of an idle loop
 * already reach 40-70 ms, so a wall-clock bound would fail on the machine, not on the code.
 */
async function longestBlockMs(work: () => Promise<unknown>): Promise<number> {
  const blocks: number[] = [];
  for (let run = 0; run < 3; run++) {
    const watch = watchLoopBlocks();
    await work();
    blocks.push(watch.stop().cpuMs);
  }
  return blocks.sort((a, b) => a - b)[1]!;
}

/** Keys of `matching` table sockets, and of sockets the table does not have up to TRACKED. */
function trackedKeys(matching: TableSocket[]): Map<string, number> {
  const byKey = new Map<string, number>();
  for (const socket of matching) {
    const { localAddress, localPort, remoteAddress, remotePort } = socket;
    byKey.set(kernelEndpoints(localAddress, localPort, remoteAddress, remotePort)!, socket.inode);
  }
  for (let i = 0; byKey.size < TRACKED; i++) {
    byKey.set(kernelEndpoints('10.1.0.1', 1024 + (i % 60_000), '10.2.0.2', 443)!, -1);
  }
  return byKey;
}

/** The neighbour's one JSON line, or why there is none. */
function firstLine(child: ChildProcess): Promise<{ pairs: number; port: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('no line within 20 s'), 20_000);
    const onExit = (code: number | null) => fail(`it exited (${code})`);
    function fail(why: string) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`the neighbour's sockets were not in place: ${why}`));
    }
    child.once('exit', onExit);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(JSON.parse(line));
    });
  });
}

describe.runIf(linux)('the kernel check on large tables (Linux: reads /proc)', () => {
  for (const { closeWait, tracked, label } of [
    { closeWait: 100, tracked: 100, label: 'mostly TIME_WAIT' },
    { closeWait: 50_000, tracked: 5_000, label: 'half of them CLOSE_WAIT' },
  ]) {
    it(`reads 100,000 rows (${label}) against ${TRACKED} tracked sockets in slices of <= ${BLOCK_LIMIT_MS} ms`, async () => {
      const table = writeProcNetTcpTable({ rows: 100_000, closeWait });
      cleanups.push(table.remove);
      const byKey = trackedKeys(table.closeWaitSockets.slice(0, tracked));
      const tables = [{ path: table.path, missingIsEmpty: false }];
      let matched = 0;
      let unmatched = 0;
      const blockMs = await longestBlockMs(async () => {
        const scan = await scanCloseWait(tables, byKey);
        // What the check does next with rows no tracked socket accounts for.
        await socketInodesOf('self', scan.unmatched);
        matched = scan.matched.length;
        unmatched = scan.unmatched.size;
      });
      expect(matched).toBe(tracked);
      expect(unmatched).toBe(closeWait - tracked);
      expect(blockMs).toBeLessThanOrEqual(BLOCK_LIMIT_MS);
    }, 30_000);
  }

  it(`finds its own leak next to a process holding thousands of sockets, in slices of <= ${BLOCK_LIMIT_MS} ms`, async () => {
    const script = new URL('./fixtures/socket-neighbour.mjs', import.meta.url).pathname;
    // 4,000 pairs are 8,000 descriptors: raise the soft limit as far as the hard one allows.
    const child: ChildProcess = spawn(
      'bash',
      [
        '-c',
        'ulimit -n 9000 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
        process.execPath,
        script,
        '4000',
        '2000',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    const neighbour = await firstLine(child);
    expect(neighbour.pairs).toBeGreaterThanOrEqual(1000);
    // The neighbour's CLOSE_WAIT rows are in the table the check reads, and none are ours.
    const theirs = (await closeWaitRows('self')).filter((row) => row.localPort === neighbour.port);
    expect(theirs.length).toBe(neighbour.pairs);

    const monitor = startMonitor();
    const { port } = await pausedReaderLeak();
    const deadline = Date.now() + 3000;
    while (!(await monitor.kernelCheck()).hidden.some((h) => h.socket.localPort === port)) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    let result = await monitor.kernelCheck();
    const blockMs = await longestBlockMs(async () => {
      result = await monitor.kernelCheck();
    });
    expect(result.error).toBeUndefined();
    expect(result.hidden.map((h) => h.socket.localPort)).toContain(port);
    expect(result.unattributed.filter((row) => row.localPort === neighbour.port)).toEqual([]);
    expect(blockMs).toBeLessThanOrEqual(BLOCK_LIMIT_MS);
  }, 30_000);
});
