import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import {
  checkMonitor,
  HEALTH_CONTENT_TYPE,
  type HealthOptions,
  resolveHealthOptions,
  safeHealth,
} from '../health.js';
import { createSocketMonitor, type SocketMonitor } from '../monitor.js';
import { invalidOption, type PinoLikeLogger, type SocketMonitorOptions } from '../options.js';

export interface ClosewaitFastifyOptions extends SocketMonitorOptions, HealthOptions {
  /**
   * A monitor the app made: the plugin starts it if needed but never stops it. Without one, the
   * plugin creates a monitor from the other options and stops it in `onClose`.
   */
  monitor?: SocketMonitor;
  /** The health route. Default '/health/sockets'; `false` registers no route. */
  path?: string | false;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The SocketMonitor the closewait plugin watches this app with. */
    closewait: SocketMonitor;
  }
}

const HEALTH_KEYS = new Set(['warnAt', 'failAt', 'verbose']);
/** Fastify's own register() options: they reach the plugin too, and are not ours to check. */
const REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers']);

/**
 * Fastify's own logger when it has one. Without one (`logger: false`, the default) `fastify.log`
 * is abstract-logging's no-op object, with no `level`: leaks would vanish, so the monitor's
 * default (stderr at 'warn') applies instead.
 */
function fastifyLogger(fastify: FastifyInstance): PinoLikeLogger | undefined {
  const log = fastify.log as unknown as Record<string, unknown>;
  return typeof log.level === 'string' && typeof log.child === 'function'
    ? (fastify.log as unknown as PinoLikeLogger)
    : undefined;
}

function splitOptions(options: ClosewaitFastifyOptions) {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('closewait plugin options', 'an object', options);
  }
  const { monitor, path, ...rest } = options;
  const health: Record<string, unknown> = {};
  const monitorOptions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rest)) {
    if (HEALTH_KEYS.has(key)) health[key] = value;
    else if (!REGISTER_KEYS.has(key)) monitorOptions[key] = value;
  }
  return { monitor, path: path ?? '/health/sockets', health, monitorOptions };
}

const closewaitFastify: FastifyPluginCallback<ClosewaitFastifyOptions> = (
  fastify,
  options,
  done,
) => {
  // avvio does not catch a callback plugin's throw: it would escape as an uncaught exception.
  // Handed to done(), it fails registration (and so `ready()`/`listen()`) instead.
  try {
    register(fastify, options);
  } catch (error) {
    done(error as Error);
    return;
  }
  done();
};

function register(fastify: FastifyInstance, options: ClosewaitFastifyOptions): void {
  // Everything is checked before anything is created or started.
  const { monitor: given, path, health, monitorOptions } = splitOptions(options);
  if (path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw invalidOption('path', "a route path starting with '/', or false", path);
  }
  const healthOptions = resolveHealthOptions(health);
  let monitor: SocketMonitor;
  const owned = given === undefined;
  if (given !== undefined) {
    monitor = checkMonitor(given);
    const extra = Object.keys(monitorOptions);
    if (extra.length > 0) {
      throw invalidOption(
        extra[0]!,
        'left out when `monitor` is given (set it on that monitor instead)',
        monitorOptions[extra[0]!],
      );
    }
  } else {
    if (monitorOptions.logger === undefined) {
      const logger = fastifyLogger(fastify);
      if (logger !== undefined) monitorOptions.logger = logger;
    }
    monitor = createSocketMonitor(monitorOptions as SocketMonitorOptions);
  }

  fastify.decorate('closewait', monitor);
  if (path !== false) {
    fastify.route({
      method: 'GET',
      url: path,
      exposeHeadRoute: true,
      handler(_request, reply) {
        const { httpStatus, payload } = safeHealth(monitor, healthOptions);
        return (
          reply
            .code(httpStatus)
            .header('cache-control', 'no-store')
            .type(HEALTH_CONTENT_TYPE)
            // A Buffer, not a string: Fastify would append '; charset=utf-8' to a string's type,
            // and the same check should answer the same headers on Express and Fastify.
            .send(Buffer.from(JSON.stringify(payload)))
        );
      },
    });
    fastify.route({
      method: ['POST', 'PUT', 'PATCH', 'DELETE'],
      url: path,
      handler(_request, reply) {
        return reply
          .code(405)
          .header('allow', 'GET, HEAD')
          .header('cache-control', 'no-store')
          .send();
      },
    });
  }
  // Started now, before listen(): the server's listen() call is then seen, and it names every
  // socket the server accepts.
  if (!monitor.running) monitor.start();
  if (owned) {
    fastify.addHook('onClose', (_instance, hookDone) => {
      monitor.stop();
      hookDone();
    });
  }
}

/** `app.register(closewaitPlugin, { failAt: 10 })`: the health route, `app.closewait`. */
export const closewaitPlugin = fp(closewaitFastify, { name: 'closewait', fastify: '4.x || 5.x' });
export default closewaitPlugin;
