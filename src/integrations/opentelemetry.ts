/**
 * OpenTelemetry metrics: `registerMetrics(monitor, { meter })` records the same instruments as
 * closewait/prometheus, with the same bounded attributes (`direction`, `kind`), through any
 * OpenTelemetry Meter. Nothing is imported from @opentelemetry/api at run time: the app hands
 * over its meter, so closewait cannot pick up a second copy of the API with its own globals.
 */
import type {
  BatchObservableCallback,
  Counter,
  Meter,
  Observable,
  ObservableGauge,
} from '@opentelemetry/api';
import { checkMonitor } from '../health.js';
import type { SocketMonitor } from '../monitor.js';
import { invalidOption } from '../options.js';
import type { DestroyInfo, LeakResolution, SocketLeak } from '../types.js';
import { countByDirection, DIRECTIONS, KINDS, leaksByDirectionKind } from './socket-counts.js';

export interface OpenTelemetryMetricsOptions {
  /** The Meter to record with: `metrics.getMeter('my-service')`. Required. */
  meter: Meter;
  /** Put in front of every instrument name. Default 'closewait.'. */
  prefix?: string;
}

export interface OpenTelemetrySocketMetrics {
  /** Instrument names as created. */
  readonly names: readonly string[];
  /**
   * Stops recording: the gauges' callback is removed and the counters stop counting. (The
   * OpenTelemetry API has no way to delete an instrument; a MeterProvider's shutdown does.)
   */
  unregister(): void;
}

/** OpenTelemetry's instrument name syntax: a letter, then up to 254 of [A-Za-z0-9_.-/]. */
const INSTRUMENT_NAME = /^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$/;
const UNIT = '{socket}';

function resolveOptions(options: unknown): { meter: Meter; prefix: string } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('metrics options', 'an object { meter, prefix }', options);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== 'meter' && key !== 'prefix') {
      throw invalidOption(key, 'a known metrics option: meter, prefix (typo?)', given[key]);
    }
  }
  const meter = given.meter as Partial<Meter> | undefined;
  if (
    typeof meter !== 'object' ||
    meter === null ||
    typeof meter.createCounter !== 'function' ||
    typeof meter.createObservableGauge !== 'function' ||
    typeof meter.addBatchObservableCallback !== 'function' ||
    typeof meter.removeBatchObservableCallback !== 'function'
  ) {
    throw invalidOption('meter', 'an OpenTelemetry Meter (metrics.getMeter(name))', given.meter);
  }
  const prefix = given.prefix ?? 'closewait.';
  if (typeof prefix !== 'string' || (prefix !== '' && !INSTRUMENT_NAME.test(`${prefix}x`))) {
    throw invalidOption('prefix', 'an instrument name prefix ([A-Za-z][A-Za-z0-9_.-/]*)', prefix);
  }
  return { meter: meter as Meter, prefix };
}

/**
 * Gauges are observed at collection time, so a healthy socket costs nothing between exports;
 * counters follow the monitor's events. Every attribute combination is recorded from the start,
 * at 0, so a rate sees the first leak instead of a series that appears at 1.
 */
export function registerMetrics(
  monitor: SocketMonitor,
  options: OpenTelemetryMetricsOptions,
): OpenTelemetrySocketMetrics {
  checkMonitor(monitor);
  const { meter, prefix } = resolveOptions(options);
  const names: string[] = [];
  const gauge = (name: string, description: string): ObservableGauge => {
    names.push(`${prefix}${name}`);
    return meter.createObservableGauge(`${prefix}${name}`, { description, unit: UNIT });
  };
  const counter = (name: string, description: string): Counter => {
    names.push(`${prefix}${name}`);
    const created = meter.createCounter(`${prefix}${name}`, { description, unit: UNIT });
    for (const direction of DIRECTIONS)
      for (const kind of KINDS) created.add(0, { direction, kind });
    return created;
  };

  const tracked = gauge('tracked_sockets', 'Sockets closewait tracks now, by direction.');
  const halfClosed = gauge(
    'half_closed_sockets',
    'Tracked sockets whose peer has closed (CLOSE_WAIT): leaks and those still in graceMs.',
  );
  const leaked = gauge(
    'leaked_sockets',
    'Open CLOSE_WAIT leaks: the peer closed, the app did not.',
  );
  const detected = counter('leaks_detected', 'CLOSE_WAIT leaks detected.');
  const resolved = counter(
    'leaks_resolved',
    'CLOSE_WAIT leaks that ended: closed or read by the app, or destroyed by the policy.',
  );
  const destroyed = counter(
    'sockets_destroyed',
    'Leaked sockets destroyed by the auto-destroy policy.',
  );
  const dryRunDestroys = counter(
    'dry_run_destroys',
    'Leaked sockets the auto-destroy policy would have destroyed (dryRun).',
  );

  const observables: Observable[] = [tracked, halfClosed, leaked];
  // An export must not fail because of us: on an internal error this collection has no values.
  const observe: BatchObservableCallback = (result) => {
    try {
      const all = countByDirection(monitor, false);
      const peerClosed = countByDirection(monitor, true);
      const leaks = leaksByDirectionKind(monitor);
      for (const direction of DIRECTIONS) {
        result.observe(tracked, all[direction], { direction });
        result.observe(halfClosed, peerClosed[direction], { direction });
        for (const kind of KINDS) {
          result.observe(leaked, leaks(direction, kind), { direction, kind });
        }
      }
    } catch {}
  };
  meter.addBatchObservableCallback(observe, observables);

  // Listeners never throw: one that did would stop the app's own listeners after it.
  const onLeak = (leak: SocketLeak) => {
    try {
      detected.add(1, { direction: leak.direction, kind: leak.kind });
    } catch {}
  };
  const onResolved = (leak: SocketLeak, _resolution: LeakResolution) => {
    try {
      resolved.add(1, { direction: leak.direction, kind: leak.kind });
    } catch {}
  };
  const onDestroy = (leak: SocketLeak, info: DestroyInfo) => {
    try {
      (info.dryRun ? dryRunDestroys : destroyed).add(1, {
        direction: leak.direction,
        kind: leak.kind,
      });
    } catch {}
  };
  monitor.on('leak', onLeak);
  monitor.on('leak-resolved', onResolved);
  monitor.on('destroy', onDestroy);

  return {
    names,
    unregister() {
      monitor.off('leak', onLeak);
      monitor.off('leak-resolved', onResolved);
      monitor.off('destroy', onDestroy);
      meter.removeBatchObservableCallback(observe, observables);
    },
  };
}
