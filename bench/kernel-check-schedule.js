/**
 * What the default kernel check costs here, and the interval its schedule ('auto') picks from
 * that cost: the live table of this namespace through the monitor's own kernelCheck(), then
 * synthetic tables in the kernel's format (test/fixtures/proc-net-tcp-table.js) read the same
 * way, 100 of their rows in CLOSE_WAIT. Median of 5 checks each; graceMs 30,000 (the default).
 * Linux only. Run: npm run build && node bench/kernel-check-schedule.js
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSocketMonitor } from '../dist/esm/index.js';
import { nextCheckDelay } from '../dist/esm/kernel/check-schedule.js';
import { scanCloseWait } from '../dist/esm/kernel/kernel-check.js';
import { writeProcNetTcpTable } from '../test/fixtures/proc-net-tcp-table.js';
import { median } from './stats.js';

const RUNS = 5;
const GRACE_MS = 30_000;
const interval = (ms) =>
  nextCheckDelay({
    interval: 'auto',
    graceMs: GRACE_MS,
    lastDurationMs: ms,
    suspectDueInMs: undefined,
  });
const lines = (path) => readFileSync(path, 'latin1').split('\n').length - 2;

async function medianOf(check) {
  await check(); // warm-up: JIT and page cache
  const times = [];
  for (let run = 0; run < RUNS; run++) {
    await sleep(10);
    times.push(await check());
  }
  return median(times);
}

console.log(
  `default kernel check: node ${process.version}, graceMs ${GRACE_MS}, median of ${RUNS}`,
);
console.log('table                         | check ms | auto interval ms | share of time');
const row = (label, ms) =>
  console.log(
    `${label.padEnd(29)} | ${ms.toFixed(1).padStart(8)} | ${String(interval(ms)).padStart(16)} | ${((100 * ms) / interval(ms)).toFixed(2)} %`,
  );

const monitor = createSocketMonitor({ logger: false, kernelCheckIntervalMs: 0 }).start();
const live = lines('/proc/self/net/tcp') + lines('/proc/self/net/tcp6');
row(`live, ${live} rows`, await medianOf(async () => (await monitor.kernelCheck()).durationMs));
monitor.stop();

for (const rows of [10_000, 50_000, 100_000]) {
  const table = writeProcNetTcpTable({ rows, closeWait: 100 });
  try {
    const ms = await medianOf(async () => {
      const started = performance.now();
      await scanCloseWait([{ path: table.path, missingIsEmpty: false }], new Map());
      return performance.now() - started;
    });
    row(`synthetic, ${rows} rows`, ms);
  } finally {
    table.remove();
  }
}
