/** Detection latency against graceMs, from a child process with nothing else running in it. */
import { runChild } from './processes.js';
import { max, median, percentile } from './stats.js';

export async function measureLatency(settings) {
  const result = await runChild('./latency-child.js', [settings.graceMs, settings.leaks], [], {
    timeoutMs: 60_000,
  });
  return ['half-closed', 'unconsumed-fin'].map((kind) => ({
    kind,
    graceMs: settings.graceMs,
    sweepIntervalMs: result.sweepIntervalMs,
    median: median(result[kind]),
    p95: percentile(result[kind], 95),
    max: max(result[kind]),
    samples: result[kind].length,
  }));
}
