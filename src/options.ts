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
}

export interface ResolvedOptions {
  graceMs: number;
  /** 0 = no stacks, 1 = every stack. */
  sampleRate: number;
  stackLimit: number;
  sweepIntervalMs: number;
  patchSocketConnect: boolean;
}

const KNOWN_OPTIONS = new Set([
  'graceMs',
  'stacks',
  'stackLimit',
  'sweepIntervalMs',
  'patchSocketConnect',
]);

/** Why the option is wrong, naming it and the value received: fails at creation, not later. */
export function invalidOption(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(
    `closewait: option "${name}" must be ${expected}; received ${describeValue(value)}`,
  );
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
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
    return checkFiniteInRange('stacks.sampleRate', stacks.sampleRate, 0, 1);
  }
  throw invalidOption('stacks', `'all', 'none' or { sampleRate: 0..1 }`, stacks);
}

export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`closewait: options must be an object; received ${describeValue(options)}`);
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
  const patch = given.patchSocketConnect ?? false;
  if (typeof patch !== 'boolean') throw invalidOption('patchSocketConnect', 'a boolean', patch);
  return {
    graceMs,
    sampleRate: resolveSampleRate(given.stacks),
    stackLimit,
    sweepIntervalMs,
    patchSocketConnect: patch,
  };
}
