/**
 * `npm run bench`: closewait's cost against a baseline measured in the same run. Prints the
 * tables (Markdown with --markdown) and, with --json <file>, writes every round's figures.
 * Environment: BENCH_ROUNDS (throughput rounds, default 5), BENCH_SECONDS (measured seconds
 * per run, default 2). Budget: under 5 minutes on a 2-core machine.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { measureCost } from './cost.js';
import { writeDocsSection } from './docs-section.js';
import { measureLatency } from './latency.js';
import { measureMemory } from './memory.js';
import { hardFdLimit } from './processes.js';
import { measureProfileShare } from './profile-share.js';
import { measurePromotion } from './promotion.js';
import { median } from './stats.js';
import { fixed, markdownTable, textTable, verdict } from './table.js';
import { measureThroughput } from './throughput.js';
import { VARIANT_LABELS, VARIANTS } from './variants.js';

const args = process.argv.slice(2);
/** docs/benchmarks.md gets this run's tables, in this Node line's section, unless --no-docs. */
const docsFile = args.includes('--no-docs')
  ? undefined
  : fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
const markdown = args.includes('--markdown') || docsFile !== undefined;
const jsonFile = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const log = (line) => process.stderr.write(`${line}\n`);
const table = markdown ? markdownTable : textTable;

/** Two descriptors per socket pair, one in each process; keep headroom for the rest. */
const socketsWanted = 10_000;
const socketCount = Math.min(socketsWanted, hardFdLimit() - 200);
const settings = {
  rounds: Number(process.env.BENCH_ROUNDS ?? 5),
  warmupMs: 500,
  durationMs: Number(process.env.BENCH_SECONDS ?? 2) * 1000,
  connections: 32,
  memoryRounds: 3,
  sockets: socketCount,
  graceMs: 1000,
  leaks: 30,
  costLeaks: 1000,
};

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
log(
  `closewait bench: node ${process.version}, ${settings.rounds} rounds of ${settings.durationMs} ms`,
);
if (socketCount < socketsWanted) {
  log(`  the hard descriptor limit allows ${socketCount} sockets, not ${socketsWanted}`);
}

const throughput = {};
for (const mode of ['close', 'keepalive']) {
  log(`throughput, ${mode} (${elapsed()})`);
  throughput[mode] = await measureThroughput(mode, settings, log);
}
log(`profile share (${elapsed()})`);
const profileShare = {};
for (const mode of ['close', 'keepalive']) {
  profileShare[mode] = await measureProfileShare(mode, 'stacks-none', settings);
}
log(`memory (${elapsed()})`);
const memory = await measureMemory(settings, log);
log(`promotion to old space (${elapsed()})`);
const promotion = await measurePromotion(['baseline', 'stacks-none', 'default'], 3);
log(`detection latency (${elapsed()})`);
const latency = await measureLatency(settings);
log(`whole-set operations (${elapsed()})`);
const cost = await measureCost(settings);
log(`done in ${elapsed()}`);

const spread = (values) => `${fixed(Math.min(...values), 2)}–${fixed(Math.max(...values), 2)}`;
const modeLabel = { close: 'per request (Connection: close)', keepalive: 'keep-alive' };
const throughputRows = [];
for (const mode of ['close', 'keepalive']) {
  for (const variant of VARIANTS) {
    const entry = throughput[mode][variant];
    throughputRows.push([
      `${modeLabel[mode]}: ${VARIANT_LABELS[variant]}`,
      Math.round(entry.medianRate),
      variant === 'baseline' ? '1' : fixed(entry.medianRatio, 3),
      variant === 'baseline' ? '' : spread(entry.ratios),
      fixed(entry.medianCpu, 1),
      variant === 'baseline' ? '1' : fixed(entry.medianCpuRatio, 3),
      variant === 'baseline' ? '' : spread(entry.cpuRatios),
    ]);
  }
}

