/**
 * Test-suite assertions, for any runner: `assertNoSocketLeaks()` checks every socket the monitor
 * tracks, `socketLeakScope()` only those created after the scope. Both judge the sockets' live
 * state, so a leak fails the test at once instead of after the monitor's `graceMs`.
 */

import { fileURLToPath } from 'node:url';
import { isRegExp } from 'node:util/types';
import { monotonicNow, setImmediateReal, setTimer } from '../clock.js';
import {
  type LeakedSocket,
  type LeakedSocketKind,
  SocketLeakError,
  type SocketLeakMode,
  SocketMonitorStoppedError,
} from '../errors.js';
import { type SocketMonitor, trackerOf } from '../monitor.js';
import { invalidOption } from '../options.js';
import { kindNow } from '../rules/leak-rules.js';
import { captureStack, framesOf, locationOf, sitesOf } from '../tracking/stack.js';
import type { SocketDetail, TrackedSocket, TrackedSocketState } from '../types.js';
import { sharedTestingState } from './shared-monitor.js';

export {
  type LeakedSocket,
  type LeakedSocketKind,
  SocketLeakError,
  type SocketLeakMode,
  SocketMonitorStoppedError,
};

/** Sockets an assertion never blames: known long-lived ones (a database pool, a shared server). */
export interface SocketLeakIgnore {
  /**
   * Creation sites: a string is looked for in the socket's site, appSite and stack (for accepted
   * sockets, the server's listen() stack); a RegExp is tested against each of them.
   */
  sites?: ReadonlyArray<string | RegExp>;
  /** Ports, local or remote: `[5432]` ignores every connection to or from port 5432. */
  ports?: readonly number[];
  /** Ignores the sockets for which it returns true. */
  match?: (socket: SocketDetail) => boolean;
}

export interface SocketLeakAssertOptions {
  /**
   * `'close-wait'` (default): a socket is a leak when the peer closed its side and this side did
   * not (half-closed, end-stuck, or a FIN behind bytes never read). `'open'`: every socket still
   * open is a leak.
   */
  mode?: SocketLeakMode;
  /**
   * How long to wait for leaking sockets to close by themselves before failing, in ms; the
   * assertion returns as soon as none is left. Default 500: a socket the test destroyed closes
   * on a later tick, and a FIN in flight takes a loop turn or two.
   */
  timeoutMs?: number;
  ignore?: SocketLeakIgnore;
}

export interface SocketLeakCheckOptions extends SocketLeakAssertOptions {
  /**
   * The test file: the first frame of each creation stack in it is named as the test's line.
   * Default: the file that called `socketLeakScope()` or `assertNoSocketLeaks()`. A setup file
   * passes the running test's file (Jest: `expect.getState().testPath`).
   */
  testFile?: string;
  /**
   * The monitor whose sockets are checked; it must be running. Default: one monitor shared by
   * the process, started when `closewait/testing` is first imported, with every stack captured.
   */
  monitor?: SocketMonitor;
}

interface ResolvedCheck {
  mode: SocketLeakMode;
  timeoutMs: number;
  sites: Array<string | RegExp>;
  ports: Set<number>;
  match: ((socket: SocketDetail) => boolean) | undefined;
}

const DEFAULT_TIMEOUT_MS = 500;
/** How often sockets that may still close are looked at again while waiting. */
const POLL_MS = 10;
/**
 * The first looks come after a loop turn instead: a socket destroyed just before the assertion
 * (by an afterEach hook) emits 'close' from libuv's close phase, which follows setImmediate's.
 * Measured on Node 20, 200 rounds of destroy() then assert(): median 0.18 ms this way, 10.4 ms
 * when every look waited POLL_MS; a clean assert() takes ~5 µs either way.
 */
const TURNS_FIRST = 3;
const KNOWN_OPTIONS = new Set(['mode', 'timeoutMs', 'ignore']);
/** Options that shape a scope when it is made; `assert()` cannot change them. */
const CREATION_OPTIONS = new Set(['monitor', 'testFile']);
/** Enough to get past our own frames (caller, scope, constructor) to the app's. */
const CALLER_FRAMES = 12;
const KNOWN_IGNORE = new Set(['sites', 'ports', 'match']);

