/**
 * CLOSEWAIT_HEALTH_PORT under node:cluster (and PM2's cluster mode, which is node:cluster): the
 * preload runs in the primary and in every worker, and only one process can have the port. The
 * primary has it, and answers for the whole cluster; each worker reports its counts to the
 * primary over the cluster's IPC channel, and the primary adds them up.
 *
 * Pushed by the workers, never asked for: a worker that listened for messages would keep its
 * IPC channel referenced, and so itself alive. A worker reports when a leak is declared or
 * resolved (within REPORT_SOON_MS) and every HEARTBEAT_MS for the rest (tracked sockets).
 *
 * The messages are `{ cmd: 'NODE_CLOSEWAIT_HEALTH', ... }`: Node delivers a message whose `cmd`
 * starts with `NODE_` as 'internalMessage', never as 'message', so the app's own
 * `cluster.on('message')` and `worker.on('message')` handlers never see ours (Node 20-26;
 * cluster's own internal handler ignores any cmd but NODE_CLUSTER).
 */
import type { Cluster, Worker } from 'node:cluster';
import { setRepeating, setTimer } from '../clock.js';
import {
  buildHealth,
  type HealthCheck,
  type HealthLeakGroup,
  type HealthPayload,
  outputOf,
  type ResolvedHealthOptions,
  statusOf,
} from '../health.js';
import type { SocketMonitor } from '../monitor.js';

const CMD = 'NODE_CLOSEWAIT_HEALTH';
const HEARTBEAT_MS = 1000;
const REPORT_SOON_MS = 20;
const MAX_GROUPS = 20;

/** A worker's counts as sent: its check, and its metrics as prom-client's JSON when it has them. */
interface WorkerReport {
  cmd: typeof CMD;
  check: HealthCheck;
  metrics: unknown[] | undefined;
}

function isWorkerReport(message: unknown): message is WorkerReport {
  const candidate = message as Partial<WorkerReport> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.cmd === CMD &&
    typeof candidate.check === 'object' &&
    candidate.check !== null &&
    typeof candidate.check.observedValue === 'number' &&
    (candidate.metrics === undefined || Array.isArray(candidate.metrics))
  );
}

/**
 * In a worker: sends the worker's counts to the primary from now on. Nothing here keeps the
 * worker alive (timers unref'd, no 'message' listener), and nothing throws into it.
 */
export function reportToPrimary(
  monitor: SocketMonitor,
  options: ResolvedHealthOptions,
  metricsJson: (() => Promise<unknown[]>) | undefined,
): void {
  let soon: NodeJS.Timeout | undefined;
  const send = async () => {
    soon = undefined;
    try {
      const check = buildHealth(monitor, options).payload.checks['closewait:leaks'][0];
      const metrics = metricsJson === undefined ? undefined : await metricsJson();
      if (!process.connected || process.send === undefined) return;
      const report: WorkerReport = { cmd: CMD, check, metrics };
      // The callback takes a send error (the primary is gone): without one it would be thrown.
      process.send(report, undefined, {}, () => {});
    } catch {
      // The next heartbeat tries again.
    }
  };
  const sendSoon = () => {
    if (soon !== undefined) return;
    soon = setTimer(send, REPORT_SOON_MS);
    soon.unref();
  };
  monitor.on('leak', sendSoon);
  monitor.on('leak-resolved', sendSoon);
  setRepeating(send, HEARTBEAT_MS).unref();
  sendSoon();
}

/** In the primary: the last report of each live worker. */
export class WorkerReports {
  readonly #reports = new Map<number, { pid: number | undefined; report: WorkerReport }>();

  constructor(cluster: Cluster) {
    const watch = (worker: Worker) => {
      worker.process.on('internalMessage', (message: unknown) => {
        if (isWorkerReport(message)) {
          this.#reports.set(worker.id, { pid: worker.process.pid, report: message });
        }
      });
    };
    for (const worker of Object.values(cluster.workers ?? {})) if (worker) watch(worker);
    cluster.on('fork', watch);
    cluster.on('exit', (worker) => this.#reports.delete(worker.id));
  }

  get size(): number {
    return this.#reports.size;
  }

  /** The workers' metrics as prom-client JSON, one array per worker that sent some. */
  metrics(): unknown[][] {
    const all: unknown[][] = [];
    for (const { report } of this.#reports.values()) {
      if (report.metrics !== undefined) all.push(report.metrics);
    }
    return all;
  }

  /** The primary's own health with every worker's added: the whole cluster's. */
  health(
    monitor: SocketMonitor,
    options: ResolvedHealthOptions,
  ): { httpStatus: 200 | 503; payload: HealthPayload } {
    const own = buildHealth(monitor, options);
    if (this.#reports.size === 0) return own;
    const ownCheck = own.payload.checks['closewait:leaks'][0];
    const parts = [
      { pid: process.pid, check: ownCheck },
      ...[...this.#reports.values()].map(({ pid, report }) => ({ pid, check: report.check })),
    ];
    const leaked = sum(parts.map(({ check }) => check.observedValue));
    const status = statusOf(leaked, options, monitor.running);
    const output = outputOf(status, leaked, monitor.running);
    const check: HealthCheck = {
      componentType: 'component',
      observedValue: leaked,
      observedUnit: 'sockets',
      status,
      time: ownCheck.time,
      ...(output === undefined ? {} : { output }),
      tracked: sum(parts.map(({ check }) => check.tracked)),
      byState: sumByKey(parts.map(({ check }) => check.byState)),
      byKind: sumByKey(parts.map(({ check }) => check.byKind)),
      byDirection: sumByKey(parts.map(({ check }) => check.byDirection)),
      processes: parts.length,
    };
    if (options.verbose) {
      check.groups = parts
        .flatMap(({ pid, check }) =>
          (check.groups ?? []).map((group): HealthLeakGroup => ({ ...group, pid })),
        )
        .sort((a, b) => b.count - a.count)
        .slice(0, MAX_GROUPS);
    }
    return {
      httpStatus: status === 'fail' ? 503 : 200,
      payload: { ...own.payload, status, checks: { 'closewait:leaks': [check] } },
    };
  }
}

function sum(values: readonly unknown[]): number {
  let total = 0;
  for (const value of values)
    if (typeof value === 'number' && Number.isFinite(value)) total += value;
  return total;
}

/** Adds up count records key by key: a worker's payload is data from another process. */
function sumByKey<T extends Record<string, number>>(records: readonly T[]): T {
  const total: Record<string, number> = {};
  for (const record of records) {
    if (typeof record !== 'object' || record === null) continue;
    for (const [key, value] of Object.entries(record)) {
      total[key] = (total[key] ?? 0) + (typeof value === 'number' ? value : 0);
    }
  }
  return total as T;
}
