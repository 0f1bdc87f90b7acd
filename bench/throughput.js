/**
 * HTTP throughput of node:http under each variant, as a ratio to the baseline of the same
 * round. Each round runs every variant once, in an order rotated by one per round, so no
 * variant always runs first or last (thermal and neighbour noise spread over all of them);
 * every run is a fresh server process loaded by a separate load process.
 */
import { runChild, startChild } from './processes.js';
import { median } from './stats.js';
import { VARIANTS } from './variants.js';

/** One fresh server process under one load run: its req/s and its CPU per request. */
async function oneRun(variant, mode, settings) {
  const server = startChild('./http-server.js', [variant, settings.warmupMs]);
  try {
    const { port } = await server.next(10_000);
    const args = [mode, port, settings.warmupMs, settings.durationMs, settings.connections];
    const load = await runChild('./load.js', args);
    if (load.errors > load.requests * 0.001) {
      throw new Error(`${variant} ${mode}: ${load.errors} errors in ${load.requests} requests`);
    }
    const { cpuMicrosPerRequest } = await server.finish();
    return { rate: load.requests / load.seconds, cpu: cpuMicrosPerRequest };
  } finally {
    await server.stop();
  }
}

/**
 * Returns, per variant, every round's figures and their medians:
 * - `ratios`: req/s over the same round's baseline req/s (what the load generator saw);
 * - `cpuRatios`: the baseline's server CPU per request over the variant's, i.e. the throughput
 *   a CPU-bound server would keep. On a shared 2-core VM the req/s of one run swings by
 *   +-25% with where the scheduler puts the server, the load and the loopback softirqs; CPU
 *   per request swings far less, so it is the steadier estimate of the same ratio.
 */
export async function measureThroughput(mode, settings, log) {
  const perVariant = Object.fromEntries(
    VARIANTS.map((v) => [v, { rates: [], cpus: [], ratios: [], cpuRatios: [] }]),
  );
  for (let round = 0; round < settings.rounds; round++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
    const runs = {};
    for (const variant of order) runs[variant] = await oneRun(variant, mode, settings);
    for (const variant of VARIANTS) {
      const entry = perVariant[variant];
      entry.rates.push(runs[variant].rate);
      entry.cpus.push(runs[variant].cpu);
      entry.ratios.push(runs[variant].rate / runs.baseline.rate);
      entry.cpuRatios.push(runs.baseline.cpu / runs[variant].cpu);
    }
    log(
      `  ${mode} round ${round + 1}/${settings.rounds}: ` +
        VARIANTS.map(
          (v) => `${v} ${Math.round(runs[v].rate)} req/s ${runs[v].cpu.toFixed(1)} us/req`,
        ).join(', '),
    );
  }
  for (const variant of VARIANTS) {
    const entry = perVariant[variant];
    entry.medianRate = median(entry.rates);
    entry.medianCpu = median(entry.cpus);
    entry.medianRatio = median(entry.ratios);
    entry.medianCpuRatio = median(entry.cpuRatios);
  }
  return perVariant;
}
