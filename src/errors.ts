import { relative, sep } from 'node:path';
import { epochNow } from './clock.js';
import { locationOf } from './tracking/stack.js';
import type { LeakKind, SocketDetail } from './types.js';

/** What was wrong with a socket a test left behind; `open` only in mode `'open'`. */
export type LeakedSocketKind = LeakKind | 'open';

/** A socket a test (or scope) left behind, as an assertion found it. */
export interface LeakedSocket extends SocketDetail {
  kind: LeakedSocketKind;
  /** The creation stack's first frame in the test file, when the stack passes through it. */
  testSite: string | undefined;
}

/** Which sockets an assertion blamed: half-closed ones only, or every one still open. */
export type SocketLeakMode = 'close-wait' | 'open';

/**
 * Thrown by `assertNoSocketLeaks()` and `scope.assert()`: the message lists each socket with its
 * kind, direction, addresses, creation site and stack; `leaks` holds the same as data.
 */
export class SocketLeakError extends Error {
  readonly code = 'ERR_CLOSEWAIT_SOCKET_LEAK';
  declare readonly leaks: LeakedSocket[];
  declare readonly mode: SocketLeakMode;

  constructor(leaks: LeakedSocket[], mode: SocketLeakMode, timeoutMs: number) {
    super(formatLeaks(leaks, mode, timeoutMs));
    this.name = 'SocketLeakError';
    // Where the error was thrown is closewait's own check, called by the runner: no help to
    // anyone. Without those frames, runners take the first frame in the message, the app's line
    // that made the socket, for their code frame (Jest and Vitest do).
    this.stack = `${this.name}: ${this.message}`;
    // Not enumerable: the message already shows them, and runners that print an error's own
    // properties (node:test, util.inspect) would repeat every stack as one long JSON line.
    Object.defineProperties(this, {
      leaks: { value: leaks, enumerable: false },
      mode: { value: mode, enumerable: false },
    });
  }
}

/**
 * A bad option, thrown where it is given (at creation, not later): the message names the option
 * and shows the value received; `option` names it for code. A TypeError, as Node's own
 * ERR_INVALID_ARG_* are, so `instanceof TypeError` keeps working.
 */
export class InvalidOptionError extends TypeError {
  readonly code = 'ERR_CLOSEWAIT_INVALID_OPTION';

  constructor(
    /** The option as the user spells it: `graceMs`, `stacks.sampleRate`, `--watch`. */
    readonly option: string,
    /** What it must be, in words: `a finite number from 1 to 2147483647`. */
    readonly expected: string,
    value: unknown,
  ) {
    super(`closewait: option "${option}" must be ${expected}; received ${describeValue(value)}`);
  }
}

/** A value as the message shows it: strings quoted, objects as JSON where they can be. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object' && value !== null) {
    try {
      const json = JSON.stringify(value);
      // A huge object must not make a huge message.
      return json.length > 200 ? `${json.slice(0, 197)}...` : json;
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

/** Thrown when the monitor an assertion relies on was stopped: it could no longer see sockets. */
export class SocketMonitorStoppedError extends Error {
  readonly code = 'ERR_CLOSEWAIT_MONITOR_STOPPED';

  constructor() {
    super(
      'closewait: the monitor given as option "monitor" was stopped before the assertion; ' +
        'a stopped monitor sees no socket, so it cannot prove that none leaked',
    );
    this.name = 'SocketMonitorStoppedError';
  }
}

/**
 * A kernel check that could not read /proc (descriptors exhausted, no permission): it saw
 * nothing, so nothing was declared or resolved from it. `cause` is Node's error (`code` EMFILE,
 * ENFILE, EACCES, ...).
 */
export class KernelReadError extends Error {
  readonly code = 'ERR_CLOSEWAIT_KERNEL_READ';

  constructor(cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      `closewait: the kernel check could not read /proc (${detail}); ` +
        'it saw nothing, so it declared and resolved nothing',
      { cause },
    );
    this.name = 'KernelReadError';
  }
}

function shortPath(location: string): string {
  if (!location.startsWith(sep)) return location;
  const shorter = relative(process.cwd(), location);
  return shorter.startsWith('..') ? location : shorter;
}

function endpoint(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return '?';
  return address.includes(':') ? `[${address}]:${port ?? '?'}` : `${address}:${port ?? '?'}`;
}

function headline(leak: LeakedSocket): string {
  const local = endpoint(leak.localAddress, leak.localPort);
  const remote = endpoint(leak.remoteAddress, leak.remotePort);
  const tls = leak.tls ? 'TLS ' : '';
  const arrow = leak.direction === 'server' ? `${local} <- ${remote}` : `${local} -> ${remote}`;
  return `${leak.kind} · ${tls}${leak.direction} socket ${arrow}`;
}

function agoMs(time: number | undefined, now: number): string {
  return time === undefined ? '' : ` ${Math.max(0, now - time)} ms ago`;
}

