import {
  Counter,
  Gauge,
  register as globalRegistry,
  type OpenMetricsContentType,
  type PrometheusContentType,
  type Registry,
} from 'prom-client';
import { checkMonitor } from '../health.js';
import type { SocketMonitor } from '../monitor.js';
import { invalidOption } from '../options.js';
import type { DestroyInfo, LeakResolution, SocketLeak } from '../types.js';
import { countByDirection, DIRECTIONS, KINDS, leaksByDirectionKind } from './socket-counts.js';

type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

export interface MetricsOptions {
  /** Default: prom-client's global `register`. */
  registry?: AnyRegistry;
  /** Put in front of every metric name. Default 'closewait_'. */
  prefix?: string;
}

export interface SocketMetrics {
  /** Metric names as registered. */
  readonly names: readonly string[];
  /** Removes the metrics from the registry and stops counting. */
  unregister(): void;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const METRICS = [
  'tracked_sockets',
  'half_closed_sockets',
  'leaked_sockets',
  'leaks_detected_total',
  'leaks_resolved_total',
  'sockets_destroyed_total',
  'dry_run_destroys_total',
] as const;

function resolveMetricsOptions(options: unknown): { registry: AnyRegistry; prefix: string } {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('metrics options', 'an object', options);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== 'registry' && key !== 'prefix') {
      throw invalidOption(key, 'a known metrics option: registry, prefix (typo?)', given[key]);
    }
  }
  const prefix = given.prefix ?? 'closewait_';
  if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_NAME.test(prefix))) {
    throw invalidOption(
      'prefix',
      'a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)',
      prefix,
    );
  }
  const registry = (given.registry ?? globalRegistry) as AnyRegistry;
  if (
    typeof registry !== 'object' ||
    registry === null ||
    typeof registry.registerMetric !== 'function' ||
    typeof registry.removeSingleMetric !== 'function'
  ) {
    throw invalidOption('registry', 'a prom-client Registry', given.registry);
  }
  return { registry, prefix };
}

/**
 * Gauges read at scrape time (`collect()`), so a healthy socket costs nothing between scrapes;
 * counters follow the monitor's events. Every label combination is exported from the start,
 * at 0, so `increase()` sees the first leak instead of a series that appears at 1.
 */
export function registerMetrics(monitor: SocketMonitor, options?: MetricsOptions): SocketMetrics {
  checkMonitor(monitor);
  const { registry, prefix } = resolveMetricsOptions(options);
  const registers = [registry];

  const names = METRICS.map((name) => `${prefix}${name}`);
  // All or nothing: a clash found halfway would leave half the metrics registered.
  for (const name of names) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw invalidOption(
        'prefix',
        `a prefix not in use in this registry (${name} exists)`,
        prefix,
      );
    }
  }

  // Gauges are read through collect() and reached through the registry: no handle is kept.
  new Gauge({
    name: `${prefix}tracked_sockets`,
    help: 'Sockets closewait tracks now, by direction.',
    labelNames: ['direction'] as const,
    registers,
    collect() {
      // A scrape must not fail because of us: on an internal error the gauge keeps its value.
      try {
        const counts = countByDirection(monitor, false);
        for (const direction of DIRECTIONS) this.set({ direction }, counts[direction]);
      } catch {}
    },
  });
  new Gauge({
    name: `${prefix}half_closed_sockets`,
    help: 'Tracked sockets whose peer has closed (CLOSE_WAIT): leaks and those still in graceMs.',
    labelNames: ['direction'] as const,
    registers,
    collect() {
      try {
        const counts = countByDirection(monitor, true);
        for (const direction of DIRECTIONS) this.set({ direction }, counts[direction]);
      } catch {}
    },
  });
  new Gauge({
    name: `${prefix}leaked_sockets`,
    help: 'Open CLOSE_WAIT leaks: the peer closed, the app did not.',
    labelNames: ['direction', 'kind'] as const,
    registers,
    collect() {
      try {
        const count = leaksByDirectionKind(monitor);
        for (const direction of DIRECTIONS) {
          for (const kind of KINDS) this.set({ direction, kind }, count(direction, kind));
        }
      } catch {}
    },
  });
  const counter = (name: string, help: string) => {
    const metric = new Counter({
      name: `${prefix}${name}`,
      help,
      labelNames: ['direction', 'kind'] as const,
      registers,
    });
    for (const direction of DIRECTIONS)
      for (const kind of KINDS) metric.inc({ direction, kind }, 0);
    return metric;
  };
  const detected = counter('leaks_detected_total', 'CLOSE_WAIT leaks detected.');
  const resolved = counter(
    'leaks_resolved_total',
    'CLOSE_WAIT leaks that ended: closed or read by the app, or destroyed by the policy.',
  );
  const destroyed = counter(
    'sockets_destroyed_total',
    'Leaked sockets destroyed by the auto-destroy policy.',
  );
  const dryRunDestroys = counter(
    'dry_run_destroys_total',
    'Leaked sockets the auto-destroy policy would have destroyed (dryRun).',
  );

  // Listeners never throw: one that did would stop the app's own listeners after it.
  const onLeak = (leak: SocketLeak) => {
    try {
      detected.inc({ direction: leak.direction, kind: leak.kind });
    } catch {}
  };
  const onResolved = (leak: SocketLeak, _resolution: LeakResolution) => {
    try {
      resolved.inc({ direction: leak.direction, kind: leak.kind });
    } catch {}
  };
  const onDestroy = (leak: SocketLeak, info: DestroyInfo) => {
    try {
      (info.dryRun ? dryRunDestroys : destroyed).inc({
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
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
