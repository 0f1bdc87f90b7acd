/** Whole-set operations with many open sockets and leaks: one child process, medians inside. */
import { runChild } from './processes.js';

export async function measureCost(settings) {
  return runChild('./cost-child.js', [settings.sockets, settings.costLeaks], [], {
    raiseFdLimit: true,
    timeoutMs: 120_000,
  });
}
