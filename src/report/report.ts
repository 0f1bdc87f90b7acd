import { relative, sep } from 'node:path';
import type {
  KernelSummary,
  LeakKind,
  ServerInfo,
  SocketDirection,
  SocketLeak,
  TrackedSocketState,
} from '../types.js';

/** Leaks that share a cause: one line of code, or one server (and route) for accepted sockets. */
export interface LeakGroup {
  key: string;
  kind: LeakKind;
  direction: SocketDirection;
  /** Where: the creation site, or the server and the request that preceded the hand-off. */
  where: string;
  site: string | undefined;
  appSite: string | undefined;
  server: ServerInfo | undefined;
  count: number;
  oldestAgeMs: number;
  /** Stack of the oldest leak in the group, where captured. */
  stack: string | undefined;
  leakIds: number[];
}

export interface SocketReportData {
  generatedAt: number;
  tracked: number;
  byState: Record<TrackedSocketState, number>;
  leaked: number;
  byKind: Record<LeakKind, number>;
  byDirection: Record<SocketDirection, number>;
  groups: LeakGroup[];
  /** What the last kernel check saw (Linux, after `kernelCheck()`); undefined before one. */
  kernel: KernelSummary | undefined;
}

/** At most this many ids per group are listed; the count is always exact. */
const MAX_IDS_PER_GROUP = 20;

/** Shortened paths by location: a flood names one line 10,000 times. Bounded. */
const shortPaths = new Map<string, string>();
const MAX_SHORT_PATHS = 1000;

function shortPath(location: string | undefined): string | undefined {
  if (location === undefined) return undefined;
  let short = shortPaths.get(location);
  if (short === undefined) {
    short = shorten(location);
    if (shortPaths.size >= MAX_SHORT_PATHS) shortPaths.clear();
    shortPaths.set(location, short);
  }
  return short;
}

function shorten(location: string): string {
  if (!location.startsWith(sep) && !/^[A-Za-z]:\\/.test(location)) return location;
  const shorter = relative(process.cwd(), location);
  return shorter.startsWith('..') ? location : shorter;
}

