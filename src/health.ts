import type { IncomingMessage, ServerResponse } from 'node:http';
import { epochNow } from './clock.js';
import { type SocketMonitor, trackerOf } from './monitor.js';
import { invalidOption } from './options.js';
import type { LeakGroup, SocketReportData } from './report/report.js';
import type { LeakKind, SocketDirection, SocketLeak, TrackedSocketState } from './types.js';

export interface HealthOptions {
  /** Leaks at which the check says `warn` (HTTP 200). Default 1. */
  warnAt?: number;
  /** Leaks at which the check says `fail` (HTTP 503). Default 100; `Infinity` never fails. */
  failAt?: number;
  /**
   * Add each leak group's site, stack and socket addresses. Default false: a health check is
   * often reachable from outside, and stacks, file paths and peer addresses map the app's
   * internals for anyone who can call it.
   */
  verbose?: boolean;
}

export interface ResolvedHealthOptions {
  warnAt: number;
  failAt: number;
  verbose: boolean;
}

export type HealthStatus = 'pass' | 'warn' | 'fail';

/** One group of leaks in a verbose payload. */
export interface HealthLeakGroup {
  where: string;
  kind: LeakKind;
  direction: SocketDirection;
  count: number;
  oldestAgeMs: number;
  site: string | undefined;
  appSite: string | undefined;
  stack: string | undefined;
  /** Under node:cluster, on the preload's side server: the process the group is in. */
  pid?: number;
  /** The group's first leaks (at most 20); `count` is always exact. */
  sockets: Array<{
    id: number;
    localAddress: string | undefined;
    localPort: number | undefined;
    remoteAddress: string | undefined;
    remotePort: number | undefined;
  }>;
}

/** The `closewait:leaks` check, as the application/health+json draft shapes a check. */
export interface HealthCheck {
  componentType: 'component';
  observedValue: number;
  observedUnit: 'sockets';
  status: HealthStatus;
  /** ISO 8601, when the value was observed. */
  time: string;
  /** Present unless `pass`. */
  output?: string;
  tracked: number;
  byState: Record<TrackedSocketState, number>;
  byKind: Record<LeakKind, number>;
  byDirection: Record<SocketDirection, number>;
  /** Verbose only; at most 20 groups, largest first. */
  groups?: HealthLeakGroup[];
  /**
   * Under node:cluster, on the preload's side server: the processes these counts add up (the
   * primary and each worker that has reported). Absent elsewhere.
   */
  processes?: number;
}

/** draft-inadarei-api-health-check: `status` and `checks`, keyed `component:measurement`. */
export interface HealthPayload {
  status: HealthStatus;
  description: string;
  checks: { 'closewait:leaks': [HealthCheck] };
}

export const HEALTH_CONTENT_TYPE = 'application/health+json';
const ALLOWED_METHODS = 'GET, HEAD, OPTIONS';
const MAX_GROUPS = 20;
const DESCRIPTION = 'CLOSE_WAIT socket leaks in this process (closewait)';

function checkThreshold(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 1 ||
    (Number.isFinite(value) && !Number.isInteger(value))
  ) {
    throw invalidOption(name, 'an integer of at least 1, or Infinity', value);
  }
  return value;
}

export function resolveHealthOptions(options: unknown): ResolvedHealthOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('health options', 'an object', options);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== 'warnAt' && key !== 'failAt' && key !== 'verbose') {
      throw invalidOption(
        key,
        'a known health option: warnAt, failAt, verbose (typo?)',
        given[key],
      );
    }
  }
  const warnAt = checkThreshold('warnAt', given.warnAt, 1);
  const failAt = checkThreshold('failAt', given.failAt, 100);
  if (warnAt > failAt) {
    throw invalidOption('warnAt', `at most failAt (${failAt})`, warnAt);
  }
  const verbose = given.verbose ?? false;
  if (typeof verbose !== 'boolean') throw invalidOption('verbose', 'a boolean', verbose);
  return { warnAt, failAt, verbose };
}

