import type { EventEmitter } from 'node:events';
import { clearRepeating, monotonicNow, setRepeating } from '../clock.js';
import type { ResolvedOptions } from '../options.js';
import { groupKeyOf, type SocketReportData, whereOf } from '../report/report.js';
import type { DestroyInfo, LeakResolution, SocketLeak, SocketMonitorEvents } from '../types.js';
import { type FloodCount, FloodGate } from './flood-gate.js';
import {
  destroyMessage,
  leakFields,
  leakIdentity,
  leakMessage,
  resolvedMessage,
} from './leak-fields.js';
import type { SafeLog } from './safe-log.js';
import { summaryFields, summaryMessage } from './summary-line.js';

/** The monitor as the log sees it: its events and its report. */
export interface LeakLogSource extends EventEmitter<SocketMonitorEvents> {
  report(): SocketReportData;
}

/**
 * Logs every leak (`warn`), its resolution (`info`) and the auto-destroy policy's acts (`warn`),
 * holding back floods per site, and a periodic summary if asked. Returns the detach function:
 * it reports the counts still held back and stops the summary timer.
 *
 * Every listener catches its own errors: an EventEmitter stops at the first listener that
 * throws, so a throw here would also silence the app's own 'leak' listeners.
 */
export function attachLeakLog(
  source: LeakLogSource,
  log: SafeLog,
  options: Pick<ResolvedOptions, 'logRate' | 'summaryIntervalMs'>,
  failed: (error: unknown) => void,
): () => void {
  // Resolution and destroy lines follow only leaks that had their own line: a held-back flood
  // stays one line. Weak, so a leak nobody resolves is not kept alive by the log.
  const logged = new WeakSet<SocketLeak>();
  const gate = new FloodGate<SocketLeak>(
    options.logRate.perSite,
    options.logRate.intervalMs,
    (count) => {
      try {
        logFlood(log, count, options.logRate.intervalMs);
      } catch (error) {
        failed(error);
      }
    },
  );

  const onLeak = (leak: SocketLeak) => {
    try {
      const where = whereOf(leak);
      if (!gate.admit(groupKeyOf(leak), leak, monotonicNow())) return;
      logged.add(leak);
      if (log.enabled('warn')) {
        log.write('warn', { leak: leakFields(leak, where) }, leakMessage(leak.kind));
      }
    } catch (error) {
      failed(error);
    }
  };
  const onResolved = (leak: SocketLeak, resolution: LeakResolution) => {
    try {
      if (!logged.has(leak) || !log.enabled('info')) return;
      const leakedForMs = Math.max(0, resolution.resolvedAt - leak.detectedAt);
      log.write(
        'info',
        {
          leak: leakIdentity(leak, whereOf(leak)),
          resolution: { reason: resolution.reason, leakedForMs },
        },
        resolvedMessage(resolution.reason),
      );
    } catch (error) {
      failed(error);
    }
  };
  const onDestroy = (leak: SocketLeak, info: DestroyInfo) => {
    try {
      if (!logged.has(leak) || !log.enabled('warn')) return;
      const leakedForMs = Math.max(0, info.destroyedAt - leak.detectedAt);
      log.write(
        'warn',
        { leak: leakIdentity(leak, whereOf(leak)), destroy: { dryRun: info.dryRun, leakedForMs } },
        destroyMessage(info),
      );
    } catch (error) {
      failed(error);
    }
  };
  // Prepended: a throwing listener of the app's, added before start(), must not hide our line.
  source.prependListener('leak', onLeak);
  source.prependListener('leak-resolved', onResolved);
  source.prependListener('destroy', onDestroy);

  let summaryTimer: NodeJS.Timeout | undefined;
  if (options.summaryIntervalMs > 0) {
    summaryTimer = setRepeating(() => {
      try {
        const report = source.report();
        const level = report.leaked > 0 ? 'warn' : 'info';
        if (log.enabled(level)) log.write(level, summaryFields(report), summaryMessage(report));
      } catch (error) {
        failed(error);
      }
    }, options.summaryIntervalMs);
    summaryTimer.unref();
  }

  return () => {
    source.off('leak', onLeak);
    source.off('leak-resolved', onResolved);
    source.off('destroy', onDestroy);
    clearRepeating(summaryTimer);
    gate.close();
  };
}

function logFlood(log: SafeLog, count: FloodCount<SocketLeak>, intervalMs: number): void {
  if (!log.enabled('warn')) return;
  const { sample, logged, suppressed } = count;
  // Past the gate's site limit, many sites share one window: the sample names only one of them.
  const oneSite = count.key === groupKeyOf(sample);
  const site = oneSite
    ? { where: whereOf(sample), kind: sample.kind, direction: sample.direction }
    : { where: count.key };
  const interval = intervalMs < 1000 ? `${intervalMs}ms` : `${Math.round(intervalMs / 1000)}s`;
  log.write(
    'warn',
    { flood: { ...site, logged, suppressed, total: logged + suppressed, intervalMs } },
    `CLOSE_WAIT socket leaks flooding from ${oneSite ? 'one site' : 'many sites'}: ` +
      `${suppressed} more were counted, not logged one by one ` +
      `(limit: ${logged} lines per ${interval} per site)`,
  );
}
