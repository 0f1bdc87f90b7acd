/**
 * What a user installs: `npm pack` of this checkout, installed with plain `npm i` into a fresh
 * project beside only the packages the README names for each feature (fastify for
 * closewait/fastify, prom-client for closewait/prometheus). Every entry point loads with
 * require() and with import, and every shipped source map points at a shipped file.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * Every entry point but closewait/vitest, which calls Vitest's hooks as it loads and so loads
 * only inside a Vitest run: examples/runners/vitest{2,3,4} load it there, from the same tarball.
 */
const ENTRIES = [
  'closewait',
  'closewait/testing',
  'closewait/jest',
  'closewait/mocha',
  'closewait/node-test',
  'closewait/fastify',
  'closewait/prometheus',
  'closewait/opentelemetry',
  'closewait/register',
];

/** Loads every entry both ways, in that order, and prints what it saw as JSON. */
const LOADER = `
const diagnosticsChannel = require('node:diagnostics_channel');
const subscribers = (name) => diagnosticsChannel.channel(name)._subscribers?.length ?? 0;
(async () => {
  const entries = JSON.parse(process.argv[2]);
  const loaded = {};
  let sharedMonitorSubscribers;
  for (const name of entries) {
    if (name === 'closewait/register') {
      // Both copies of closewait/testing are loaded by now: they must share one monitor.
      sharedMonitorSubscribers = subscribers('net.client.socket');
    }
    const required = Object.keys(require(name)).sort();
    const imported = Object.keys(await import(name)).filter((key) => key !== 'module.exports').sort();
    loaded[name] = { required, imported };
  }
  process.stdout.write(JSON.stringify({ loaded, sharedMonitorSubscribers }));
  process.exit(0);
})().catch((error) => {
  process.stderr.write(String(error && error.stack || error));
  process.exit(1);
});
`;

let project: string;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'closewait-pack-'));
  // --ignore-scripts: `npm test` has built dist/ already; prepack would build it again.
  const packed = await run(
    npm,
    ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch],
    { cwd: ROOT },
  );
  const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
  project = join(scratch, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), '{ "name": "fresh-app", "private": true }\n');
  await run(
    npm,
    [
      'i',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      join(scratch, filename),
      'fastify',
      'prom-client',
    ],
    { cwd: project },
  );
}, 180_000);

afterAll(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('the packed tarball, installed with npm i', () => {
  it('loads every entry point with require() and with import, the same exports both ways', async () => {
    writeFileSync(join(project, 'load.cjs'), LOADER);
    const { stdout } = await run(process.execPath, ['load.cjs', JSON.stringify(ENTRIES)], {
      cwd: project,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const { loaded, sharedMonitorSubscribers } = JSON.parse(stdout) as {
      loaded: Record<string, { required: string[]; imported: string[] }>;
      sharedMonitorSubscribers: number;
    };
    for (const name of ENTRIES) {
      expect(loaded[name], name).toBeDefined();
      expect(loaded[name]!.imported, name).toEqual(loaded[name]!.required);
    }
    expect(loaded.closewait!.required).toEqual(
      expect.arrayContaining(['createSocketMonitor', 'healthCheck', 'healthHandler']),
    );
    expect(loaded['closewait/jest']!.required).toContain('TestEnvironment');
    expect(loaded['closewait/mocha']!.required).toContain('mochaHooks');
    expect(loaded['closewait/node-test']!.required).toContain('checkSocketLeaks');
    expect(loaded['closewait/opentelemetry']!.required).toContain('registerMetrics');
    // The ESM and the CommonJS copy of closewait/testing: one monitor, one subscriber.
    expect(sharedMonitorSubscribers).toBe(1);
  });

  it('ships the files every source map points at, and a CommonJS marker for dist/cjs', () => {
    const installed = join(project, 'node_modules', 'closewait');
    expect(JSON.parse(readFileSync(join(installed, 'dist/cjs/package.json'), 'utf8'))).toEqual({
      type: 'commonjs',
    });
    const maps = readdirSync(join(installed, 'dist'), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.map'))
      .map((file) => join(installed, 'dist', file));
    expect(maps.length).toBeGreaterThan(20);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] };
      for (const source of sources) {
        expect(
          () => readFileSync(resolve(dirname(map), source)),
          `${map} -> ${source}`,
        ).not.toThrow();
      }
    }
  });
});
