/**
 * closewait's own share of a server's CPU, from V8's sampling profiler: a server process with
 * the monitor is profiled while the load runs (warm-up excluded), and we count the samples whose
 * stack holds a frame of closewait (dist/). Unlike the throughput ratios this barely moves
 * from run to run, because it compares samples within one process. It counts only time spent
 * in our functions (and what they call): not the GC our allocations cause, nor the cost our
 * listeners add inside Node's own functions (e.g. a longer listener array to walk), so it is
 * a floor on the overhead, not the whole of it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChild, startChild } from './processes.js';

const ownCode = fileURLToPath(new URL('../dist/esm/', import.meta.url));

function shareOf(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parentOf.set(child, node.id);
  const ours = new Map();
  const isOurs = (id) => {
    if (ours.has(id)) return ours.get(id);
    const node = byId.get(id);
    const url = node.callFrame.url;
    const result = url.includes(ownCode)
      ? true
      : parentOf.has(id)
        ? isOurs(parentOf.get(id))
        : false;
    ours.set(id, result);
    return result;
  };
  let idle = 0;
  let inOurCode = 0;
  for (const id of profile.samples) {
    const name = byId.get(id).callFrame.functionName;
    if (name === '(idle)') idle++;
    else if (isOurs(id)) inOurCode++;
  }
  const busy = profile.samples.length - idle;
  return { busySamples: busy, share: inOurCode / busy };
}

export async function measureProfileShare(mode, variant, settings) {
  const dir = mkdtempSync(join(tmpdir(), 'closewait-prof-'));
  try {
    const file = join(dir, 'server.cpuprofile');
    const server = startChild('./http-server.js', [variant, settings.warmupMs, file]);
    const { port } = await server.next(10_000);
    const args = [mode, port, settings.warmupMs, settings.durationMs, settings.connections];
    await runChild('./load.js', args);
    await server.finish();
    return shareOf(JSON.parse(readFileSync(file, 'utf8')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
