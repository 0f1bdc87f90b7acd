import type { Socket } from 'node:net';
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

/** Internal fields we read defensively: they are not public API and differ across versions. */
interface SocketInternals {
  _handle?: { writeQueueSize?: number } | null;
  _readableState?: { ended?: boolean; endEmitted?: boolean; length?: number };
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

/** Bytes our side still has to hand to the kernel: Node's buffer plus libuv's write queue. */
export function pendingWriteBytes(socket: Socket): number {
  const queued = internals(socket)._handle?.writeQueueSize;
  return socket.writableLength + (typeof queued === 'number' ? queued : 0);
}

/**
 * Node has read the peer's FIN (`push(null)`) but `'end'` has not been emitted because bytes
 * in front of it were never consumed. Only the stream's internal state says so: `ended` is a
 * plain field on Node 20 and a bit-field getter on Node 24; both read the same here.
 */
export function unconsumedFinBytes(socket: Socket): number {
  const state = internals(socket)._readableState;
  if (state === undefined || state.ended !== true || state.endEmitted === true) return -1;
  if (socket.destroyed) return -1;
  return typeof state.length === 'number' ? state.length : 0;
}

export type HalfClosedVerdict = LeakKind | 'progress' | 'closed';

/**
 * Judges a socket whose peer ended it, `graceMs` after the FIN or after the last progress we
 * saw. Writes after the FIN and a shrinking send queue both count as progress: a server still
 * streaming a response to a half-closed peer is not a leak yet.
 */
export function judgeHalfClosed(record: SocketRecord): HalfClosedVerdict {
  const socket = record.socket;
  if (socket.destroyed) return 'closed';
  const written = socket.bytesWritten ?? 0;
  const pending = pendingWriteBytes(socket);
  const progressed = written !== record.writtenMark || pending < record.pendingMark;
  record.writtenMark = written;
  record.pendingMark = pending;
  if (progressed) return 'progress';
  if (!socket.writableEnded) return 'half-closed';
  if (socket.writableFinished) return 'closed';
  return 'end-stuck';
}

/** Marks taken when the FIN is seen, the baseline for "nothing happened since". */
export function markProgress(record: SocketRecord): void {
  record.writtenMark = record.socket.bytesWritten ?? 0;
  record.pendingMark = pendingWriteBytes(record.socket);
}

export function toEpoch(monotonicMs: number): number {
  return Math.round(performance.timeOrigin + monotonicMs);
}

export function serverInfoOf(server: ServerRecord): ServerInfo {
  if (server.info !== undefined) return server.info;
  let address: string | undefined;
  let port: number | undefined;
  try {
    const bound = server.server.address();
    if (typeof bound === 'string') address = bound;
    else if (bound !== null) {
      address = bound.address;
      port = bound.port;
    }
  } catch {
    // A closed server has no address; the record still names its listen site.
  }
  const listenStack = framesOf(server.listenStack);
  // The app's own line, not the framework's: express, fastify, koa, @hono/node-server and
  // @nestjs all call listen() for the app, so their frame comes first; it stays in the stack.
  const { site, appSite } = sitesOf(listenStack);
  const info = { id: server.id, address, port, listenStack, listenSite: appSite ?? site };
  // Cache only a listening server's: one asked before listen() completes has no address yet.
  if (address !== undefined) server.info = info;
  return info;
}

function requestOf(record: SocketRecord): RequestInfo | undefined {
  const context = record.context;
  if (context?.requestMethod !== undefined) {
    return {
      method: context.requestMethod,
      url: (context.requestOrigin ?? '') + (context.requestPath ?? ''),
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
    url: `${request.protocol ?? 'http:'}//${host ?? ''}${request.path ?? ''}`,
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

export function describeRecord(record: SocketRecord): SocketDetail {
  const socket = record.socket;
  const server = record.server === undefined ? undefined : serverInfoOf(record.server);
  // Accepted sockets are created by Node's accept loop: their own stack names nobody, so the
  // server's listen() stands in for it.
  const stack = server !== undefined ? server.listenStack : framesOf(record.stack);
  const { site, appSite } = sitesOf(stack);
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
    request: requestOf(record),
  };
}

export function buildLeak(record: SocketRecord, kind: LeakKind, now: number): SocketLeak {
  const { state: _state, peerEndedAt: _peerEndedAt, ...detail } = describeRecord(record);
  const finSeenAt =
    kind === 'unconsumed-fin'
      ? record.finUnreadSince
      : kind === 'unread-fin'
        ? (record.context?.kernelFinSince ?? 0)
        : record.peerEndedAt;
  const leak: SocketLeak = {
    ...detail,
    kind,
    peerEndedAt: toEpoch(finSeenAt),
    detectedAt: toEpoch(now),
  };
  if (kind === 'unread-fin') leak.kernelUnreadBytes = record.context?.kernelUnreadMark ?? 0;
  return leak;
}
