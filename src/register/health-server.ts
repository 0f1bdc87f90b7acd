import type { Cluster } from 'node:cluster';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { healthResponder, resolveHealthOptions, safeHealth } from '../health.js';
import type { SocketMonitor } from '../monitor.js';
import type { HealthServerSettings } from '../register-env.js';
import { WorkerReports } from './cluster-health.js';

interface Metrics {
  contentType: string;
  text(): Promise<string>;
  /** Ours as prom-client's JSON: what a cluster worker sends its primary. */
  json(): Promise<unknown[]>;
  /** Ours and the workers' added up (prom-client's AggregatorRegistry, without its IPC). */
  textWith(workers: unknown[][]): Promise<string>;
}

/**
 * prom-client is an optional peer: loaded only here, and only when it resolves from closewait's
 * own location. A registry of our own keeps our series out of the app's global registry (and
 * out of its /metrics, where they could clash with a second closewait).
 */
export async function loadMetrics(monitor: SocketMonitor): Promise<Metrics | string> {
  try {
    const { AggregatorRegistry, Registry } = await import('prom-client');
    const { registerMetrics } = await import('../integrations/prometheus.js');
    const registry = new Registry();
    registerMetrics(monitor, { registry });
    return {
      contentType: registry.contentType,
      text: () => registry.metrics(),
      json: () => registry.getMetricsAsJSON(),
      async textWith(workers) {
        const all = [await registry.getMetricsAsJSON(), ...workers];
        return AggregatorRegistry.aggregate(all as never).metrics();
      },
    };
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

function pathOf(url: string | undefined): string {
  const text = url ?? '/';
  const query = text.indexOf('?');
  return query === -1 ? text : text.slice(0, query);
}

function sendText(response: http.ServerResponse, status: number, body: string, type: string) {
  response.statusCode = status;
  response.setHeader('Content-Type', type);
  response.setHeader('Cache-Control', 'no-store');
  response.end(body);
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6: reachable from this host only. */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

/**
 * Said at warn, whatever the log level's default: an address other hosts can reach was chosen
 * by a variable that may have been copied from an example, and what is served there is the
 * app's business. Verbose payloads name code paths, routes and peers' addresses.
 */
function exposure(settings: HealthServerSettings): string {
  const where = `CLOSEWAIT_HEALTH_HOST=${settings.host} is not a loopback address`;
  if (settings.verbose) {
    return (
      `${where}, and CLOSEWAIT_HEALTH_VERBOSE is on: anyone who can reach this port reads the ` +
      'source files and lines, stacks, routes and socket addresses of leaks. Bind it to ' +
      '127.0.0.1, or turn verbose off and put the port behind a firewall'
    );
  }
  return (
    `${where}: other hosts can read this process's leak counts and metrics. Bind it to ` +
    '127.0.0.1 unless they must'
  );
}

/**
 * The side server of CLOSEWAIT_HEALTH_PORT: `/health/sockets` (and `/`) with the health payload,
 * `/metrics` when prom-client is importable. It must never keep the app alive: the server and
 * every connection to it are unref()ed, so a scraper's keep-alive connection does not hold up an
 * app that is done. Failures (port in use) are logged; the monitor keeps running without it.
 */
export async function startHealthServer(
  monitor: SocketMonitor,
  settings: HealthServerSettings,
  log: Logger,
  cluster?: Cluster,
): Promise<http.Server | undefined> {
  const options = resolveHealthOptions({ verbose: settings.verbose });
  const metrics = await loadMetrics(monitor);
  const workers = cluster === undefined ? undefined : new WorkerReports(cluster);
  const health = healthResponder(() => {
    try {
      return workers === undefined
        ? safeHealth(monitor, options)
        : workers.health(monitor, options);
    } catch {
      return safeHealth(monitor, options);
    }
  });
  const metricsText = (found: Metrics) =>
    workers === undefined || workers.size === 0 ? found.text() : found.textWith(workers.metrics());
  const server = http.createServer((request, response) => {
    try {
      const path = pathOf(request.url);
      if (path === '/' || path === '/health/sockets') {
        health(request, response);
      } else if (path === '/metrics' && typeof metrics === 'string') {
        sendText(
          response,
          404,
          `closewait: /metrics needs prom-client, which could not be imported here: ${metrics}\n`,
          'text/plain; charset=utf-8',
        );
      } else if (path === '/metrics' && typeof metrics !== 'string') {
        metricsText(metrics).then(
          (body) => sendText(response, 200, body, metrics.contentType),
          () => sendText(response, 500, 'closewait: metrics failed\n', 'text/plain'),
        );
      } else {
        sendText(
          response,
          404,
          'closewait: try /health/sockets or /metrics\n',
          'text/plain; charset=utf-8',
        );
      }
    } catch {
      // The response was torn down under us: nothing left to answer, nothing to throw into.
      response.destroy();
    }
  });
  server.unref();
  server.on('connection', (socket: Socket) => socket.unref());
  return new Promise((resolve) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      log.error(
        { err: error, health: { host: settings.host, port: settings.port } },
        `closewait health server could not listen on ${settings.host}:${settings.port} ` +
          `(${error.code ?? error.message}); leaks are still logged`,
      );
      resolve(undefined);
    });
    server.listen(settings.port, settings.host, () => {
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      const fields = { health: { address, port, metrics: typeof metrics !== 'string' } };
      const listening = `closewait health server listening on http://${host}:${port}/health/sockets`;
      if (isLoopback(address)) log.info(fields, listening);
      else log.warn(fields, `${listening}: ${exposure(settings)}`);
      resolve(server);
    });
  });
}
