/**
 * Instructions per request, counted by valgrind's cachegrind: steady to ~1% on a shared machine
 * where CPU time varies by 10%. `node bench/instructions.js [variant...]` runs each server
 * variant under `valgrind --tool=cachegrind` for two request counts and reports the slope
 * (instructions per request between them, so start-up cost cancels) and its ratio to the
 * baseline. Needs valgrind; minutes per variant (valgrind runs Node ~50x slower).
 * Environment: INSTR_LOW (default 2000), INSTR_HIGH (default 10000).
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeLoad, portOf } from './close-load.js';
import { VARIANTS } from './variants.js';

const low = Number(process.env.INSTR_LOW ?? 2000);
const high = Number(process.env.INSTR_HIGH ?? 10000);
const variants =
  process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['baseline', 'stacks-none', 'default'];
for (const variant of variants) {
  if (!VARIANTS.includes(variant)) throw new Error(`unknown variant ${variant}`);
}
if (spawnSync('valgrind', ['--version']).status !== 0) {
  process.stderr.write('bench/instructions.js needs valgrind (apt-get install valgrind)\n');
  process.exit(2);
}

async function instructions(variant, count, dir) {
  const out = join(dir, `${variant}-${count}.out`);
  const env = { ...process.env };
  delete env.NODE_ENV;
  const child = spawn(
    'valgrind',
    [
      '--tool=cachegrind',
      '--cache-sim=no',
      `--cachegrind-out-file=${out}`,
      process.execPath,
      '--predictable',
      fileURLToPath(new URL('./instructions-server.js', import.meta.url)),
      variant,
      String(count),
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await portOf(child);
  await closeLoad(port, count);
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`server ${variant} exited with ${code}`);
  const summary = readFileSync(out, 'utf8')
    .split('\n')
    .find((line) => line.startsWith('summary:'));
  return Number(summary.split(/\s+/)[1]);
}

const dir = mkdtempSync(join(tmpdir(), 'closewait-instr-'));
const rows = [];
try {
  for (const variant of variants) {
    const a = await instructions(variant, low, dir);
    const b = await instructions(variant, high, dir);
    const perRequest = (b - a) / (high - low);
    rows.push({ variant, perRequest });
    process.stderr.write(
      `${variant}: ${(perRequest / 1000).toFixed(1)}k instructions per request\n`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const base = rows.find((row) => row.variant === 'baseline')?.perRequest;
for (const { variant, perRequest } of rows) {
  const ratio = base === undefined ? '' : ` ratio ${(base / perRequest).toFixed(3)}`;
  process.stdout.write(`${variant}\t${(perRequest / 1000).toFixed(1)}k/request${ratio}\n`);
}
