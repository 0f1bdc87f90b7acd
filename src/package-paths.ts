/**
 * Where closewait's own files are. Neither `import.meta.url` (a syntax error in the CommonJS
 * build) nor `__filename` (undefined in the ESM build) exists in both builds, so this file finds
 * itself from a stack frame: V8's call sites give the file as loaded, a `file:` URL for ESM and
 * a path for CommonJS. `prepareStackTrace` is swapped for the call so that source-map support
 * (Node's `--enable-source-maps`, Jest's) cannot report `src/*.ts` instead of the built file.
 */
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

function ownFile(): string {
  const previous = Error.prepareStackTrace;
  const holder: { stack?: unknown } = {};
  try {
    Error.prepareStackTrace = (_error, callSites) => callSites;
    Error.captureStackTrace(holder);
    const sites = holder.stack as NodeJS.CallSite[] | undefined;
    const file = Array.isArray(sites) ? sites[0]?.getFileName() : undefined;
    if (typeof file === 'string' && file !== '') {
      return file.startsWith('file:') ? fileURLToPath(file) : file;
    }
  } catch {
    // Fall through: a frozen Error or a host without call sites.
  } finally {
    Error.prepareStackTrace = previous;
  }
  return join(process.cwd(), 'package-paths.js');
}

/** The running build's directory: `src/` (tests), `dist/esm/` or `dist/cjs/`. */
export const buildDir: string = dirname(ownFile());

/** The package's root, where package.json is. */
export const packageRoot: string = (() => {
  const parent = dirname(buildDir);
  const format = buildDir.slice(parent.length + 1);
  const isDist = (format === 'esm' || format === 'cjs') && parent.endsWith(`${sep}dist`);
  return isDist ? dirname(parent) : parent;
})();

/**
 * Directories whose frames are closewait's own: both builds, and the sources that source maps
 * point frames at.
 */
export const ownDirs: readonly string[] = [
  join(packageRoot, 'dist') + sep,
  join(packageRoot, 'src') + sep,
];