/**
 * Accepted sockets never get a stack of their own (the server's listen() stack names them), so
 * on a server the three stack modes run the same code: their rounds pooled give the steadiest
 * figure for "closewait on a server", and their spread shows this machine's noise floor.
 */
const MONITOR_VARIANTS = ['stacks-none', 'default', 'stacks-all'];
for (const mode of ['close', 'keepalive']) {
  const pool = (key) => MONITOR_VARIANTS.flatMap((variant) => throughput[mode][variant][key]);
  const ratios = pool('ratios');
  const cpuRatios = pool('cpuRatios');
  const index = throughputRows.findIndex(
    (row) => row[0] === `${modeLabel[mode]}: ${VARIANT_LABELS['async-hooks']}`,
  );
  throughputRows.splice(index, 0, [
    `${modeLabel[mode]}: closewait, the 3 stack modes pooled`,
    '',
    fixed(median(ratios), 3),
    spread(ratios),
    '',
    fixed(median(cpuRatios), 3),
    spread(cpuRatios),
  ]);
  throughput[mode].pooled = { medianRatio: median(ratios), medianCpuRatio: median(cpuRatios) };
}

const out = [];
out.push(
  `Throughput, node:http, ${settings.connections} connections, load from a separate process; ` +
    `medians of ${settings.rounds} rounds (variants rotated each round, fresh process per run)`,
);
out.push(
  table(
    ['connection: variant', 'req/s', 'req/s ratio', 'rounds', 'CPU us/req', 'CPU ratio', 'rounds'],
    throughputRows,
  ),
);
out.push('');
out.push(
  "closewait's own functions as a share of the server's busy CPU (V8 sampling profiler, " +
    "stacks: 'none', one run each; a floor: GC and costs inside Node's functions not counted)",
);
out.push(
  table(
    ['connection', 'share of busy CPU', 'busy samples'],
    ['close', 'keepalive'].map((mode) => [
      modeLabel[mode],
      `${fixed(profileShare[mode].share * 100, 2)}%`,
      profileShare[mode].busySamples,
    ]),
  ),
);
out.push('');
out.push(
  `Memory per tracked socket: heap delta over ${settings.sockets} open sockets after GC, ` +
    `minus the same without a monitor (median of ${settings.memoryRounds} rounds)`,
);
out.push(
  table(
    ['sockets', 'bytes/socket', 'rounds'],
    memory.map((m) => [m.label, Math.round(m.bytesPerSocket), m.rounds.map(Math.round).join(', ')]),
  ),
);
out.push('');
const promotedBase = promotion.find((p) => p.variant === 'baseline').bytes;
out.push(
  'Bytes promoted to old space per 10,000 connection-per-request requests (V8 --trace-gc-nvp, ' +
    'median of 3 runs): dead sockets kept reachable by a tracker survive scavenges and show here',
);
out.push(
  table(
    ['server', 'MB promoted', 'ratio to baseline', 'runs (MB)'],
    promotion.map((p) => [
      VARIANT_LABELS[p.variant],
      fixed(p.bytes / 1e6, 2),
      fixed(p.bytes / promotedBase, 3),
      p.runs.map((bytes) => fixed(bytes / 1e6, 2)).join(', '),
    ]),
  ),
);
out.push('');
out.push(
  `Detection latency: 'leak' event time minus the peer's FIN time minus graceMs ` +
    `(graceMs ${settings.graceMs}, sweep every ${latency[0].sweepIntervalMs} ms, ${settings.leaks} leaks each)`,
);
out.push(
  table(
    ['kind', 'median ms', 'p95 ms', 'max ms'],
    latency.map((l) => [l.kind, fixed(l.median, 1), fixed(l.p95, 1), fixed(l.max, 1)]),
  ),
);
out.push('');
out.push(
  `Whole-set operations with ${cost.tracked} tracked sockets and ${cost.leaks} leaks ` +
    `(median wall time, ms; the kernel check read ${cost.procNetTcpRows ?? 'n/a'} rows of ` +
    '/proc/net/tcp{,6}, most of them TIME_WAIT left by the throughput runs)',
);
const costNames = [
  'leaks()',
  'report()',
  'String(report())',
  'sockets()',
  'sweep pass',
  'kernelCheck()',
  'kernelCheck() longest block',
];
out.push(
  table(
    ['operation', 'ms'],
    costNames.map((name) => [name, fixed(cost[name], 2)]),
  ),
);
const sweepShare = (cost['sweep pass'] / 1000) * 100;
out.push(
  `  sweep at the default interval for graceMs 30 s (1000 ms): ${fixed(sweepShare, 3)}% of one core`,
);
out.push('');

