import type { Socket } from 'node:net';
import { timeOrigin } from '../clock.js';
import { pendingWriteBytes, unconsumedFinBytes } from '../rules/leak-rules.js';
import type { ServerRecord, SocketRecord } from '../tracking/record.js';
import { framesOf, sitesOf } from '../tracking/stack.js';
import type {
  LeakKind,
  RequestInfo,
  ServerInfo,
  SocketDetail,
  SocketLeak,
  TrackedSocket,
  TrackedSocketState,
} from '../types.js';
import { redactTarget } from './redact.js';

/** Internal fields we read defensively: they are not public API and differ across versions. */
interface SocketInternals {
  _httpMessage?: ClientRequestLike | null;
  encrypted?: boolean;
}

interface ClientRequestLike {
  method?: string;
  protocol?: string;
  host?: string;
  path?: string;
  getHeader?(name: string): unknown;
}

function internals(socket: Socket): SocketInternals {
  return socket as unknown as SocketInternals;
}

export function toEpoch(monotonicMs: number): number {
  return Math.round(timeOrigin + monotonicMs);
}

/** Remembers where the server listens, once (see ServerRecord.boundAddress). */
export function rememberServerAddress(server: ServerRecord): void {
  if (server.boundAddress !== undefined) return;
  try {
    const bound = server.server.address();
    if (typeof bound === 'string') server.boundAddress = bound;
    else if (bound !== null) {
      server.boundAddress = bound.address;
      server.boundPort = bound.port;
    }
  } catch {
    // Not listening (any more): nothing to remember.
  }
}

export function serverInfoOf(server: ServerRecord): ServerInfo {
  if (server.info !== undefined) return server.info;
  // A closed server has no address now: the one it had while it accepted still names it.
  rememberServerAddress(server);
  const address = server.boundAddress;
  const port = server.boundPort;
  const listenStack = framesOf(server.listenStack);
  // The app's own line, not the framework's: express, fastify, koa, @hono/node-server and
  // @nestjs all call listen() for the app, so their frame comes first; it stays in the stack.
  const { site, appSite } = sitesOf(listenStack);
  const info = { id: server.id, address, port, listenStack, listenSite: appSite ?? site };
  // Cache only a listening server's: one asked before listen() completes has no address yet.
  if (address !== undefined) server.info = info;
  return info;
}

function requestOf(record: SocketRecord, keepQuery: boolean): RequestInfo | undefined {
  const context = record.context;
  if (context?.requestMethod !== undefined) {
    return {
      method: context.requestMethod,
      url: redactTarget((context.requestOrigin ?? '') + (context.requestPath ?? ''), keepQuery),
      handoff: context.handoff,
    };
  }
  // An http.Agent socket whose response was never read still belongs to its ClientRequest.
  const request = internals(record.socket)._httpMessage;
  if (record.direction !== 'client' || request == null || typeof request.method !== 'string') {
    return undefined;
  }
  const hostHeader = request.getHeader?.('host');
  const host = typeof hostHeader === 'string' ? hostHeader : request.host;
  return {
    method: request.method,
    url: redactTarget(
      `${request.protocol ?? 'http:'}//${host ?? ''}${request.path ?? ''}`,
      keepQuery,
    ),
    handoff: undefined,
  };
}

/** What the socket is doing now; live, not cached, so an assertion sees the present. */
export function stateOf(record: SocketRecord): TrackedSocketState {
  if (record.leak !== undefined) return 'leaked';
  if (record.peerEndedAt !== 0) return 'peer-ended';
  if (unconsumedFinBytes(record.socket) !== -1) return 'fin-unconsumed';
  return 'open';
}

/** The light view of a tracked socket, for `sockets()`: no stacks, no byte counts. */
export function trackedSocketOf(record: SocketRecord): TrackedSocket {
  const socket = record.socket;
  return {
    id: record.id,
    direction: record.direction,
    state: stateOf(record),
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    tls: internals(socket).encrypted === true,
    createdAt: toEpoch(record.createdAt),
    peerEndedAt: record.peerEndedAt === 0 ? undefined : toEpoch(record.peerEndedAt),
  };
}

/** Stack and sites: for accepted sockets, the server's listen(), parsed once per server. */
function originOf(record: SocketRecord, server: ServerInfo | undefined) {
  // Accepted sockets are created by Node's accept loop: their own stack names nobody, so the
  // server's listen() stands in for it.
  if (server !== undefined && record.server !== undefined) {
    record.server.sites ??= sitesOf(server.listenStack);
    return { stack: server.listenStack, ...record.server.sites };
  }
  const stack = framesOf(record.stack);
  return { stack, ...sitesOf(stack) };
}

/** `keepQuery`: the monitor's option of that name (queries are removed by default). */
export function describeRecord(record: SocketRecord, keepQuery = false): SocketDetail {
  const socket = record.socket;
  const server = record.server === undefined ? undefined : serverInfoOf(record.server);
  const { stack, site, appSite } = originOf(record, server);
  const unread = unconsumedFinBytes(socket);
  return {
    ...trackedSocketOf(record),
    bytesRead: socket.bytesRead,
    bytesWritten: socket.bytesWritten ?? 0,
    unreadBytes: unread === -1 ? socket.readableLength : unread,
    pendingWriteBytes: pendingWriteBytes(socket),
    stack,
    site,
    appSite,
    server,
    request: requestOf(record, keepQuery),
  };
}

/**
 * A leak, written out field by field: one literal gives every leak the same hidden class, where
 * copying a detail object with rest/spread left some in dictionary mode (measured: grouping
 * 10,000 such leaks took ~100 ms instead of a few).
 */
export function buildLeak(
  record: SocketRecord,
  kind: LeakKind,
  now: number,
  keepQuery = false,
): SocketLeak {
  const socket = record.socket;
  const server = record.server === undefined ? undefined : serverInfoOf(record.server);
  const { stack, site, appSite } = originOf(record, server);
  const unread = unconsumedFinBytes(socket);
  const finSeenAt =
    kind === 'unconsumed-fin'
      ? record.finUnreadSince
      : kind === 'unread-fin'
        ? (record.context?.kernelFinSince ?? 0)
        : record.peerEndedAt;
  return {
    id: record.id,
    direction: record.direction,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    tls: internals(socket).encrypted === true,
    createdAt: toEpoch(record.createdAt),
    bytesRead: socket.bytesRead,
    bytesWritten: socket.bytesWritten ?? 0,
    unreadBytes: unread === -1 ? socket.readableLength : unread,
    pendingWriteBytes: pendingWriteBytes(socket),
    stack,
    site,
    appSite,
    server,
    request: requestOf(record, keepQuery),
    kind,
    peerEndedAt: toEpoch(finSeenAt),
    detectedAt: toEpoch(now),
    kernelUnreadBytes: kind === 'unread-fin' ? (record.context?.kernelUnreadMark ?? 0) : undefined,
  };
}