function pathOnly(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** What `where` is made of: a leak's fields, or a described socket's. */
type WhereSource = Pick<
  SocketLeak,
  'request' | 'server' | 'appSite' | 'site' | 'remoteAddress' | 'remotePort'
>;

/**
 * Computed once per leak: a report or a verbose health check of 10,000 leaks would otherwise
 * format 10,000 paths each time. Weak, so it dies with the leak.
 */
const whereCache = new WeakMap<WhereSource, string>();
const keyCache = new WeakMap<SocketLeak, string>();

/** Where a leak (or any described socket) comes from, in words: what its group key shows. */
export function whereOf(leak: WhereSource): string {
  let where = whereCache.get(leak);
  if (where === undefined) {
    where = describeWhere(leak);
    whereCache.set(leak, where);
  }
  return where;
}

function nameOf(leak: SocketLeak): { where: string; key: string } {
  const where = whereOf(leak);
  let key = keyCache.get(leak);
  if (key === undefined) {
    key = `${leak.direction} ${leak.kind} ${where}`;
    keyCache.set(leak, key);
  }
  return { where, key };
}

function describeWhere(leak: WhereSource): string {
  const request = leak.request;
  const requestText = request === undefined ? '' : `${request.method} ${pathOnly(request.url)}`;
  if (leak.server !== undefined) {
    const { address, port, listenSite } = leak.server;
    const listen = listenSite === undefined ? '' : ` (listen at ${shortPath(listenSite)})`;
    const handoff = request?.handoff === undefined ? '' : ` on '${request.handoff}'`;
    const route = requestText === '' ? '' : ` · ${requestText}${handoff}`;
    return `server ${address ?? '?'}:${port ?? '?'}${listen}${route}`;
  }
  const site = shortPath(leak.appSite ?? leak.site);
  if (site !== undefined) return requestText === '' ? site : `${site} · ${requestText}`;
  if (requestText !== '') return requestText;
  return `to ${leak.remoteAddress ?? '?'}:${leak.remotePort ?? '?'} (no stack captured)`;
}

/** The key leaks are grouped by, in the report and in the log's per-site flood limit. */
export function groupKeyOf(leak: SocketLeak): string {
  return nameOf(leak).key;
}

export function buildReport(
  byState: Record<TrackedSocketState, number>,
  leaks: readonly SocketLeak[],
  now: number,
  kernel?: KernelSummary,
): SocketReportData {
  let tracked = 0;
  for (const state of Object.keys(byState) as TrackedSocketState[]) tracked += byState[state];
  const byKind: Record<LeakKind, number> = {
    'half-closed': 0,
    'end-stuck': 0,
    'unconsumed-fin': 0,
    'unread-fin': 0,
  };
  const byDirection: Record<SocketDirection, number> = { server: 0, client: 0 };
  const groups = new Map<string, LeakGroup>();
  for (const leak of leaks) {
    byKind[leak.kind]++;
    byDirection[leak.direction]++;
    const { where, key } = nameOf(leak);
    const ageMs = Math.max(0, now - leak.peerEndedAt);
    let group = groups.get(key);
    if (group === undefined) {
      group = {
        key,
        kind: leak.kind,
        direction: leak.direction,
        where,
        site: leak.site,
        appSite: leak.appSite,
        server: leak.server,
        count: 0,
        oldestAgeMs: ageMs,
        stack: leak.stack,
        leakIds: [],
      };
      groups.set(key, group);
    }
    group.count++;
    if (group.leakIds.length < MAX_IDS_PER_GROUP) group.leakIds.push(leak.id);
    if (ageMs > group.oldestAgeMs) {
      group.oldestAgeMs = ageMs;
      group.stack = leak.stack ?? group.stack;
    }
  }
  const sorted = [...groups.values()].sort(
    (a, b) => b.count - a.count || b.oldestAgeMs - a.oldestAgeMs,
  );
  return {
    generatedAt: now,
    tracked,
    byState,
    leaked: leaks.length,
    byKind,
    byDirection,
    groups: sorted,
    kernel,
  };
}

function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

/** The report as a table a person reads: one line per group, most leaks first. */
export function formatReport(report: SocketReportData): string {
  const lines = [
    `closewait: ${report.leaked} leaked socket${report.leaked === 1 ? '' : 's'} ` +
      `(CLOSE_WAIT: the peer closed, this process did not) of ${report.tracked} tracked, ` +
      `in ${report.groups.length} group${report.groups.length === 1 ? '' : 's'}`,
  ];
  const kernelLines: string[] = [];
  if (report.kernel !== undefined) {
    const { closeWait, unattributed } = report.kernel;
    kernelLines.push(
      `kernel: ${closeWait} CLOSE_WAIT socket${closeWait === 1 ? '' : 's'} in this process, ` +
        `${unattributed.length} not announced by any channel (unattributed)`,
    );
    for (const row of unattributed) {
      kernelLines.push(
        `  unattributed ${row.localAddress}:${row.localPort} <- ${row.remoteAddress}:${row.remotePort}` +
          ` (${row.unreadBytes} bytes unread)`,
      );
    }
  }
  if (report.groups.length === 0) return [...lines, ...kernelLines].join('\n');
  const rows = report.groups.map((group) => [
    String(group.count),
    formatAge(group.oldestAgeMs),
    group.kind,
    group.direction,
    group.where,
  ]);
  const header = ['COUNT', 'OLDEST', 'KIND', 'SIDE', 'WHERE'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const pad = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1
          ? cell
          : column < 2
            ? cell.padStart(widths[column]!)
            : cell.padEnd(widths[column]!),
      )
      .join('  ');
  lines.push(pad(header));
  for (const row of rows) lines.push(pad(row));
  return [...lines, ...kernelLines].join('\n');
}
