/**
 * Heap per tracked socket: (heap delta over N open sockets with the monitor) minus (the same
 * without it), per socket. Rounds alternate variants, each a fresh process; medians reported.
 */
import { runChild, startChild } from './processes.js';
import { median } from './stats.js';

export const MEMORY_CASES = [
  { side: 'client', variant: 'stacks-none', label: "client sockets, stacks: 'none'" },
  { side: 'client', variant: 'stacks-all', label: "client sockets, stacks: 'all'" },
  { side: 'server', variant: 'stacks-none', label: 'http.Server sockets (never a stack)' },
];

async function oneRun(variant, side, count, sinkPort) {
  const result = await runChild(
    './memory-child.js',
    [variant, side, count, sinkPort],
    ['--expose-gc'],
    { raiseFdLimit: true },
  );
  if (result.open !== count) throw new Error(`${variant} ${side}: ${result.open} of ${count} open`);
  if (variant !== 'baseline' && result.tracked !== count) {
    throw new Error(`${variant} ${side}: tracked ${result.tracked} of ${count}`);
  }
  return result.bytesPerSocket;
}

export async function measureMemory(settings, log) {
  const sink = startChild('./socket-sink.js', [], [], { raiseFdLimit: true });
  const { port } = await sink.next(10_000);
  const results = [];
  try {
    for (const side of ['client', 'server']) {
      const variants = [
        'baseline',
        ...MEMORY_CASES.filter((c) => c.side === side).map((c) => c.variant),
      ];
      const perVariant = Object.fromEntries(variants.map((v) => [v, []]));
      for (let round = 0; round < settings.memoryRounds; round++) {
        const order = variants.map((_, i) => variants[(i + round) % variants.length]);
        for (const variant of order) {
          perVariant[variant].push(await oneRun(variant, side, settings.sockets, port));
        }
      }
      for (const memoryCase of MEMORY_CASES.filter((c) => c.side === side)) {
        // Paired per round: a round's baseline and variant ran back to back.
        const extra = perVariant[memoryCase.variant].map(
          (bytes, i) => bytes - perVariant.baseline[i],
        );
        results.push({ ...memoryCase, bytesPerSocket: median(extra), rounds: extra });
        log(`  memory ${memoryCase.label}: ${extra.map((b) => Math.round(b)).join(', ')} bytes`);
      }
    }
  } finally {
    await sink.stop();
  }
  return results;
}