/**
 * Started at import, not at the first assertion: an assertion can only judge sockets tracked
 * since their creation, and a test file imports this before it opens any socket. No logger: the
 * failed assertion is the report, and a test run should not print leak lines.
 */
const sharedMonitor = sharedTestingState().monitor;

function resolveIgnore(ignore: unknown): Pick<ResolvedCheck, 'sites' | 'ports' | 'match'> {
  const resolved: Pick<ResolvedCheck, 'sites' | 'ports' | 'match'> = {
    sites: [],
    ports: new Set(),
    match: undefined,
  };
  if (ignore === undefined) return resolved;
  if (typeof ignore !== 'object' || ignore === null || Array.isArray(ignore)) {
    throw invalidOption('ignore', 'an object { sites, ports, match }', ignore);
  }
  const given = ignore as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!KNOWN_IGNORE.has(key)) throw invalidOption(`ignore.${key}`, 'a known option', given[key]);
  }
  if (given.sites !== undefined) {
    if (!Array.isArray(given.sites)) {
      throw invalidOption('ignore.sites', 'an array of strings or RegExps', given.sites);
    }
    given.sites.forEach((site: unknown, index) => {
      if (typeof site === 'string' && site !== '') resolved.sites.push(site);
      // A global or sticky RegExp keeps lastIndex between test() calls: a copy without those
      // flags matches the same way every time.
      // isRegExp, not instanceof: Jest hands over a RegExp made in a test file's own realm.
      else if (isRegExp(site)) {
        resolved.sites.push(new RegExp(site.source, site.flags.replace(/[gy]/g, '')));
      } else throw invalidOption(`ignore.sites[${index}]`, 'a non-empty string or a RegExp', site);
    });
  }
  if (given.ports !== undefined) {
    if (!Array.isArray(given.ports)) {
      throw invalidOption('ignore.ports', 'an array of port numbers', given.ports);
    }
    given.ports.forEach((port: unknown, index) => {
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
        throw invalidOption(`ignore.ports[${index}]`, 'an integer from 1 to 65535', port);
      }
      resolved.ports.add(port);
    });
  }
  if (given.match !== undefined && typeof given.match !== 'function') {
    throw invalidOption('ignore.match', 'a function (socket) => boolean', given.match);
  }
  resolved.match = given.match as ResolvedCheck['match'];
  return resolved;
}

function resolveCheck(options: unknown, atCreation: boolean): ResolvedCheck {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('options', 'an object', options);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!KNOWN_OPTIONS.has(key) && !(atCreation && CREATION_OPTIONS.has(key))) {
      throw invalidOption(key, 'a known option (typo?)', given[key]);
    }
  }
  const mode = given.mode ?? 'close-wait';
  if (mode !== 'close-wait' && mode !== 'open') {
    throw invalidOption('mode', `'close-wait' or 'open'`, mode);
  }
  const timeoutMs = given.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw invalidOption('timeoutMs', 'a finite number of ms, 0 or more', timeoutMs);
  }
  return { mode, timeoutMs, ...resolveIgnore(given.ignore) };
}

function resolveMonitor(monitor: unknown): SocketMonitor {
  if (monitor === undefined) return sharedMonitor;
  const candidate = monitor as Partial<SocketMonitor> | null;
  // Duck-typed: two copies of closewait in one tree would fail an instanceof check.
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.sockets !== 'function' ||
    typeof candidate.describe !== 'function' ||
    typeof candidate.leaks !== 'function'
  ) {
    throw invalidOption('monitor', 'a SocketMonitor from createSocketMonitor()', monitor);
  }
  if (candidate.running !== true) {
    throw invalidOption('monitor', 'a started monitor (call .start())', 'a stopped monitor');
  }
  return monitor as SocketMonitor;
}

