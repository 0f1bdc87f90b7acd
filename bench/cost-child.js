/**
 * Cost of the monitor's whole-set operations at scale: `node bench/cost-child.js <sockets>
 * <leaks>`. This process holds `sockets` accepted sockets (an opener process holds the other
 * ends), `leaks` of them leaked: half half-closed, half unconsumed-fin. Then it times leaks(),
 * report(), its table, sockets(), one sweep pass and the kernel check.
 *
 * One sweep pass is timed by calling the sweep's own timer callback: the monitor's interval is
 * created through `setInterval`, which we wrap (for the duration of `start()` only) to keep a
 * reference to that callback. Calling it runs exactly the code the timer runs, on the real
 * tracked set, so its wall time is the event-loop time one pass takes; extra passes cannot
 * change a verdict (a leak needs graceMs since the first sighting, whatever the pass count).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { realTimers } from '../dist/esm/clock.js';
import { createSocketMonitor } from '../dist/esm/index.js';
import { startChild } from './processes.js';
import { median } from './stats.js';

const total = Number(process.argv[2]);
const leakCount = Number(process.argv[3]);
const graceMs = 1000;

const monitor = createSocketMonitor({ graceMs, logger: false });
// closewait schedules through its own reference to the timers (clock.ts), out of reach of
// fake timers and of a patch on the global: catch the sweep's callback there.
const realSetInterval = realTimers.setInterval;
let sweepPass;
realTimers.setInterval = function captureSweep(callback, ms, ...rest) {
  if (sweepPass === undefined && ms === monitor.options.sweepIntervalMs) sweepPass = callback;
  return realSetInterval(callback, ms, ...rest);
};
try {
  monitor.start();
} finally {
  realTimers.setInterval = realSetInterval;
}
if (sweepPass === undefined) throw new Error('the sweep interval was not found');

const held = [];
const halfOpen = net.createServer({ allowHalfOpen: true }, (socket) => {
  held.push(socket);
  socket.resume(); // reads to the FIN and sees 'end', but never ends its side
});
const neverReads = net.createServer((socket) => held.push(socket));
const listen = (server) =>
  new Promise((resolve) =>
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () =>
      resolve(server.address().port),
    ),
  );
const [halfOpenPort, neverReadsPort] = [await listen(halfOpen), await listen(neverReads)];
const halfClosed = Math.floor(leakCount / 2);
const opener = startChild(
  './socket-opener.js',
  [
    JSON.stringify({
      groups: [
        { port: halfOpenPort, count: total - leakCount, afterwards: 'hold' },
        { port: halfOpenPort, count: halfClosed, afterwards: 'end' },
        { port: neverReadsPort, count: leakCount - halfClosed, afterwards: 'write-end' },
      ],
    }),
  ],
  [],
  { raiseFdLimit: true },
);
await opener.next(120_000);
const deadline = performance.now() + 30_000;
while (monitor.leaks().length < leakCount) {
  if (performance.now() > deadline) throw new Error(`only ${monitor.leaks().length} leaks`);
  await new Promise((resolve) => setTimeout(resolve, 50));
}

/** The size of what the kernel check reads: every TCP socket in the network namespace. */
function procNetTcpRows() {
  let rows = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      rows += readFileSync(file, 'latin1').split('\n').length - 2; // header, final newline
    } catch {
      // No IPv6 table: nothing to count.
    }
  }
  return rows;
}

function timeSync(fn, runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

async function timeAsync(fn, runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** The longest the event loop was held up while `fn` ran (its synchronous stretches). */
async function longestBlock(fn, runs) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  for (let i = 0; i < runs; i++) await fn();
  histogram.disable();
  return histogram.max / 1e6;
}

const kernel = await monitor.kernelCheck();
const result = {
  tracked: monitor.sockets().length,
  leaks: monitor.leaks().length,
  sweepIntervalMs: monitor.options.sweepIntervalMs,
  'leaks()': timeSync(() => monitor.leaks(), 20),
  'report()': timeSync(() => monitor.report(), 20),
  'String(report())': timeSync(() => String(monitor.report()), 10),
  'sockets()': timeSync(() => monitor.sockets(), 10),
  'sweep pass': timeSync(sweepPass, 50),
  'kernelCheck()': kernel.supported ? await timeAsync(() => monitor.kernelCheck(), 5) : undefined,
  'kernelCheck() longest block': kernel.supported
    ? await longestBlock(() => monitor.kernelCheck(), 3)
    : undefined,
  kernelCloseWait: kernel.supported ? kernel.closeWait : undefined,
  procNetTcpRows: kernel.supported ? procNetTcpRows() : undefined,
};
monitor.stop();
await opener.stop();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
