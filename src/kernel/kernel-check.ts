import type { SocketRecord } from '../tracking/record.js';
import type { KernelCheckResult } from '../types.js';
import type { KernelSocketRow } from './proc-net-tcp.js';
import {
  closeWaitRows,
  endpointKey,
  kernelViewUnsupported,
  socketInodesOf,
} from './process-sockets.js';

export interface KernelMatch {
  record: SocketRecord;
  row: KernelSocketRow;
}

export interface KernelSnapshot {
  /** Tracked sockets the kernel shows in CLOSE_WAIT. */
  matched: KernelMatch[];
  /** CLOSE_WAIT sockets of this process that no tracked socket accounts for. */
  unattributed: KernelSocketRow[];
}

/** The endpoint key of a connected socket, cached: a connected socket's 4-tuple never changes. */
function keyOf(record: SocketRecord): string | undefined {
  const cached = record.context?.endpointKey;
  if (cached !== undefined) return cached;
  const socket = record.socket;
  if (socket.remotePort === undefined || socket.localPort === undefined) return undefined;
  const context = record.more;
  context.endpointKey = endpointKey(
    socket.localAddress,
    socket.localPort,
    socket.remoteAddress,
    socket.remotePort,
  );
  return context.endpointKey;
}

/**
 * Reads the kernel's CLOSE_WAIT rows and sorts them into tracked and unattributed. A matched
 * row is ours by its 4-tuple (unique in a namespace; a loopback peer's row has it swapped), so
 * the per-fd scan of /proc/self/fd runs only when some rows match nothing.
 */
export async function snapshotKernel(records: Iterable<SocketRecord>): Promise<KernelSnapshot> {
  const unsupported = kernelViewUnsupported();
  if (unsupported !== undefined) throw new Error(unsupported);
  const rows = await closeWaitRows('self');
  const matched: KernelMatch[] = [];
  if (rows.length === 0) return { matched, unattributed: [] };
  const byKey = new Map<string, KernelSocketRow>();
  for (const row of rows) {
    byKey.set(endpointKey(row.localAddress, row.localPort, row.remoteAddress, row.remotePort), row);
  }
  for (const record of records) {
    const key = keyOf(record);
    if (key === undefined) continue;
    const row = byKey.get(key);
    if (row === undefined) continue;
    matched.push({ record, row });
    byKey.delete(key);
  }
  if (byKey.size === 0) return { matched, unattributed: [] };
  const inodes = await socketInodesOf('self');
  const unattributed = [...byKey.values()].filter((row) => inodes.has(row.inode));
  return { matched, unattributed };
}

/** The answer where there is no kernel view to give (off Linux, or /proc unreadable). */
export function unsupportedKernelResult(reason: string): KernelCheckResult {
  return {
    supported: false,
    reason,
    checkedAt: Date.now(),
    durationMs: 0,
    closeWait: 0,
    confirmed: [],
    hidden: [],
    unattributed: [],
    rows: [],
  };
}