/** States that are a leak in mode 'close-wait': the peer closed its side, this side did not. */
const HALF_CLOSED_STATES: ReadonlySet<TrackedSocketState> = new Set([
  'peer-ended',
  'fin-unconsumed',
  'leaked',
]);

function isIgnored(socket: TrackedSocket, detail: SocketDetail, check: ResolvedCheck): boolean {
  if (socket.localPort !== undefined && check.ports.has(socket.localPort)) return true;
  if (socket.remotePort !== undefined && check.ports.has(socket.remotePort)) return true;
  if (check.sites.length > 0) {
    const texts = [detail.site, detail.appSite, detail.stack].filter(
      (text): text is string => text !== undefined,
    );
    for (const pattern of check.sites) {
      const found =
        typeof pattern === 'string'
          ? texts.some((text) => text.includes(pattern))
          : texts.some((text) => pattern.test(text));
      if (found) return true;
    }
  }
  return check.match?.(detail) === true;
}

/**
 * Names the leak from the live state, by the same rules the monitor applies (rules/), grace
 * aside: a test is over, so a socket the peer ended that this side never closed is a leak now.
 */
function kindOf(socket: TrackedSocket, monitor: SocketMonitor): LeakedSocketKind {
  const record = trackerOf(monitor)?.recordById(socket.id);
  if (record !== undefined) return record.leak?.kind ?? kindNow(record) ?? 'open';
  // A monitor from another copy of closewait: its state is all there is to go on.
  if (socket.state === 'fin-unconsumed') return 'unconsumed-fin';
  if (socket.state === 'open') return 'open';
  return 'half-closed';
}

/** What an assertion looks at: one monitor's sockets with ids above `afterId`. */
interface Target {
  monitor: SocketMonitor;
  afterId: number;
  testFile: string | undefined;
}

function resolveTestFile(testFile: unknown): string | undefined {
  if (testFile === undefined) {
    // The first frame outside closewait and node_modules: the test file, or a setup file.
    const { appSite } = sitesOf(framesOf(captureStack(CALLER_FRAMES, resolveTestFile)));
    return appSite?.replace(/:\d+:\d+$/, '');
  }
  if (typeof testFile !== 'string' || testFile === '') {
    throw invalidOption('testFile', 'a file path or file: URL', testFile);
  }
  return testFile.startsWith('file:') ? fileURLToPath(testFile) : testFile;
}

function testSiteOf(stack: string | undefined, testFile: string | undefined): string | undefined {
  if (stack === undefined || testFile === undefined) return undefined;
  for (const frame of stack.split('\n')) {
    const location = locationOf(frame);
    if (location?.startsWith(`${testFile}:`)) return location;
  }
  return undefined;
}

/**
 * Ids of the scope's sockets the kernel shows in CLOSE_WAIT with the peer's FIN still unread by
 * Node, behind bytes nobody read (a paused reader): Node's own state says only 'open' for them,
 * or, for TLS, 'fin-unconsumed' (its stream ends on close_notify, before the TCP FIN). The test
 * has ended, so no grace is waited for: the FIN is there and nobody will read it. /proc is read
 * only when some socket of the scope can be such (Linux; elsewhere the check says unsupported
 * and finds nothing).
 */
async function kernelHeldFins(target: Target): Promise<ReadonlySet<number>> {
  const { monitor, afterId } = target;
  if (typeof monitor.kernelCheck !== 'function') return new Set();
  const mayHoldFin = (socket: TrackedSocket) =>
    socket.state === 'open' || (socket.tls && socket.state === 'fin-unconsumed');
  if (!monitor.sockets().some((socket) => socket.id > afterId && mayHoldFin(socket))) {
    return new Set();
  }
  const result = await monitor.kernelCheck();
  return new Set(result.hidden.map((held) => held.socket.id).filter((id) => id > afterId));
}

