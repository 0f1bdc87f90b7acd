import pino, { type BaseLogger, type Bindings } from 'pino';
import type { AutoDestroyOptions, ResolvedAutoDestroy } from './auto-destroy.js';
import { InvalidOptionError } from './errors.js';
import type { LeakKind } from './types.js';

/** How creation stacks are captured. Stacks are the expensive part of tracking a socket. */
export type StackMode = 'all' | 'none' | { sampleRate: number };

export interface SocketMonitorOptions {
  /**
   * How long a half-closed socket may stay quiet before it is a leak, in ms. Default 30_000.
   * The peer's FIN with no `end()`/`destroy()` and nothing written for this long is a leak.
   */
  graceMs?: number;
  /**
   * `'all'`, `'none'` or `{ sampleRate }` (0..1). Default: `'all'` when `NODE_ENV === 'test'`,
   * otherwise `{ sampleRate: 0.01 }`. Sampling is adaptive: once a destination has leaked
   * without a stack, its later sockets are captured in full.
   */
  stacks?: StackMode;
  /** Frames kept per creation stack. Default 30 (Node's own frames are counted too). */
  stackLimit?: number;
  /**
   * How often sockets are swept for a FIN that Node has read but the app never consumed
   * (`unconsumed-fin`), in ms. Default: graceMs / 4, clamped to 50..1000.
   */
  sweepIntervalMs?: number;
  /**
   * Also see `new net.Socket().connect()` and `tls.connect()` on Node versions that don't
   * announce them on `net.client.socket` (Node < 22.17 / 24.2 — nodejs/node#58349), by wrapping
   * `net.Socket.prototype.connect`. Off by default: it is the only prototype patch we make.
   */
  patchSocketConnect?: boolean;
  /** Destroy leaks that outlive `afterMs` (off by default): see AutoDestroyOptions. */
  autoDestroy?: AutoDestroyOptions | false;
  /**
   * Linux: compare with the kernel's view (/proc/net/tcp) every this many ms, to confirm leaks
   * and find `unread-fin` ones Node cannot see. 0 (default) = only when `kernelCheck()` is
   * called. Each check reads the namespace's whole TCP table: keep it low-frequency.
   */
  kernelCheckIntervalMs?: number;
  /**
   * Where leak lines go: the app's pino logger (closewait logs through a child with
   * `{ component: 'closewait' }`), or `false` for none. Default: pino to stderr at 'warn'.
   */
  logger?: PinoLikeLogger | false;
  /**
   * At most `perSite` leak lines per `intervalMs` for one site (a group of the report); past
   * that, the site's leaks are counted and logged in one line per interval.
   * Default `{ perSite: 10, intervalMs: 60_000 }`.
   */
  logRate?: { perSite?: number; intervalMs?: number };
  /** Log `report()` counts every this many ms. Default 0: off. */
  summaryIntervalMs?: number;
  /**
   * Keep the query string of request targets in leak records. Default false: userinfo, matrix
   * parameters, the fragment and the query are removed, since they often carry secrets.
   */
  keepQuery?: boolean;
}

/** A pino logger, or anything with its signatures (Fastify's `fastify.log`). */
export interface PinoLikeLogger extends Pick<BaseLogger, 'error' | 'warn' | 'info'> {
  child(bindings: Bindings): Pick<BaseLogger, 'error' | 'warn' | 'info'> & {
    isLevelEnabled?(level: string): boolean;
  };
}

export interface ResolvedOptions {
  graceMs: number;
  /** 0 = no stacks, 1 = every stack. */
  sampleRate: number;
  stackLimit: number;
  sweepIntervalMs: number;
  patchSocketConnect: boolean;
  autoDestroy: ResolvedAutoDestroy | undefined;
  kernelCheckIntervalMs: number;
  /** Undefined: logging is off. */
  logger: PinoLikeLogger | undefined;
  logRate: { perSite: number; intervalMs: number };
  /** 0 = no periodic summary. */
  summaryIntervalMs: number;
  keepQuery: boolean;
}

const KNOWN_OPTIONS = new Set([
  'graceMs',
  'stacks',
  'stackLimit',
  'sweepIntervalMs',
  'patchSocketConnect',
  'autoDestroy',
  'kernelCheckIntervalMs',
  'logger',
  'logRate',
  'summaryIntervalMs',
  'keepQuery',
]);

/** Why the option is wrong, naming it and the value received: fails at creation, not later. */
export function invalidOption(name: string, expected: string, value: unknown): InvalidOptionError {
  return new InvalidOptionError(name, expected, value);
}

function checkFiniteInRange(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidOption(name, `a finite number from ${min} to ${max}`, value);
  }
  return value;
}

function resolveSampleRate(stacks: unknown): number {
  if (stacks === undefined) return process.env.NODE_ENV === 'test' ? 1 : 0.01;
  if (stacks === 'all') return 1;
  if (stacks === 'none') return 0;
  if (typeof stacks === 'object' && stacks !== null && 'sampleRate' in stacks) {
    for (const key of Object.keys(stacks)) {
      if (key !== 'sampleRate') {
        throw invalidOption(
          `stacks.${key}`,
          'a known option (typo?)',
          (stacks as Record<string, unknown>)[key],
        );
      }
    }
    return checkFiniteInRange('stacks.sampleRate', stacks.sampleRate, 0, 1);
  }
  throw invalidOption('stacks', `'all', 'none' or { sampleRate: 0..1 }`, stacks);
}

