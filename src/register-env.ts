import { InvalidOptionError } from './errors.js';
import { resolveOptions, type SocketMonitorOptions } from './options.js';

/**
 * The environment variables `closewait/register` reads. Each maps to one monitor option or one
 * piece of the preload; an unset or empty variable keeps the default.
 */
export const REGISTER_ENV = {
  CLOSEWAIT_GRACE_MS: 'graceMs: ms a half-closed socket may stay quiet before it is a leak',
  CLOSEWAIT_STACKS: "stacks: 'all', 'none', or a sample rate from 0 to 1",
  CLOSEWAIT_AUTO_DESTROY_MS: 'autoDestroy.afterMs: destroy leaks older than this many ms',
  CLOSEWAIT_AUTO_DESTROY_DRY_RUN: 'autoDestroy.dryRun: only log what would be destroyed',
  CLOSEWAIT_KERNEL_CHECK_MS: 'kernelCheckIntervalMs: compare with /proc/net/tcp this often',
  CLOSEWAIT_PATCH_CONNECT: 'patchSocketConnect: see new net.Socket().connect() on Node < 22.17',
  CLOSEWAIT_SUMMARY_MS: 'summaryIntervalMs: log the report counts this often',
  CLOSEWAIT_LOG_LEVEL: 'pino level of the leak log on stderr',
  CLOSEWAIT_HEALTH_PORT: 'port of the side server with /health/sockets and /metrics',
  CLOSEWAIT_HEALTH_HOST: 'address the side server binds to',
  CLOSEWAIT_HEALTH_VERBOSE: 'add sites, stacks and addresses to the health payload',
  CLOSEWAIT_REPORT_FILE: 'write the report as JSON here at exit (%p: the pid)',
} as const;

export type RegisterEnvName = keyof typeof REGISTER_ENV;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type RegisterLogLevel = (typeof LOG_LEVELS)[number];

export interface HealthServerSettings {
  port: number;
  host: string;
  verbose: boolean;
}

/** What the preload does, once the environment has been read and checked. */
export interface RegisterSettings {
  /** Without `logger`: the preload makes the pino logger from `logLevel`. */
  monitor: Omit<SocketMonitorOptions, 'logger'>;
  logLevel: RegisterLogLevel;
  health: HealthServerSettings | undefined;
  /** With `%p` already replaced by the pid. */
  reportFile: string | undefined;
}

export type RegisterEnvResult =
  | { ok: true; settings: RegisterSettings }
  | { ok: false; problems: string[] };

/** Which variable sets each monitor option: a bad range names the variable, not the option. */
const OPTION_VARIABLE: Record<string, RegisterEnvName> = {
  graceMs: 'CLOSEWAIT_GRACE_MS',
  stacks: 'CLOSEWAIT_STACKS',
  'stacks.sampleRate': 'CLOSEWAIT_STACKS',
  'autoDestroy.afterMs': 'CLOSEWAIT_AUTO_DESTROY_MS',
  kernelCheckIntervalMs: 'CLOSEWAIT_KERNEL_CHECK_MS',
  summaryIntervalMs: 'CLOSEWAIT_SUMMARY_MS',
};

const WHOLE_NUMBER = /^\d+$/;
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;
const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);

function received(value: string): string {
  return JSON.stringify(value);
}

/**
 * Reads the CLOSEWAIT_* variables. Pure: nothing is started, nothing is printed. Every problem
 * is collected (the caller prints them on one line), and unknown CLOSEWAIT_* names are problems
 * too: a misspelt variable would otherwise silently keep its default.
 */
