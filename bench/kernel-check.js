/**
 * The kernel check's cost on large /proc/net/tcp tables: synthetic tables in the kernel's format
 * (test/fixtures/proc-net-tcp-table.js), read by the same code as /proc/self/net/tcp, matched
 * against 10,000 tracked 4-tuples; rows that match nothing send it through /proc/self/fd.
 * Reports the median of 5 runs: time per row, and the longest event-loop block as main-thread
 * CPU time and as wall clock (test/helpers/loop-block.js: on a loaded machine the wall figure
 * also counts time other processes ran). Linux only.
 * Run: npm run build && node bench/kernel-check.js
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { kernelEndpoints } from '../dist/esm/kernel/kernel-address.js';
import { scanCloseWait } from '../dist/esm/kernel/kernel-check.js';
import { socketInodesOf } from '../dist/esm/kernel/process-sockets.js';
import { writeProcNetTcpTable } from '../test/fixtures/proc-net-tcp-table.js';
import { watchLoopBlocks } from '../test/helpers/loop-block.js';
import { median } from './stats.js';

const RUNS = 5;
const TRACKED = 10_000;
const TABLES = [
  { rows: 10_000, closeWait: 100, label: '10k rows, 100 CLOSE_WAIT' },
  { rows: 100_000, closeWait: 100, label: '100k rows, 100 CLOSE_WAIT' },
  { rows: 100_000, closeWait: 100_000, label: '100k rows, all CLOSE_WAIT' },
];

/** 10,000 keys: half of the table's CLOSE_WAIT sockets (at most), the rest match nothing. */
function trackedKeys(closeWaitSockets) {
  const byKey = new Map();
  for (const socket of closeWaitSockets.slice(0, Math.min(TRACKED, closeWaitSockets.length / 2))) {
    byKey.set(
      kernelEndpoints(
        socket.localAddress,
        socket.localPort,
        socket.remoteAddress,
        socket.remotePort,
      ),
      socket,
    );
  }
  for (let i = 0; byKey.size < TRACKED; i++) {
    byKey.set(kernelEndpoints('10.1.0.1', 1024 + (i % 60_000), '10.2.0.2', 443), i);
  }
  return byKey;
}

/** One check's reading of the table: the scan, then /proc/self/fd for rows that matched nothing. */
async function measureOnce(path, byKey) {
  await sleep(10);
  const watch = watchLoopBlocks();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const scan = await scanCloseWait([{ path, missingIsEmpty: false }], byKey);
  if (scan.unmatched.size > 0) await socketInodesOf('self', scan.unmatched);
  const ms = performance.now() - started;
  const cpuUsed = process.cpuUsage(cpu);
  const blocks = watch.stop();
  return {
    ms,
    cpuMs: (cpuUsed.user + cpuUsed.system) / 1000,
    blockCpuMs: blocks.cpuMs,
    blockWallMs: blocks.wallMs,
    matched: scan.matched.length,
  };
}

const column = (value, width) => value.padStart(width);
console.log(
  `kernel check on synthetic tables: node ${process.version}, ${TRACKED} tracked, median of ${RUNS}`,
);
console.log(
  'table                      | total ms | µs/row | cpu µs/row | block ms (cpu) | block ms (wall)',
);
for (const { rows, closeWait, label } of TABLES) {
  const table = writeProcNetTcpTable({ rows, closeWait });
  try {
    const byKey = trackedKeys(table.closeWaitSockets);
    const expected = Math.min(TRACKED, Math.floor(table.closeWaitSockets.length / 2));
    await measureOnce(table.path, byKey); // warm-up: JIT and page cache
    const results = [];
    for (let run = 0; run < RUNS; run++) results.push(await measureOnce(table.path, byKey));
    if (results.some((r) => r.matched !== expected)) throw new Error('wrong matches');
    const at = (key) => median(results.map((r) => r[key]));
    console.log(
      [
        label.padEnd(26),
        column(at('ms').toFixed(1), 8),
        column(((at('ms') * 1000) / rows).toFixed(2), 6),
        column(((at('cpuMs') * 1000) / rows).toFixed(2), 10),
        column(at('blockCpuMs').toFixed(1), 14),
        column(at('blockWallMs').toFixed(1), 15),
      ].join(' | '),
    );
  } finally {
    table.remove();
  }
}
