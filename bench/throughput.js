/**
 * HTTP throughput of node:http under each variant, as a ratio to the baseline of the same
 * round. Each round runs every variant once, in an order rotated by one per round, so no
 * variant always runs first or last (thermal and neighbour noise spread over all of them);
 * every run is a fresh server process loaded by a separate load process.
 */
import { runChild, startChild } from './processes.js';
import { median } from './stats.js';
import { VARIANTS } from './variants.js';

async function oneRun(variant, mode, settings) {
  const server = startChild('./http-server.js', [variant]);
  try {
    const { port } = await server.next(10_000);
    const args = [mode, port, settings.warmupMs, settings.durationMs, settings.connections];
    const load = await runChild('./load.js', args);
    if (load.errors > load.requests * 0.001) {
      throw new Error(`${variant} ${mode}: ${load.errors} errors in ${load.requests} requests`);
    }
    return load.requests / load.seconds;
  } finally {
    await server.stop();
  }
}

/** Returns, per variant: every round's req/s and ratio to that round's baseline, and medians. */
export async function measureThroughput(mode, settings, log) {
  const perVariant = Object.fromEntries(VARIANTS.map((v) => [v, { rates: [], ratios: [] }]));
  for (let round = 0; round < settings.rounds; round++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
    const rates = {};
    for (const variant of order) rates[variant] = await oneRun(variant, mode, settings);
    for (const variant of VARIANTS) {
      perVariant[variant].rates.push(rates[variant]);
      perVariant[variant].ratios.push(rates[variant] / rates.baseline);
    }
    log(
      `  ${mode} round ${round + 1}/${settings.rounds}: ` +
        VARIANTS.map((v) => `${v} ${Math.round(rates[v])}`).join(', '),
    );
  }
  for (const variant of VARIANTS) {
    const entry = perVariant[variant];
    entry.medianRate = median(entry.rates);
    entry.medianRatio = median(entry.ratios);
  }
  return perVariant;
}
