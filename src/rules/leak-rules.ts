/**
 * The leak rules, in one place: how a socket is judged for each kind. The tracker applies them
 * on its clock (the due queue: judgeHalfClosed; the sweep: judgeUnconsumedFin; the kernel view:
 * judgeUnreadFin) and acts on the verdicts; the auto-destroy policy re-judges with
 * stillLeaking before it acts; `closewait/testing` asks kindNow for a socket's kind at the end
 * of a test.
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

/**
 * What one sweep's look at a socket says of the `unconsumed-fin` rule, given the bytes Node holds
 * in front of a FIN it read (`unconsumedFinBytes`): `gone` (the FIN was consumed or the socket
 * closed since the last look), `changed` (first sight, or bytes consumed: the clock restarts),
 * `leak` (unchanged for `graceMs`), or `waiting`.
 */
export type UnconsumedFinVerdict = 'gone' | 'changed' | 'leak' | 'waiting';

export function judgeUnconsumedFin(
  record: SocketRecord,
  unread: number,
  now: number,
  graceMs: number,
): UnconsumedFinVerdict {
  if (unread === -1) return record.finUnreadSince !== 0 ? 'gone' : 'waiting';
  if (record.finUnreadSince === 0 || unread !== record.finUnreadLength) return 'changed';
  // (- 1: the sweep runs on libuv's whole-millisecond clock; without the tolerance a leak due
  // now waits one more sweep. Measured by the bench: +250 ms at graceMs 1000.)
  if (record.leak === undefined && now - record.finUnreadSince >= graceMs - 1) return 'leak';
  return 'waiting';
}

/**
 * What one kernel check says of the `unread-fin` rule for a socket in CLOSE_WAIT whose FIN Node
 * has not read: `changed` (first sight, or the app consumed some of the `unconsumed` bytes in
 * front of the FIN since the last check, `before`), `leak` (nothing consumed for `graceMs`), or
 * `waiting`.
 */
export function judgeUnreadFin(
  record: SocketRecord,
  unconsumed: number,
  before: number | undefined,
  now: number,
  graceMs: number,
): 'changed' | 'leak' | 'waiting' {
  const since = record.context?.kernelFinSince ?? 0;
  if (since === 0 || before === undefined || unconsumed < before) return 'changed';
  if (record.leak === undefined && now - since >= graceMs) return 'leak';
  return 'waiting';
}
