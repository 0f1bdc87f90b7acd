// The longest event-loop block while some work runs, measured two ways by a 1 ms repeating timer:
// the wall-clock gap between its ticks (what monitorEventLoopDelay sees), and the CPU time the
// main thread spent in that gap (/proc/thread-self/schedstat, ns). On a loaded machine the wall
// gap also counts time the kernel ran other processes while the loop was idle (measured here:
// 40-70 ms gaps at load average 10 on 2 cores with nothing to run); the CPU time does not, and
// still counts our own synchronous work and the garbage collection it causes on the main thread.
// Plain JS so bench/kernel-check.js can use it. Linux only.
import { closeSync, openSync, readSync } from 'node:fs';
import { clearInterval, setInterval } from 'node:timers';

/** A reader of this thread's CPU time in ns, and its closer. */
function threadCpu() {
  // Opened from the main thread: the descriptor stays on its schedstat, whoever reads it.
  const fd = openSync('/proc/thread-self/schedstat', 'r');
  const buffer = Buffer.alloc(128);
  const cpuNs = () => {
    readSync(fd, buffer, 0, buffer.length, 0);
    return Number(buffer.toString('latin1', 0, buffer.indexOf(0x20)));
  };
  return { cpuNs, close: () => closeSync(fd) };
}

/** How long one synchronous call holds the loop: main-thread CPU ms and wall ms. */
export function timeCall(call) {
  const { cpuNs, close } = threadCpu();
  const cpu = cpuNs();
  const wall = performance.now();
  call();
  const result = { cpuMs: (cpuNs() - cpu) / 1e6, wallMs: performance.now() - wall };
  close();
  return result;
}

export function watchLoopBlocks() {
  const { cpuNs, close } = threadCpu();
  let lastCpu = cpuNs();
  let lastWall = performance.now();
  let cpuMs = 0;
  let wallMs = 0;
  const tick = () => {
    const cpu = cpuNs();
    const wall = performance.now();
    cpuMs = Math.max(cpuMs, (cpu - lastCpu) / 1e6);
    wallMs = Math.max(wallMs, wall - lastWall - 1);
    lastCpu = cpu;
    lastWall = wall;
  };
  const timer = setInterval(tick, 1);
  return {
    /** Stops watching; the longest block seen, in ms of main-thread CPU and of wall clock. */
    stop() {
      tick();
      clearInterval(timer);
      close();
      return { cpuMs, wallMs };
    },
  };
}
