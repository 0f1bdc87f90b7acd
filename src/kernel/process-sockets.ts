import { readdir, readlink } from 'node:fs/promises';
import {
  ANY_STATE,
  CLOSE_WAIT,
  type KernelSocketRow,
  stateCode,
  type TcpLine,
} from './proc-net-tcp.js';
import { readRows } from './read-rows.js';

/** Why the kernel view is not available here, or undefined when it is. */
export function kernelViewUnsupported(): string | undefined {
  if (process.platform !== 'linux') {
    return `the kernel check reads /proc/net/tcp, which exists on Linux only (this is ${process.platform})`;
  }
  return undefined;
}

/** One TCP table file, and whether its absence just means no rows. */
export interface TcpTable {
  path: string;
  /** True for tcp6: a kernel without IPv6 (or a namespace without it) has no such file. */
  missingIsEmpty: boolean;
}

/** `/proc/<pid>/net/tcp{,6}`: the tables of that process's network namespace. */
export function tcpTablesOf(pid: number | 'self'): TcpTable[] {
  return [
    { path: `/proc/${pid}/net/tcp`, missingIsEmpty: false },
    { path: `/proc/${pid}/net/tcp6`, missingIsEmpty: true },
  ];
}

/** Lines of the tables in state `wantState` (a code from `stateCode`), in slices, in order. */
export async function readTables(
  tables: readonly TcpTable[],
  wantState: number,
  onLine: (line: TcpLine) => void,
): Promise<void> {
  for (const table of tables) {
    try {
      await readRows(table.path, wantState, onLine);
    } catch (error) {
      if (!(table.missingIsEmpty && (error as NodeJS.ErrnoException).code === 'ENOENT')) {
        throw error;
      }
    }
  }
}

/**
 * readlink()s per batch. Each is one syscall on the thread pool; a batch is one turn of the
 * loop, so a process with 20,000 descriptors is read in ~80 short turns instead of one long one
 * (all at once: ~1.9 s of blocked loop at 19,000 sockets, issue 17).
 */
export const READLINK_BATCH = 256;

/**
 * Socket inodes a process holds, from the `socket:[inode]` links in /proc/<pid>/fd, read in
 * batches. With `wanted`, only those inodes are looked for, and reading stops once all are found.
 */
export async function socketInodesOf(
  pid: number | 'self',
  wanted?: { has(inode: number): boolean; readonly size: number },
): Promise<Set<number>> {
  const dir = `/proc/${pid}/fd`;
  const inodes = new Set<number>();
  const fds = await readdir(dir);
  const readOne = async (fd: string) => {
    let target: string;
    try {
      target = await readlink(`${dir}/${fd}`);
    } catch (error) {
      // The fd closed between readdir and readlink.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    if (!target.startsWith('socket:[')) return;
    const inode = Number(target.slice(8, -1));
    if (wanted === undefined || wanted.has(inode)) inodes.add(inode);
  };
  for (let first = 0; first < fds.length; first += READLINK_BATCH) {
    await Promise.all(fds.slice(first, first + READLINK_BATCH).map(readOne));
    if (wanted !== undefined && inodes.size === wanted.size) break;
  }
  return inodes;
}

/**
 * TCP rows of the network namespace, read as `/proc/<pid>/net/tcp{,6}`: the namespace of that
 * process, which may differ from ours. `wantState` (a hex code) keeps only rows in that state.
 * For `closewait inspect`: a table it cannot read (the process exited) gives no rows.
 */
export async function tcpRows(
  pid: number | 'self' = 'self',
  wantState?: string,
): Promise<KernelSocketRow[]> {
  const unique = new Map<string, KernelSocketRow>();
  // While sockets churn, a read of /proc/net/tcp can list one socket more than once (seen: 8
  // times): keep each 4-tuple once, or counts and the unattributed list inflate.
  const keep = (line: TcpLine) => {
    const row = line.row();
    if (row === undefined) return;
    unique.set(
      endpointKey(row.localAddress, row.localPort, row.remoteAddress, row.remotePort),
      row,
    );
  };
  const state = wantState === undefined ? ANY_STATE : stateCode(wantState);
  for (const table of tcpTablesOf(pid)) {
    try {
      await readRows(table.path, state, keep);
    } catch {
      // The process exited while we read, or no IPv6 here: no rows from this table.
    }
  }
  return [...unique.values()];
}

/** CLOSE_WAIT rows of the network namespace `pid` is in (every process's). */
export function closeWaitRows(pid: number | 'self' = 'self'): Promise<KernelSocketRow[]> {
  return tcpRows(pid, CLOSE_WAIT);
}

/** The CLOSE_WAIT sockets a process holds: the rows whose inode is one of its fds. */
export async function processCloseWaitRows(
  pid: number | 'self' = 'self',
): Promise<KernelSocketRow[]> {
  const rows = await closeWaitRows(pid);
  if (rows.length === 0) return rows;
  const inodes = await socketInodesOf(pid, new Set(rows.map((row) => row.inode)));
  return rows.filter((row) => inodes.has(row.inode));
}

/** `address|port|address|port`, with IPv4-mapped IPv6 reduced to IPv4 so both forms match. */
export function endpointKey(
  localAddress: string | undefined,
  localPort: number | undefined,
  remoteAddress: string | undefined,
  remotePort: number | undefined,
): string {
  return `${plainAddress(localAddress)}|${localPort}|${plainAddress(remoteAddress)}|${remotePort}`;
}

function plainAddress(address: string | undefined): string | undefined {
  return address?.startsWith('::ffff:') === true && address.includes('.')
    ? address.slice(7)
    : address;
}