const close = throughput.close;
const keep = throughput.keepalive;
const halfClosed = latency.find((l) => l.kind === 'half-closed');
const unconsumed = latency.find((l) => l.kind === 'unconsumed-fin');
const noStack = memory.filter((m) => m.variant === 'stacks-none');
const targets = [
  ['per request, default >= 0.97', close.default.medianRatio, close.default.medianCpuRatio, 0.97],
  [
    'per request, any mode pooled >= 0.97',
    close.pooled.medianRatio,
    close.pooled.medianCpuRatio,
    0.97,
  ],
  [
    "per request, stacks 'none' >= 0.99",
    close['stacks-none'].medianRatio,
    close['stacks-none'].medianCpuRatio,
    0.99,
  ],
  ['keep-alive, default >= 0.99', keep.default.medianRatio, keep.default.medianCpuRatio, 0.99],
  [
    'keep-alive, any mode pooled >= 0.99',
    keep.pooled.medianRatio,
    keep.pooled.medianCpuRatio,
    0.99,
  ],
].map(([name, ratio, cpuRatio, target]) => [
  name,
  `${fixed(ratio, 3)} / ${fixed(cpuRatio, 3)}`,
  `${verdict(ratio >= target)} / ${verdict(cpuRatio >= target)}`,
]);
for (const m of noStack) {
  targets.push([
    `< 300 bytes/socket: ${m.label}`,
    Math.round(m.bytesPerSocket),
    verdict(m.bytesPerSocket < 300),
  ]);
}
targets.push([
  'half-closed within graceMs + 100 ms (max)',
  fixed(halfClosed.max, 1),
  verdict(halfClosed.max <= 100),
]);
targets.push([
  'unconsumed-fin within graceMs + 100 ms (max)',
  fixed(unconsumed.max, 1),
  verdict(unconsumed.max <= 100),
]);
targets.push([
  `unconsumed-fin within graceMs + one sweep (${unconsumed.sweepIntervalMs} ms) + 100 ms (max)`,
  fixed(unconsumed.max, 1),
  verdict(unconsumed.max <= unconsumed.sweepIntervalMs + 100),
]);
for (const p of promotion.filter((entry) => entry.variant !== 'baseline')) {
  targets.push([
    `promotion within 10% of baseline: ${VARIANT_LABELS[p.variant]}`,
    fixed(p.bytes / promotedBase, 3),
    verdict(p.bytes / promotedBase <= 1.1),
  ]);
}
out.push('Targets (throughput: req/s ratio / CPU ratio)');
out.push(table(['target', 'measured', 'verdict'], targets));
process.stdout.write(`${out.join('\n')}\n`);
if (docsFile !== undefined) {
  writeDocsSection(docsFile, process.version, settings, out.join('\n'));
  log(`wrote the Node ${process.versions.node.split('.')[0]} section of ${docsFile}`);
}

if (jsonFile !== undefined) {
  writeFileSync(
    jsonFile,
    JSON.stringify(
      {
        node: process.version,
        settings,
        throughput,
        profileShare,
        memory,
        promotion,
        latency,
        cost,
      },
      null,
      2,
    ),
  );
}
