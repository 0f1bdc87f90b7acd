// Installs the sample projects under examples/runners/ (each runner version with its own
// package.json and package-lock.json), so that the tests can run real Jest 29 and 30, Mocha,
// node --test and Vitest 2, 3 and 4 side by side. `npm test` runs it after the build.
//
// Each project's own packages are installed with `npm ci` once, and again only when its
// lockfile or closewait's dependencies change (a stamp in its node_modules says which it has).
// closewait itself is packed from this checkout every time (`npm pack`, so exactly the files a
// user gets) and unpacked over node_modules/closewait: the projects test the current build.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const STAMP = '.closewait-example-stamp';
/** Two at a time: CI has two cores, and npm ci mostly waits on the disk and the cache. */
const PARALLEL = 2;

const only = process.argv.slice(2);
const examples = readdirSync(join(root, 'examples/runners'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => join(root, 'examples/runners', entry.name))
  .filter((dir) => existsSync(join(dir, 'package-lock.json')))
  .filter((dir) => only.length === 0 || only.some((name) => dir.endsWith(`/${name}`)));

function stampOf(dir) {
  const { dependencies } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return createHash('sha256')
    .update(readFileSync(join(dir, 'package-lock.json')))
    .update(JSON.stringify(dependencies))
    .digest('hex');
}

async function pack() {
  const destination = mkdtempSync(join(tmpdir(), 'closewait-pack-'));
  // --ignore-scripts: `npm test` has just built dist/; prepack would build it again.
  const { stdout } = await run(
    npm,
    ['pack', '--ignore-scripts', '--json', '--pack-destination', destination],
    { cwd: root, shell: process.platform === 'win32' },
  );
  const [{ filename }] = JSON.parse(stdout);
  return { destination, tarball: join(destination, filename) };
}

async function install(dir, tarball) {
  const started = performance.now();
  const stamp = stampOf(dir);
  const stampFile = join(dir, 'node_modules', STAMP);
  let installed = false;
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    await run(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: dir,
      shell: process.platform === 'win32',
    });
    writeFileSync(stampFile, stamp);
    installed = true;
  }
  const target = join(dir, 'node_modules', 'closewait');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`examples: ${dir.slice(root.length)} ${installed ? 'installed' : 'up to date'} (${seconds} s)`);
}

const started = performance.now();
const { destination, tarball } = await pack();
try {
  const queue = [...examples];
  const workers = Array.from({ length: PARALLEL }, async () => {
    for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) await install(dir, tarball);
  });
  await Promise.all(workers);
} finally {
  rmSync(destination, { recursive: true, force: true });
}
console.log(`examples: ${examples.length} projects ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
