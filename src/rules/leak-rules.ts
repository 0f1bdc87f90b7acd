/**
 * The leak rules, in one place: what each kind means and how a socket is judged. The tracker
 * applies them on its clock (grace, sweep, kernel check), the auto-destroy policy re-judges with
 * them before it acts, and `closewait/testing` asks them for a socket's kind now.
 *
 * The kinds themselves are defined, for users, on `LeakKind` in types.ts.
 */
import type { Socket } from 'node:net';
import type { SocketRecord } from '../tracking/record.js';
import type { LeakKind } from '../types.js';

/** Internal fields we read defensively: they are not public API and differ across versions. */
interface SocketInternals {
  _handle?: { writeQueueSize?: number } | null;
  _readableState?: { ended?: boolean; endEmitted?: boolean; length?: number };
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
 * in front of it were never consumed: the bytes waiting, or -1 when that is not the case. Only
 * the stream's internal state says so: `ended` is a plain field on Node 20 and a bit-field
 * getter on Node 24; both read the same here.
 */
export function unconsumedFinBytes(socket: Socket): number {
  const state = internals(socket)._readableState;
  if (state === undefined || state.ended !== true || state.endEmitted === true) return -1;
  if (socket.destroyed) return -1;
  return typeof state.length === 'number' ? state.length : 0;
}

export type HalfClosedVerdict = 'half-closed' | 'end-stuck' | 'progress' | 'closed';

/**
 * Judges a socket whose peer ended it, `graceMs` after the FIN or after the last progress we
 * saw. Writes after the FIN and a shrinking send queue both count as progress: a server still
 * streaming a response to a half-closed peer is not a leak yet. Takes new progress marks.
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

/**
 * The kind a socket has now, grace aside: what an assertion at the end of a test blames.
 * undefined: not half-closed by the peer (as far as Node and the last kernel check know), or
 * our FIN is out.
 */
export function kindNow(record: SocketRecord): LeakKind | undefined {
  const socket = record.socket;
  // (A socket destroyed whose 'close' has not come yet is judged as it stood: it is still
  // tracked, and an assertion that waits sees it go.)
  if (record.peerEndedAt !== 0) {
    if (!socket.writableEnded) return 'half-closed';
    return socket.writableFinished ? undefined : 'end-stuck';
  }
  if (unconsumedFinBytes(socket) !== -1) return 'unconsumed-fin';
  if (record.context !== undefined && record.context.kernelFinSince !== 0) return 'unread-fin';
  return undefined;
}

/**
 * Whether a declared leak is still the leak it was, judged afresh: the auto-destroy policy acts
 * on nothing else. A half-closed socket that wrote, or an unread FIN with bytes consumed in front
 * of it, has made progress and is no longer the same leak.
 */
export function stillLeaking(record: SocketRecord): boolean {
  const kind = record.leak?.kind;
  if (kind === 'half-closed' || kind === 'end-stuck') return judgeHalfClosed(record) === kind;
  if (kind === 'unconsumed-fin') {
    return unconsumedFinBytes(record.socket) === record.finUnreadLength;
  }
  if (kind === 'unread-fin') {
    return record.peerEndedAt === 0 && unconsumedFinBytes(record.socket) === -1;
  }
  return false;
}