function explanation(leak: LeakedSocket, now: number): string {
  switch (leak.kind) {
    case 'half-closed':
      return `the peer closed its side${agoMs(leak.peerEndedAt, now)}; this side never called end() or destroy()`;
    case 'end-stuck':
      return `the peer closed its side${agoMs(leak.peerEndedAt, now)}; this side's FIN waits behind ${leak.pendingWriteBytes} bytes the peer does not read`;
    case 'unconsumed-fin':
      return `the peer closed its side, but ${leak.unreadBytes} bytes in front of its FIN were never read, so 'end' never came`;
    case 'unread-fin':
      return `the kernel holds the peer's FIN behind bytes this side never read`;
    case 'open':
      return `still open${agoMs(leak.createdAt, now).replace(' ago', ' after it was created')}`;
  }
}

function whereLines(leak: LeakedSocket): string[] {
  const lines: string[] = [];
  const request = leak.request;
  if (leak.server !== undefined) {
    const { listenSite } = leak.server;
    const listen = listenSite === undefined ? '' : `, listen() at ${shortPath(listenSite)}`;
    lines.push(`accepted by server ${endpoint(leak.server.address, leak.server.port)}${listen}`);
  } else {
    const site = leak.appSite ?? leak.site;
    if (site !== undefined) lines.push(`created at ${shortPath(site)}`);
  }
  // A helper's line names the helper: the test's own line says which call of it leaked.
  if (leak.testSite !== undefined && leak.testSite !== (leak.appSite ?? leak.site)) {
    lines.push(`in the test at ${shortPath(leak.testSite)}`);
  }
  if (request !== undefined) {
    const handoff = request.handoff === undefined ? '' : ` (handed over on '${request.handoff}')`;
    lines.push(`request ${request.method} ${request.url}${handoff}`);
  }
  return lines;
}

function isAppFrame(frame: string): boolean {
  const location = locationOf(frame);
  return (
    location !== undefined &&
    /:\d+:\d+$/.test(location) &&
    !location.startsWith('node:') &&
    !location.includes('/node_modules/') &&
    !location.includes('\\node_modules\\')
  );
}

/** Node's own frames and undici's (bundled in Node for fetch, or installed): how, never where. */
function isTransportFrame(frame: string): boolean {
  const location = locationOf(frame);
  if (location === undefined) return true;
  return (
    location.startsWith('node:') ||
    !/:\d+:\d+$/.test(location) ||
    /[/\\]node_modules[/\\]undici[/\\]/.test(location)
  );
}

function framesWord(count: number): string {
  return count === 1 ? '1 frame' : `${count} frames`;
}

/**
 * The frames from the first of the app (or of a framework it called) down to the last of the
 * app. Above them, Node's and undici's internals say only how a socket was opened; below, only
 * the test runner and Node's task queue remain: twenty-odd lines that would bury the few that
 * matter. Each cut is one line saying how many frames it holds.
 */
function stackLines(leak: LeakedSocket): string[] {
  if (leak.stack === undefined) {
    return ["no creation stack: the monitor samples stacks; give it stacks: 'all'"];
  }
  const frames = leak.stack
    .split('\n')
    .map((frame) => frame.trim())
    // Our diagnostics channel handler's caller: always there, never news.
    .filter((frame) => frame !== '' && !frame.includes('(node:diagnostics_channel:'));
  let shown = frames.length;
  while (shown > 0 && !isAppFrame(frames[shown - 1]!)) shown--;
  if (shown === 0) shown = frames.length;
  let first = 0;
  while (first < shown - 1 && isTransportFrame(frames[first]!)) first++;
  const lines = frames.slice(first, shown).map((frame) => `  ${frame}`);
  if (first > 0) lines.unshift(`  … ${framesWord(first)} of Node`);
  if (shown < frames.length) {
    lines.push(`  … ${framesWord(frames.length - shown)} of Node and node_modules`);
  }
  const label = leak.server === undefined ? 'creation stack:' : 'stack of the listen() call:';
  return [label, ...lines];
}

/**
 * Sockets the message describes in full; the rest are counted. A test that leaks 2,000 sockets
 * printed ~13,000 lines: the first few name the bug as well, and `error.leaks` has every one.
 */
const MAX_LISTED = 20;

function formatLeaks(leaks: LeakedSocket[], mode: SocketLeakMode, timeoutMs: number): string {
  // Leak times come from the real clock; a test's fake `Date` would make these ages nonsense.
  const now = epochNow();
  const count = leaks.length === 1 ? '1 socket' : `${leaks.length.toLocaleString('en-US')} sockets`;
  const what = mode === 'open' ? 'left open' : 'left half-closed (CLOSE_WAIT)';
  const parts = [`closewait: ${count} ${what}, still there after waiting ${timeoutMs} ms`];
  leaks.slice(0, MAX_LISTED).forEach((leak, index) => {
    const body = [explanation(leak, now), ...whereLines(leak), ...stackLines(leak)];
    parts.push(`\n${index + 1}) ${headline(leak)}\n${body.map((line) => `   ${line}`).join('\n')}`);
  });
  const unlisted = leaks.length - MAX_LISTED;
  if (unlisted > 0) {
    const more =
      unlisted === 1 ? '1 more socket' : `${unlisted.toLocaleString('en-US')} more sockets`;
    parts.push(`\n… and ${more}, not listed here (all are in error.leaks)`);
  }
  parts.push(
    '\nClose these sockets before the test ends, or ignore known long-lived ones ' +
      '(options ignore.sites, ignore.ports, ignore.match).',
  );
  return parts.join('\n');
}
