import { setTimer } from '../clock.js';
import { pendingWriteBytes } from '../rules/leak-rules.js';
import type { SocketRecord } from '../tracking/record.js';
import { kernelKeyOf, scanCloseWait } from './kernel-check.js';
import { tcpTablesOf } from './process-sockets.js';

/** Samples taken, and the gap between them: a reader taking even 1 KiB/s moves the queue. */
const SAMPLES = 5;
const GAP_MS = 50;

/**
 * Whether the kernel's send queue of a socket in CLOSE_WAIT moves: a peer that reads, however
 * slowly, acknowledges bytes, and the queue (bytes sent and not yet acknowledged, refilled by
 * libuv) changes from one sample to the next. In-process progress cannot tell: while one large
 * write is still in libuv's hands, Node updates neither `bytesWritten` nor the write queue size
 * it reports, so a healthy slow reader looks exactly like a peer that never reads.
 * undefined: no row to judge by (not in CLOSE_WAIT, or not connected).
 */
export async function sendQueueMoves(record: SocketRecord): Promise<boolean | undefined> {
  const key = kernelKeyOf(record);
  if (key === undefined) return undefined;
  const byKey = new Map([[key, record]]);
  const tables = tcpTablesOf('self');
  let first: number | undefined;
  for (let sample = 0; sample < SAMPLES; sample++) {
    if (sample > 0) await new Promise((resolve) => setTimer(resolve, GAP_MS).unref());
    const { matched } = await scanCloseWait(tables, byKey);
    const queue = matched[0]?.row.sendQueue;
    if (queue === undefined) return sample === 0 ? undefined : true; // it left CLOSE_WAIT
    // Nothing unacknowledged and nothing waiting in Node or libuv: there is no reader to wait
    // for (one scan, not five, for the common leak with nothing queued).
    if (first === undefined && queue === 0 && pendingWriteBytes(record.socket) === 0) return false;
    if (first === undefined) first = queue;
    else if (queue !== first) return true;
  }
  return false;
}