/** Duck-typed: two copies of closewait in one app make `instanceof` lie. */
export function checkMonitor(monitor: unknown): SocketMonitor {
  const candidate = monitor as Partial<SocketMonitor> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.report !== 'function' ||
    typeof candidate.leaks !== 'function'
  ) {
    throw invalidOption('monitor', 'a SocketMonitor from createSocketMonitor()', monitor);
  }
  return monitor as SocketMonitor;
}

/** The listed leaks of the groups shown, by id: at most MAX_GROUPS x 20, whatever the flood. */
function listedLeaks(monitor: SocketMonitor, groups: readonly LeakGroup[]) {
  const wanted = new Set<number>();
  for (const group of groups) for (const id of group.leakIds) wanted.add(id);
  const byId = new Map<number, SocketLeak>();
  const tracker = trackerOf(monitor);
  if (tracker === undefined) {
    for (const leak of monitor.leaks()) if (wanted.has(leak.id)) byId.set(leak.id, leak);
    return byId;
  }
  for (const record of tracker.leaked) {
    if (record.leak !== undefined && wanted.has(record.id)) byId.set(record.id, record.leak);
  }
  return byId;
}

function groupsOf(monitor: SocketMonitor, allGroups: readonly LeakGroup[]) {
  const groups = allGroups.slice(0, MAX_GROUPS);
  const byId = listedLeaks(monitor, groups);
  return groups.map(
    (group): HealthLeakGroup => ({
      where: group.where,
      kind: group.kind,
      direction: group.direction,
      count: group.count,
      oldestAgeMs: Math.round(group.oldestAgeMs),
      site: group.site,
      appSite: group.appSite,
      stack: group.stack,
      sockets: group.leakIds.map((id) => {
        const leak = byId.get(id);
        return {
          id,
          localAddress: leak?.localAddress,
          localPort: leak?.localPort,
          remoteAddress: leak?.remoteAddress,
          remotePort: leak?.remotePort,
        };
      }),
    }),
  );
}

/** The check's status for `leaked` leaks: see HealthOptions. */
export function statusOf(
  leaked: number,
  options: ResolvedHealthOptions,
  running: boolean,
): HealthStatus {
  const status: HealthStatus =
    leaked >= options.failAt ? 'fail' : leaked >= options.warnAt ? 'warn' : 'pass';
  // A stopped monitor sees no leaks: `pass` would be a lie, `fail` would restart a healthy app.
  return !running && status === 'pass' ? 'warn' : status;
}

export function outputOf(
  status: HealthStatus,
  leaked: number,
  running: boolean,
): string | undefined {
  if (!running) return 'closewait is not running: leaks are not being watched (call start())';
  if (status === 'pass') return undefined;
  return (
    `${leaked} CLOSE_WAIT socket leak${leaked === 1 ? '' : 's'}: ` +
    'the peer closed the connection and this process never closed its socket'
  );
}

type Summary = Pick<SocketReportData, 'tracked' | 'leaked' | 'byState' | 'byKind' | 'byDirection'>;

function summaryOf(monitor: SocketMonitor): Summary {
  return trackerOf(monitor)?.summary() ?? monitor.report();
}

/** The payload and its HTTP status: 200 for pass and warn, 503 for fail. */
export function buildHealth(
  monitor: SocketMonitor,
  options: ResolvedHealthOptions,
  now = epochNow(),
): { httpStatus: 200 | 503; payload: HealthPayload } {
  // Counts alone cost O(groups), not O(leaks): only verbose output needs the groups.
  const report = options.verbose ? monitor.report() : summaryOf(monitor);
  const leaked = report.leaked;
  const running = monitor.running;
  const status = statusOf(leaked, options, running);
  const output = outputOf(status, leaked, running);
  const check: HealthCheck = {
    componentType: 'component',
    observedValue: leaked,
    observedUnit: 'sockets',
    status,
    time: new Date(now).toISOString(),
    ...(output === undefined ? {} : { output }),
    tracked: report.tracked,
    byState: report.byState,
    byKind: report.byKind,
    byDirection: report.byDirection,
  };
  if (options.verbose) check.groups = groupsOf(monitor, (report as SocketReportData).groups);
  return {
    httpStatus: status === 'fail' ? 503 : 200,
    payload: { status, description: DESCRIPTION, checks: { 'closewait:leaks': [check] } },
  };
}

