/**
 * docs/benchmarks.md holds one section per Node line, each written by `npm run bench` on that
 * line: a run replaces its own line's section and leaves the others as their runs wrote them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const HEADER = `# Benchmarks

Written by \`npm run bench\` (bench/run.js), one section per Node line: every figure below comes
from the run named in its section. Ratios compare closewait with a baseline server measured in
the same run (no monitor), as medians of rounds; CPU time on shared machines varies by several
percent, so \`node bench/instructions.js\` (valgrind cachegrind) counts instructions per request
where a small difference matters.
`;

export function writeDocsSection(file, nodeVersion, settings, body) {
  const major = nodeVersion.slice(1).split('.')[0];
  const begin = `<!-- node ${major} -->`;
  const end = `<!-- /node ${major} -->`;
  const cpus = os.cpus();
  const section = [
    begin,
    `## Node ${nodeVersion}`,
    '',
    `${new Date().toISOString().slice(0, 10)}, ${os.platform()} ${os.arch()}, ` +
      `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${settings.rounds} rounds of ` +
      `${settings.durationMs / 1000} s.`,
    '',
    body.trim(),
    end,
  ].join('\n');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  const at = text.indexOf(begin);
  if (at !== -1) {
    const stop = text.indexOf(end, at);
    text = text.slice(0, at) + section + text.slice(stop + end.length);
  } else {
    // Sections in Node order, whatever order the runs came in.
    const majors = [...text.matchAll(/<!-- node (\d+) -->/g)].map((m) => Number(m[1]));
    const next = majors.filter((m) => m > Number(major)).sort((a, b) => a - b)[0];
    const before = next === undefined ? -1 : text.indexOf(`<!-- node ${next} -->`);
    text =
      before === -1
        ? `${text.trimEnd()}\n\n${section}\n`
        : `${text.slice(0, before)}${section}\n\n${text.slice(before)}`;
  }
  writeFileSync(file, text);
}