function leaksNow(
  target: Target,
  check: ResolvedCheck,
  kernelHeld: ReadonlySet<number>,
): LeakedSocket[] {
  const { monitor, afterId, testFile } = target;
  const found: LeakedSocket[] = [];
  for (const socket of monitor.sockets()) {
    if (socket.id <= afterId) continue;
    const heldByKernel = kernelHeld.has(socket.id);
    if (check.mode === 'close-wait' && !HALF_CLOSED_STATES.has(socket.state) && !heldByKernel) {
      continue;
    }
    const detail = monitor.describe(socket.id);
    if (detail === undefined || isIgnored(socket, detail, check)) continue;
    found.push({
      ...detail,
      kind: heldByKernel ? 'unread-fin' : kindOf(socket, monitor),
      testSite: testSiteOf(detail.stack, testFile),
    });
  }
  return found;
}

async function assertNone(target: Target, check: ResolvedCheck): Promise<void> {
  // The real clock and timers (src/clock.ts): under a test's fake timers a `performance.now()`
  // deadline would never pass and a `setTimeout` wait would never end.
  const deadline = monotonicNow() + check.timeoutMs;
  let kernelHeld: ReadonlySet<number> = new Set();
  for (let look = 1; ; look++) {
    if (!target.monitor.running) throw new SocketMonitorStoppedError();
    if (look === 1 && check.mode === 'close-wait') kernelHeld = await kernelHeldFins(target);
    let leaks = leaksNow(target, check, kernelHeld);
    if (leaks.length === 0) return;
    const remaining = deadline - monotonicNow();
    if (remaining <= 0) {
      if (kernelHeld.size > 0) {
        // Blamed on the kernel's word from the first look: ask again before failing the test.
        kernelHeld = await kernelHeldFins(target);
        leaks = leaksNow(target, check, kernelHeld);
        if (leaks.length === 0) return;
      }
      throw new SocketLeakError(leaks, check.mode, check.timeoutMs);
    }
    // Not unref()'d: the caller awaits this promise, and the wait is bounded by timeoutMs. An
    // unref()'d timer would let a script's top-level `await` end with the promise unsettled.
    await new Promise((resolve) => {
      if (look <= TURNS_FIRST) setImmediateReal(resolve);
      else setTimer(resolve, Math.min(POLL_MS, remaining));
    });
  }
}

/** Sockets created from here on; `assert()` checks them and nothing from before. */
export class SocketLeakScope {
  readonly #target: Target;
  readonly #options: SocketLeakAssertOptions;

  constructor(options?: SocketLeakCheckOptions) {
    resolveCheck(options, true);
    const { monitor: given, testFile, ...assertOptions } = options ?? {};
    const monitor = resolveMonitor(given);
    // Ids grow with every socket the monitor tracks: whatever is open now has an id at most
    // this, and every socket tracked later gets a larger one.
    let afterId = 0;
    for (const socket of monitor.sockets()) afterId = Math.max(afterId, socket.id);
    this.#target = { monitor, afterId, testFile: resolveTestFile(testFile) };
    this.#options = assertOptions;
  }

  /**
   * Rejects with a `SocketLeakError` when a socket created in the scope leaked; waits up to
   * `timeoutMs` for such sockets to close first. `options` override the scope's for this call.
   */
  async assert(options?: SocketLeakAssertOptions): Promise<void> {
    await assertNone(this.#target, resolveCheck({ ...this.#options, ...options }, false));
  }
}

/** Starts a scope: `scope.assert()` later checks only the sockets created after this call. */
export function socketLeakScope(options?: SocketLeakCheckOptions): SocketLeakScope {
  return new SocketLeakScope(options);
}

/**
 * Rejects with a `SocketLeakError` when any socket the monitor tracks leaked (every socket opened
 * since `closewait/testing` was imported, with the shared monitor); waits up to `timeoutMs` for
 * such sockets to close first.
 */
export async function assertNoSocketLeaks(options?: SocketLeakCheckOptions): Promise<void> {
  const check = resolveCheck(options, true);
  const monitor = resolveMonitor(options?.monitor);
  await assertNone({ monitor, afterId: 0, testFile: resolveTestFile(options?.testFile) }, check);
}