/**
 * Used when the check itself broke: `warn`, not `fail`, so a bug in closewait never gets a
 * healthy app restarted by its orchestrator.
 */
function brokenHealth(now: number): { httpStatus: 200; payload: object } {
  return {
    httpStatus: 200,
    payload: {
      status: 'warn',
      description: DESCRIPTION,
      checks: {
        'closewait:leaks': [
          {
            componentType: 'component',
            status: 'warn',
            time: new Date(now).toISOString(),
            output: 'closewait could not compute the check (internal error)',
          },
        ],
      },
    },
  };
}

/** `buildHealth`, which never throws. */
export function safeHealth(monitor: SocketMonitor, options: ResolvedHealthOptions) {
  const now = epochNow();
  try {
    return buildHealth(monitor, options, now);
  } catch {
    return brokenHealth(now);
  }
}

/** What `healthCheck()` returns: a response for any framework to send as it is. */
export interface HealthResponse {
  /** 200 for pass and warn, 503 for fail. */
  statusCode: 200 | 503;
  /** `content-type: application/health+json` and `cache-control: no-store`. */
  headers: { 'content-type': string; 'cache-control': string };
  /** The application/health+json document, as `healthHandler` sends it. */
  payload: HealthPayload;
}

/**
 * The health check as data, for frameworks that send responses their own way (Koa, Hono,
 * NestJS, Next): `const { statusCode, headers, payload } = healthCheck(monitor, { failAt: 10 })`.
 * Same status and payload as `healthHandler`. Checks its arguments (a `TypeError` for bad ones);
 * past that it never throws: a check that breaks answers `warn`, so a bug in closewait never
 * gets a healthy app restarted.
 */
export function healthCheck(monitor: SocketMonitor, options?: HealthOptions): HealthResponse {
  checkMonitor(monitor);
  const { httpStatus, payload } = safeHealth(monitor, resolveHealthOptions(options));
  return {
    statusCode: httpStatus,
    headers: { 'content-type': HEALTH_CONTENT_TYPE, 'cache-control': 'no-store' },
    payload: payload as HealthPayload,
  };
}

/**
 * A request handler for node:http and Express: `app.get('/health/sockets', healthHandler(m))`.
 * Answers GET and HEAD with the application/health+json payload, OPTIONS with 204, anything
 * else with 405. It reads neither the path nor the query, so no query string can turn on
 * verbose output; it never throws.
 */
export function healthHandler(
  monitor: SocketMonitor,
  options?: HealthOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  checkMonitor(monitor);
  const resolved = resolveHealthOptions(options);
  return healthResponder(() => safeHealth(monitor, resolved));
}

/** The HTTP side of `healthHandler`, for a payload built elsewhere (the cluster's, summed). */
export function healthResponder(
  build: () => { httpStatus: 200 | 503; payload: object },
): (request: IncomingMessage, response: ServerResponse) => void {
  return function closewaitHealth(request, response) {
    try {
      const method = request.method;
      response.setHeader('Cache-Control', 'no-store');
      if (method !== 'GET' && method !== 'HEAD') {
        response.statusCode = method === 'OPTIONS' ? 204 : 405;
        response.setHeader('Allow', ALLOWED_METHODS);
        response.end();
        return;
      }
      const { httpStatus, payload } = build();
      const body = JSON.stringify(payload);
      response.statusCode = httpStatus;
      response.setHeader('Content-Type', HEALTH_CONTENT_TYPE);
      response.setHeader('Content-Length', Buffer.byteLength(body));
      response.end(method === 'HEAD' ? undefined : body);
    } catch {
      // The response was already sent or torn down (a client gone): nothing left to answer.
      try {
        if (!response.headersSent) response.statusCode = 500;
        if (!response.writableEnded) response.end();
      } catch {
        // Same: nothing to do without throwing into the server.
      }
    }
  };
}
