import http from 'node:http';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { registerMetrics } from '../src/integrations/opentelemetry.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { startMonitor } from './fixtures/monitor.js';
import { listen, until, waitFor } from './fixtures/net.js';

const KINDS = ['half-closed', 'end-stuck', 'unconsumed-fin', 'unread-fin'];
const DIRECTIONS = ['server', 'client'];

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A MeterProvider whose only reader exports, on demand, to the SDK's in-memory exporter. */
function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // The interval never comes: every export in these tests is a forceFlush().
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  cleanups.push(() => provider.shutdown());
  const meter = provider.getMeter('closewait-test');
  /** Exports now; one value per instrument name and attribute set. */
  async function collect(): Promise<Map<string, number>> {
    exporter.reset();
    await reader.forceFlush();
    const values = new Map<string, number>();
    for (const resource of exporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const metric of scope.metrics) {
          for (const point of metric.dataPoints) {
            const attributes = Object.entries(point.attributes)
              .map(([key, value]) => `${key}=${value}`)
              .sort()
              .join(',');
            values.set(`${metric.descriptor.name}{${attributes}}`, point.value as number);
          }
        }
      }
    }
    return values;
  }
  return { meter, collect };
}

async function leakyServer() {
  const server = http.createServer();
  const taken = holdUpgrades(server);
  const port = await listen(server);
  cleanups.push(() => {
    for (const socket of taken) socket.destroy();
    server.close();
  });
  return { taken, port };
}

describe('closewait/opentelemetry', () => {
  it('exports gauges and counters through an SDK reader after real leaks', async () => {
    const { meter, collect } = sdk();
    const monitor = startMonitor({ logger: false });
    cleanups.push(() => {
      monitor.stop();
    });
    const registered = registerMetrics(monitor, { meter });
    expect(registered.names).toEqual([
      'closewait.tracked_sockets',
      'closewait.half_closed_sockets',
      'closewait.leaked_sockets',
      'closewait.leaks_detected',
      'closewait.leaks_resolved',
      'closewait.sockets_destroyed',
      'closewait.dry_run_destroys',
    ]);

    // Every attribute combination is there from the start, at 0.
    const empty = await collect();
    for (const direction of DIRECTIONS) {
      for (const kind of KINDS) {
        const attributes = `{direction=${direction},kind=${kind}}`;
        expect(empty.get(`closewait.leaked_sockets${attributes}`)).toBe(0);
        expect(empty.get(`closewait.leaks_detected${attributes}`)).toBe(0);
        expect(empty.get(`closewait.sockets_destroyed${attributes}`)).toBe(0);
      }
    }

    const { taken, port } = await leakyServer();
    await leakUpgrade(port);
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 2, 3000, '2 leaks');
    const leaking = await collect();
    expect(leaking.get('closewait.tracked_sockets{direction=server}')).toBe(2);
    expect(leaking.get('closewait.half_closed_sockets{direction=server}')).toBe(2);
    expect(leaking.get('closewait.half_closed_sockets{direction=client}')).toBe(0);
    const leaked = '{direction=server,kind=half-closed}';
    expect(leaking.get(`closewait.leaked_sockets${leaked}`)).toBe(2);
    expect(leaking.get(`closewait.leaks_detected${leaked}`)).toBe(2);
    expect(leaking.get(`closewait.leaks_resolved${leaked}`)).toBe(0);
    // Bounded attributes: direction and kind, nothing per address, route or stack.
    for (const key of leaking.keys()) {
      expect(key).toMatch(/^closewait\.[a-z_]+\{direction=(server|client)(,kind=[a-z-]+)?\}$/);
    }

    const resolved = waitFor(monitor, 'leak-resolved');
    taken[0]!.destroy();
    await resolved;
    const after = await collect();
    expect(after.get(`closewait.leaked_sockets${leaked}`)).toBe(1);
    expect(after.get(`closewait.leaks_detected${leaked}`)).toBe(2);
    expect(after.get(`closewait.leaks_resolved${leaked}`)).toBe(1);

    registered.unregister();
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 2, 3000, 'a new leak');
    const stopped = await collect();
    expect(stopped.get(`closewait.leaks_detected${leaked}`)).toBe(2);
  });

  it('works with the global API meter too, and fails on bad options naming them', () => {
    const monitor = startMonitor({ logger: false });
    cleanups.push(() => {
      monitor.stop();
    });
    // Without an SDK the global meter is a no-op: registering must still work.
    registerMetrics(monitor, { meter: metrics.getMeter('noop') }).unregister();
    expect(() => registerMetrics(monitor, {} as never)).toThrow(/option "meter"/);
    expect(() => registerMetrics(monitor, { meter: {} as never })).toThrow(/option "meter"/);
    expect(() => registerMetrics(monitor, { meter: metrics.getMeter('x'), prefix: '1x' })).toThrow(
      /option "prefix"/,
    );
    expect(() =>
      registerMetrics(monitor, { meter: metrics.getMeter('x'), registry: 1 } as never),
    ).toThrow(/option "registry"/);
  });
});