export function readRegisterEnv(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
): RegisterEnvResult {
  const problems: string[] = [];
  const get = (name: RegisterEnvName): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const wholeNumber = (name: RegisterEnvName): number | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    if (!WHOLE_NUMBER.test(value)) {
      problems.push(`${name} must be a whole number of milliseconds; received ${received(value)}`);
      return undefined;
    }
    return Number(value);
  };
  const flag = (name: RegisterEnvName): boolean | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    if (TRUE_WORDS.has(value.toLowerCase())) return true;
    if (FALSE_WORDS.has(value.toLowerCase())) return false;
    problems.push(`${name} must be 1/true/yes/on or 0/false/no/off; received ${received(value)}`);
    return undefined;
  };

  for (const name of Object.keys(env)) {
    if (name.startsWith('CLOSEWAIT_') && !(name in REGISTER_ENV)) {
      problems.push(`${name} is not a closewait variable (typo?)`);
    }
  }

  const monitor: RegisterSettings['monitor'] = {};
  const graceMs = wholeNumber('CLOSEWAIT_GRACE_MS');
  if (graceMs !== undefined) monitor.graceMs = graceMs;

  const stacks = get('CLOSEWAIT_STACKS');
  if (stacks === 'all' || stacks === 'none') monitor.stacks = stacks;
  else if (stacks !== undefined && DECIMAL.test(stacks)) {
    monitor.stacks = { sampleRate: Number(stacks) };
  } else if (stacks !== undefined) {
    problems.push(
      `CLOSEWAIT_STACKS must be all, none or a sample rate from 0 to 1; received ${received(stacks)}`,
    );
  }

  const afterMs = wholeNumber('CLOSEWAIT_AUTO_DESTROY_MS');
  const dryRun = flag('CLOSEWAIT_AUTO_DESTROY_DRY_RUN');
  if (afterMs !== undefined) monitor.autoDestroy = { afterMs, dryRun: dryRun ?? false };
  else if (dryRun !== undefined) {
    problems.push('CLOSEWAIT_AUTO_DESTROY_DRY_RUN needs CLOSEWAIT_AUTO_DESTROY_MS');
  }

  const kernelMs = wholeNumber('CLOSEWAIT_KERNEL_CHECK_MS');
  if (kernelMs !== undefined) monitor.kernelCheckIntervalMs = kernelMs;
  const summaryMs = wholeNumber('CLOSEWAIT_SUMMARY_MS');
  if (summaryMs !== undefined) monitor.summaryIntervalMs = summaryMs;
  const patch = flag('CLOSEWAIT_PATCH_CONNECT');
  if (patch !== undefined) monitor.patchSocketConnect = patch;

  const level = get('CLOSEWAIT_LOG_LEVEL') ?? 'warn';
  const logLevel = LOG_LEVELS.find((known) => known === level.toLowerCase());
  if (logLevel === undefined) {
    problems.push(
      `CLOSEWAIT_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; received ${received(level)}`,
    );
  }

  const health = readHealth(get, flag, problems);

  const reportFile = get('CLOSEWAIT_REPORT_FILE')?.replaceAll('%p', String(pid));

  // The ranges live in one place, options.ts: ask it, and name the variable in its answer.
  if (problems.length === 0) {
    try {
      resolveOptions({ ...monitor, logger: false });
    } catch (error) {
      problems.push(rangeProblem(error, env));
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    settings: { monitor, logLevel: logLevel ?? 'warn', health, reportFile },
  };
}

function readHealth(
  get: (name: RegisterEnvName) => string | undefined,
  flag: (name: RegisterEnvName) => boolean | undefined,
  problems: string[],
): HealthServerSettings | undefined {
  const portText = get('CLOSEWAIT_HEALTH_PORT');
  const host = get('CLOSEWAIT_HEALTH_HOST');
  const verbose = flag('CLOSEWAIT_HEALTH_VERBOSE');
  if (portText === undefined) {
    if (host !== undefined) problems.push('CLOSEWAIT_HEALTH_HOST needs CLOSEWAIT_HEALTH_PORT');
    return undefined;
  }
  const port = Number(portText);
  if (!WHOLE_NUMBER.test(portText) || port > 65_535) {
    problems.push(
      `CLOSEWAIT_HEALTH_PORT must be a port from 0 to 65535; received ${received(portText)}`,
    );
    return undefined;
  }
  return { port, host: host ?? '127.0.0.1', verbose: verbose ?? false };
}

function rangeProblem(error: unknown, env: NodeJS.ProcessEnv): string {
  if (!(error instanceof InvalidOptionError)) {
    const message = error instanceof Error ? error.message : String(error);
    return message.replace(/^closewait: /, '');
  }
  const name = OPTION_VARIABLE[error.option];
  if (name === undefined) return error.message.replace(/^closewait: /, '');
  return `${name} must be ${error.expected}; received ${received(env[name]?.trim() ?? '')}`;
}

/** The one line printed when the preload gives up: what was wrong, and what that means. */
export function problemLine(problems: readonly string[]): string {
  return `closewait: ${problems.join('; ')}. closewait is off in this process (pid ${process.pid}); the app runs unmonitored.\n`;
}
