import { epochNow, setImmediateReal } from '../clock.js';
import { KernelReadError } from '../errors.js';
import type { SocketRecord } from '../tracking/record.js';
import type { KernelCheckResult } from '../types.js';
import { InodeSet } from './inode-set.js';
import { kernelEndpoints } from './kernel-address.js';
import { CLOSE_WAIT, type KernelSocketRow, stateCode } from './proc-net-tcp.js';
import {
  kernelViewUnsupported,
  readTables,
  socketInodesOf,
  type TcpTable,
  tcpTablesOf,
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

const CLOSE_WAIT_CODE = stateCode(CLOSE_WAIT);

/**
 * Unmatched rows kept whole. Past this many (other processes' CLOSE_WAIT sockets: one leaking
 * neighbour can have 100,000) only their inodes are kept, and the rare one that turns out to be
 * ours is read again: a row object is ~200 bytes, an inode in a Set ~30.
 */
const MAX_HELD_ROWS = 1024;

/** Tracked sockets keyed per slice: the first key of a socket costs getsockname + getpeername. */
const KEYS_PER_SLICE = 1024;

const nextTurn = () => new Promise<void>((resolve) => setImmediateReal(resolve));

/**
 * The 4-tuple as the kernel's row prints it (`kernelEndpoints`), cached: a connected socket's
 * 4-tuple never changes.
 */
export function kernelKeyOf(record: SocketRecord): string | undefined {
  const cached = record.context?.endpointKey;
  if (cached !== undefined) return cached;
  const { localAddress, localPort, remoteAddress, remotePort } = record.socket;
  if (localAddress === undefined || localPort === undefined) return undefined;
  if (remoteAddress === undefined || remotePort === undefined) return undefined;
  const key = kernelEndpoints(localAddress, localPort, remoteAddress, remotePort);
  if (key !== undefined) record.more.endpointKey = key;
  return key;
}

async function keyedRecords(records: Iterable<SocketRecord>): Promise<Map<string, SocketRecord>> {
  const byKey = new Map<string, SocketRecord>();
  let inSlice = 0;
  for (const record of records) {
    const key = kernelKeyOf(record);
    if (key !== undefined) byKey.set(key, record);
    if (++inSlice === KEYS_PER_SLICE) {
      inSlice = 0;
      await nextTurn();
    }
  }
  return byKey;
}

/** What one pass over the CLOSE_WAIT rows found. */
export interface CloseWaitScan<T> {
  /** Rows whose endpoints are a key of `byKey`, with its value. */
  matched: Array<{ owner: T; row: KernelSocketRow }>;
  /** Inodes of the other rows (0 left out: no descriptor holds such a socket). */
  unmatched: InodeSet;
  /** The first MAX_HELD_ROWS of those rows, by inode. */
  held: Map<number, KernelSocketRow>;
}

/**
 * One pass over the tables' CLOSE_WAIT rows, sorted as they arrive into those whose endpoints
 * (`kernelEndpoints`) are a key of `byKey` and the rest. A matched row is ours by its 4-tuple
 * (unique in a namespace; a loopback peer's row has it swapped). Only matched rows and the
 * first unmatched ones are parsed whole; of the rest only the inode is read.
 */
export async function scanCloseWait<T>(
  tables: readonly TcpTable[],
  byKey: ReadonlyMap<string, T>,
): Promise<CloseWaitScan<T>> {
  // While sockets churn, one read of /proc/net/tcp can list a socket more than once (seen: 8
  // times): each is kept once, by 4-tuple or inode, or counts and the unattributed list inflate.
  const matched = new Map<string, { owner: T; row: KernelSocketRow }>();
  const unmatched = new InodeSet();
  const held = new Map<number, KernelSocketRow>();
  await readTables(tables, CLOSE_WAIT_CODE, (line) => {
    const key = line.endpoints();
    const owner = key === undefined ? undefined : byKey.get(key);
    if (owner !== undefined) {
      if (matched.has(key!)) return;
      const row = line.row();
      if (row !== undefined) matched.set(key!, { owner, row });
    } else if (held.size < MAX_HELD_ROWS) {
      const row = line.row();
      if (row === undefined || row.inode === 0) return;
      unmatched.add(row.inode);
      held.set(row.inode, row);
    } else {
      const inode = line.inode();
      if (inode > 0) unmatched.add(inode);
    }
  });
  return { matched: [...matched.values()], unmatched, held };
}

/**
 * Reads the kernel's CLOSE_WAIT rows and sorts them into tracked and unattributed. The per-fd
 * scan of /proc/self/fd runs only when some rows match no tracked socket, and stops once every
 * one of them is found. Rejects with a KernelReadError when /proc cannot be read: a check that
 * saw nothing must not pass for one that saw no CLOSE_WAIT.
 */
export async function snapshotKernel(
  records: Iterable<SocketRecord>,
  tables: readonly TcpTable[] = tcpTablesOf('self'),
  pid: number | 'self' = 'self',
): Promise<KernelSnapshot> {
  const unsupported = kernelViewUnsupported();
  if (unsupported !== undefined) throw new Error(unsupported);
  const byKey = await keyedRecords(records);
  try {
    const scan = await scanCloseWait(tables, byKey);
    const matched = scan.matched.map(({ owner, row }) => ({ record: owner, row }));
    if (scan.unmatched.size === 0) return { matched, unattributed: [] };
    const ours = await socketInodesOf(pid, scan.unmatched);
    const unattributed: KernelSocketRow[] = [];
    const notHeld = new Set<number>();
    for (const inode of ours) {
      const row = scan.held.get(inode);
      if (row === undefined) notHeld.add(inode);
      else unattributed.push(row);
    }
    if (notHeld.size > 0) {
      // Ours, but past MAX_HELD_ROWS: read the tables again for these rows alone.
      await readTables(tables, CLOSE_WAIT_CODE, (line) => {
        if (!notHeld.delete(line.inode())) return;
        const row = line.row();
        if (row !== undefined) unattributed.push(row);
      });
    }
    return { matched, unattributed };
  } catch (error) {
    // A failed system call (EMFILE, ENFILE, EACCES, ...) is a failed read; anything else is a
    // bug, and stays one.
    if ((error as NodeJS.ErrnoException).syscall === undefined) throw error;
    throw new KernelReadError(error);
  }
}

/** The answer where there is no kernel view to give (off Linux, or /proc unreadable). */
export function unsupportedKernelResult(reason: string): KernelCheckResult {
  return {
    supported: false,
    reason,
    checkedAt: epochNow(),
    durationMs: 0,
    closeWait: 0,
    confirmed: [],
    hidden: [],
    unattributed: [],
    rows: [],
  };
}

/** The answer of a check that could not read /proc: it saw nothing, so every list is empty. */
export function failedKernelResult(error: KernelReadError, durationMs: number): KernelCheckResult {
  return {
    supported: true,
    reason: error.message,
    error,
    checkedAt: epochNow(),
    durationMs,
    closeWait: 0,
    confirmed: [],
    hidden: [],
    unattributed: [],
    rows: [],
  };
}