export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('options', 'an object', options);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!KNOWN_OPTIONS.has(key)) throw invalidOption(key, 'a known option (typo?)', given[key]);
  }
  const graceMs =
    given.graceMs === undefined
      ? 30_000
      : checkFiniteInRange('graceMs', given.graceMs, 1, 2_147_483_647);
  const stackLimit =
    given.stackLimit === undefined
      ? 30
      : checkFiniteInRange('stackLimit', given.stackLimit, 1, 200);
  if (!Number.isInteger(stackLimit)) throw invalidOption('stackLimit', 'an integer', stackLimit);
  const sweepIntervalMs =
    given.sweepIntervalMs === undefined
      ? Math.min(1000, Math.max(50, Math.round(graceMs / 4)))
      : checkFiniteInRange('sweepIntervalMs', given.sweepIntervalMs, 10, 60_000);
  const patch = given.patchSocketConnect === undefined ? false : given.patchSocketConnect;
  if (typeof patch !== 'boolean') throw invalidOption('patchSocketConnect', 'a boolean', patch);
  const keepQuery = given.keepQuery === undefined ? false : given.keepQuery;
  if (typeof keepQuery !== 'boolean') throw invalidOption('keepQuery', 'a boolean', keepQuery);
  return {
    graceMs,
    sampleRate: resolveSampleRate(given.stacks),
    stackLimit,
    sweepIntervalMs,
    patchSocketConnect: patch,
    autoDestroy: resolveAutoDestroy(given.autoDestroy),
    kernelCheckIntervalMs:
      given.kernelCheckIntervalMs === undefined || given.kernelCheckIntervalMs === 0
        ? 0
        : checkFiniteInRange('kernelCheckIntervalMs', given.kernelCheckIntervalMs, 100, 86_400_000),
    logger: resolveLogger(given.logger),
    logRate: resolveLogRate(given.logRate),
    summaryIntervalMs:
      given.summaryIntervalMs === undefined || given.summaryIntervalMs === 0
        ? 0
        : checkFiniteInRange('summaryIntervalMs', given.summaryIntervalMs, 10, 2_147_483_647),
    keepQuery,
  };
}

function resolveLogger(logger: unknown): PinoLikeLogger | undefined {
  // Sync writes: leak lines are rare (rate-limited per site) and must survive a crash that
  // follows them; an async SonicBoom would also need an exit hook to flush.
  if (logger === undefined) {
    return pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true }));
  }
  if (logger === false) return undefined;
  const candidate = logger as Record<string, unknown> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    !['child', 'error', 'warn', 'info'].every((method) => typeof candidate[method] === 'function')
  ) {
    throw invalidOption('logger', 'a pino logger (child, error, warn, info) or false', logger);
  }
  return logger as PinoLikeLogger;
}

function resolveLogRate(value: unknown): ResolvedOptions['logRate'] {
  if (value === undefined) return { perSite: 10, intervalMs: 60_000 };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidOption('logRate', '{ perSite?, intervalMs? }', value);
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== 'perSite' && key !== 'intervalMs') {
      throw invalidOption(`logRate.${key}`, 'a known option (typo?)', given[key]);
    }
  }
  const perSite =
    given.perSite === undefined ? 10 : checkFiniteInRange('logRate.perSite', given.perSite, 1, 1e6);
  if (!Number.isInteger(perSite)) throw invalidOption('logRate.perSite', 'an integer', perSite);
  const intervalMs =
    given.intervalMs === undefined
      ? 60_000
      : checkFiniteInRange('logRate.intervalMs', given.intervalMs, 10, 2_147_483_647);
  return { perSite, intervalMs };
}

const AUTO_DESTROY_KEYS = new Set([
  'afterMs',
  'dryRun',
  'maxPerMinute',
  'filter',
  'unconsumedFin',
  'kernel',
]);

function resolveAutoDestroy(value: unknown): ResolvedAutoDestroy | undefined {
  if (value === undefined || value === false) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidOption(
      'autoDestroy',
      'false or { afterMs, dryRun?, maxPerMinute?, filter? }',
      value,
    );
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!AUTO_DESTROY_KEYS.has(key)) {
      throw invalidOption(`autoDestroy.${key}`, 'a known option (typo?)', given[key]);
    }
  }
  const afterMs = checkFiniteInRange('autoDestroy.afterMs', given.afterMs, 0, 2_147_483_647);
  const maxPerMinute =
    given.maxPerMinute === undefined
      ? 60
      : checkFiniteInRange('autoDestroy.maxPerMinute', given.maxPerMinute, 1, 1_000_000);
  const flags: Record<string, boolean> = {};
  for (const name of ['dryRun', 'unconsumedFin', 'kernel'] as const) {
    const flag = given[name] === undefined ? false : given[name];
    if (typeof flag !== 'boolean') throw invalidOption(`autoDestroy.${name}`, 'a boolean', flag);
    flags[name] = flag;
  }
  const filter = given.filter;
  if (filter !== undefined && typeof filter !== 'function') {
    throw invalidOption('autoDestroy.filter', 'a function (leak) => boolean', filter);
  }
  const kinds = new Set<LeakKind>(['half-closed', 'end-stuck']);
  if (flags.unconsumedFin) kinds.add('unconsumed-fin');
  if (flags.kernel) kinds.add('unread-fin');
  return {
    afterMs,
    dryRun: flags.dryRun === true,
    maxPerMinute,
    filter: filter as ResolvedAutoDestroy['filter'],
    kinds,
  };
}
