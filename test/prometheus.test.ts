import http from 'node:http';
import { register as globalRegistry, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerMetrics } from '../src/integrations/prometheus.js';
import { holdUpgrades, leakUpgrade } from './fixtures/leaky-upgrade.js';
import { startMonitor } from './fixtures/monitor.js';
import { listen, until, waitFor } from './fixtures/net.js';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format, as Prometheus reads it: one series per line. */
async function scrape(registry: Registry): Promise<Series[]> {
  const text = await registry.metrics();
  const series: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').split(',').filter(Boolean)) {
      const [key, quoted] = pair.split('=') as [string, string];
      labels[key] = JSON.parse(quoted) as string;
    }
    series.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return series;
}

function value(series: Series[], name: string, labels: Record<string, string>): number {
  const found = series.filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([key, v]) => s.labels[key] === v),
  );
  if (found.length !== 1)
    throw new Error(`${found.length} series for ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
}

const KINDS = ['half-closed', 'end-stuck', 'unconsumed-fin', 'unread-fin'];
const DIRECTIONS = ['server', 'client'];

async function leakyServer() {
  const server = http.createServer();
  const taken = holdUpgrades(server);
  const port = await listen(server);
  return { taken, port };
}

describe('closewait/prometheus', () => {
  it('shows gauges and counters with the right values, scraped from a Registry', async () => {
    const registry = new Registry();
    const monitor = startMonitor({ logger: false });
    registerMetrics(monitor, { registry });

    // Every series exists from the start, at 0: increase() sees the first leak.
    const empty = await scrape(registry);
    for (const direction of DIRECTIONS) {
      for (const kind of KINDS) {
        expect(value(empty, 'closewait_leaked_sockets', { direction, kind })).toBe(0);
        expect(value(empty, 'closewait_leaks_detected_total', { direction, kind })).toBe(0);
        expect(value(empty, 'closewait_leaks_resolved_total', { direction, kind })).toBe(0);
        expect(value(empty, 'closewait_sockets_destroyed_total', { direction, kind })).toBe(0);
      }
    }

    const { taken, port } = await leakyServer();
    await leakUpgrade(port);
    await leakUpgrade(port);
    await until(() => monitor.leaks().length === 2, 3000, '2 leaks');
    const leaking = await scrape(registry);
    const sockets = monitor.sockets();
    const count = (direction: string) => sockets.filter((s) => s.direction === direction).length;
    // Two held server sockets, and the two clients that ended their side and stay open.
    expect(count('server')).toBe(2);
    expect(count('client')).toBe(2);
    expect(value(leaking, 'closewait_tracked_sockets', { direction: 'server' })).toBe(2);
    expect(value(leaking, 'closewait_tracked_sockets', { direction: 'client' })).toBe(2);
    expect(value(leaking, 'closewait_half_closed_sockets', { direction: 'server' })).toBe(2);
    expect(value(leaking, 'closewait_half_closed_sockets', { direction: 'client' })).toBe(0);
    const leaked = { direction: 'server', kind: 'half-closed' };
    expect(value(leaking, 'closewait_leaked_sockets', leaked)).toBe(2);
    expect(value(leaking, 'closewait_leaks_detected_total', leaked)).toBe(2);
    expect(value(leaking, 'closewait_leaks_resolved_total', leaked)).toBe(0);
    const total = (name: string) =>
      leaking.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
    expect(total('closewait_leaked_sockets')).toBe(2);
    expect(total('closewait_leaks_detected_total')).toBe(2);

    const resolved = waitFor(monitor, 'leak-resolved');
    taken[0]!.destroy();
    await resolved;
    const after = await scrape(registry);
    expect(value(after, 'closewait_leaked_sockets', leaked)).toBe(1);
    expect(value(after, 'closewait_leaks_detected_total', leaked)).toBe(2);
    expect(value(after, 'closewait_leaks_resolved_total', leaked)).toBe(1);
    expect(value(after, 'closewait_tracked_sockets', { direction: 'server' })).toBe(1);
  });

  it('counts a socket in CLOSE_WAIT within graceMs as half-closed, not yet leaked', async () => {
    const registry = new Registry();
    const monitor = startMonitor({ logger: false, graceMs: 30_000 });
    registerMetrics(monitor, { registry });
    const { port } = await leakyServer();
    await leakUpgrade(port);
    await until(
      () => monitor.sockets().some((s) => s.direction === 'server' && s.state === 'peer-ended'),
      3000,
      'the server socket sees the FIN',
    );
    const series = await scrape(registry);
    expect(value(series, 'closewait_half_closed_sockets', { direction: 'server' })).toBe(1);
    expect(
      series.filter((s) => s.name === 'closewait_leaked_sockets').every((s) => s.value === 0),
    ).toBe(true);
  });

  it('counts sockets destroyed by the auto-destroy policy, and dry-run ones apart', async () => {
    // Two servers, one per policy: both monitors see every socket of the process, so each
    // policy is filtered to its own server and neither closes the other's leak first.
    const real = await leakyServer();
    const dryRun = await leakyServer();
    const registry = new Registry();
    const monitor = startMonitor({
      logger: false,
      autoDestroy: { afterMs: 0, filter: (leak) => leak.localPort === real.port },
    });
    registerMetrics(monitor, { registry });
    const dryRegistry = new Registry();
    const dryMonitor = startMonitor({
      logger: false,
      autoDestroy: { afterMs: 0, dryRun: true, filter: (leak) => leak.localPort === dryRun.port },
    });
    registerMetrics(dryMonitor, { registry: dryRegistry });

    const destroyed = waitFor(monitor, 'destroy');
    const dryDestroyed = waitFor(dryMonitor, 'destroy');
    await leakUpgrade(real.port);
    await leakUpgrade(dryRun.port);
    await Promise.all([destroyed, dryDestroyed]);
    await until(
      () => !monitor.leaks().some((leak) => leak.localPort === real.port),
      3000,
      'the destroyed leak resolved',
    );

    const leaked = { direction: 'server', kind: 'half-closed' };
    const afterReal = await scrape(registry);
    expect(value(afterReal, 'closewait_sockets_destroyed_total', leaked)).toBe(1);
    expect(value(afterReal, 'closewait_dry_run_destroys_total', leaked)).toBe(0);
    expect(value(afterReal, 'closewait_leaks_detected_total', leaked)).toBe(2);
    expect(value(afterReal, 'closewait_leaks_resolved_total', leaked)).toBe(1);
    expect(value(afterReal, 'closewait_leaked_sockets', leaked)).toBe(1);
    const afterDry = await scrape(dryRegistry);
    expect(value(afterDry, 'closewait_sockets_destroyed_total', leaked)).toBe(0);
    expect(value(afterDry, 'closewait_dry_run_destroys_total', leaked)).toBe(1);
  });

  it('labels series by direction and kind only: no address, route or stack', async () => {
    const registry = new Registry();
    const monitor = startMonitor({ logger: false });
    registerMetrics(monitor, { registry });
    const { port } = await leakyServer();
    for (let i = 0; i < 5; i++) await leakUpgrade(port, `/users/${i}`);
    await until(() => monitor.leaks().length === 5, 3000, '5 leaks');
    const series = await scrape(registry);
    const labelNames = new Set(series.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].sort()).toEqual(['direction', 'kind']);
    // 2 gauges by direction (2 series each), 5 metrics by direction x kind (8 each): a fixed
    // count, however many routes leak.
    expect(series).toHaveLength(2 * 2 + 5 * 8);
  });

  it("uses prom-client's global registry and the closewait_ prefix by default; unregister() removes them", () => {
    const monitor = startMonitor({ logger: false });
    const metrics = registerMetrics(monitor);
    try {
      expect(metrics.names).toEqual([
        'closewait_tracked_sockets',
        'closewait_half_closed_sockets',
        'closewait_leaked_sockets',
        'closewait_leaks_detected_total',
        'closewait_leaks_resolved_total',
        'closewait_sockets_destroyed_total',
        'closewait_dry_run_destroys_total',
      ]);
      for (const name of metrics.names) expect(globalRegistry.getSingleMetric(name)).toBeDefined();
      // Registering the same names twice would make prom-client throw halfway: we refuse first.
      expect(() => registerMetrics(monitor)).toThrow(
        /option "prefix" must be a prefix not in use in this registry \(closewait_tracked_sockets exists\)/,
      );
    } finally {
      metrics.unregister();
    }
    for (const name of metrics.names) expect(globalRegistry.getSingleMetric(name)).toBeUndefined();
    expect(monitor.listenerCount('leak')).toBe(0);

    const registry = new Registry();
    const prefixed = registerMetrics(monitor, { registry, prefix: 'app_sockets_' });
    expect(prefixed.names[0]).toBe('app_sockets_tracked_sockets');
    expect(registry.getSingleMetric('app_sockets_leaked_sockets')).toBeDefined();
  });

  it('fails at registration on bad options, naming them', () => {
    const monitor = startMonitor({ logger: false });
    expect(() => registerMetrics(monitor, { prefix: '1bad' })).toThrow(
      /option "prefix" must be a Prometheus metric name prefix .*; received "1bad"/,
    );
    expect(() => registerMetrics(monitor, { registry: {} as never })).toThrow(
      /option "registry" must be a prom-client Registry; received \{\}/,
    );
    expect(() => registerMetrics(monitor, { registy: new Registry() } as never)).toThrow(
      /option "registy".*typo/,
    );
    expect(() => registerMetrics({} as never)).toThrow(/option "monitor"/);
  });
});
