import { fileURLToPath, pathToFileURL } from 'node:url';
import { ownDirs } from '../package-paths.js';

/**
 * A captured creation stack. V8 records the frames when `captureStackTrace` runs but formats
 * them into a string only when `.stack` is first read, so a stack that never leaks costs the
 * frame walk and no string building.
 */
export interface StackHolder {
  stack?: string;
}

export function captureStack(limit: number, above: Function): StackHolder {
  const holder: StackHolder = {};
  const previous = Error.stackTraceLimit;
  Error.stackTraceLimit = limit;
  Error.captureStackTrace(holder, above);
  Error.stackTraceLimit = previous;
  return holder;
}

/** The frames of a captured stack, without the `Error` header line. */
export function framesOf(holder: StackHolder | undefined): string | undefined {
  const text = holder?.stack;
  if (typeof text !== 'string') return undefined;
  const firstFrame = text.indexOf('\n    at ');
  if (firstFrame === -1) return undefined;
  // Stacks captured in a channel subscriber start with the channel's own publish frames: they
  // are how we listened, not where the socket came from.
  const lines = text.slice(firstFrame + 1).split('\n');
  let skip = 0;
  while (skip < lines.length - 1 && lines[skip]!.includes('(node:diagnostics_channel:')) skip++;
  return lines.slice(skip).join('\n');
}

/** `/abs/file.js:10:5` from a V8 frame line, or undefined for frames with no location. */
export function locationOf(frameLine: string): string | undefined {
  let text = frameLine.trim();
  if (!text.startsWith('at ')) return undefined;
  text = text.slice(3);
  const open = text.lastIndexOf('(');
  if (text.endsWith(')') && open !== -1) text = text.slice(open + 1, -1);
  else if (text.startsWith('async ')) text = text.slice(6);
  if (text.startsWith('file://')) {
    try {
      const end = text.search(/:\d+:\d+$/);
      const url = end === -1 ? text : text.slice(0, end);
      text = fileURLToPath(url) + (end === -1 ? '' : text.slice(end));
    } catch {
      // Keep the URL as written: a location we can't convert is still a location.
    }
  }
  return text;
}

function isNodeInternal(location: string): boolean {
  return (
    location.startsWith('node:') ||
    location.startsWith('internal/') ||
    location === 'native' ||
    location.startsWith('<anonymous>') ||
    !/:\d+:\d+$/.test(location)
  );
}

/** Frames from this library's own files are skipped when naming a site. */
const ownPrefixes = ownDirs.flatMap((dir) => [dir, pathToFileURL(dir).href]);

function isOwn(location: string): boolean {
  return ownPrefixes.some((prefix) => location.startsWith(prefix));
}

export interface Sites {
  /** First frame that is neither Node's internals nor closewait. */
  site: string | undefined;
  /** First frame outside node_modules (and outside Node and closewait). */
  appSite: string | undefined;
}

export function sitesOf(frames: string | undefined): Sites {
  let site: string | undefined;
  let appSite: string | undefined;
  if (frames === undefined) return { site, appSite };
  for (const line of frames.split('\n')) {
    const location = locationOf(line);
    if (location === undefined || isNodeInternal(location) || isOwn(location)) continue;
    site ??= location;
    if (!location.includes('/node_modules/') && !location.includes('\\node_modules\\')) {
      appSite = location;
      break;
    }
  }
  return { site, appSite };
}
