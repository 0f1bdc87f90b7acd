// `npm run build`: the ESM and CommonJS builds of every entry point, compiled side by side
// (two tsc processes: together they take about as long as one on two cores).
// dist/esm/ is ESM by the root package.json's "type"; dist/cjs/ gets its own package.json
// saying "commonjs", so Node, Jest and bundlers load its .js files as CommonJS.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function compile(project) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code === 0 ? 0 : (code ?? signal)));
  });
}

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const results = await Promise.all([compile('tsconfig.build.json'), compile('tsconfig.cjs.json')]);
if (results.some((result) => result !== 0)) {
  console.error(`build: tsc failed (${results.join(', ')})`);
  process.exit(1);
}
mkdirSync(new URL('../dist/cjs', import.meta.url), { recursive: true });
writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');
chmodSync(new URL('../dist/esm/cli.js', import.meta.url), 0o755);
