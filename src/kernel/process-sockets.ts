import { readdir, readFile, readlink } from 'node:fs/promises';
import { CLOSE_WAIT, type KernelSocketRow, parseProcNetTcp } from './proc-net-tcp.js';

/** Why the kernel view is not available here, or undefined when it is. */
export function kernelViewUnsupported(): string | undefined {
  if (process.platform !== 'linux') {
    return `the kernel check reads /proc/net/tcp, which exists on Linux only (this is ${process.platform})`;
  }
  return undefined;
}

/** Socket inodes a process holds, from the `socket:[inode]` links in /proc/<pid>/fd. */
export async function socketInodesOf(pid: number | 'self'): Promise<Set<number>> {
  const dir = `/proc/${pid}/fd`;
  const inodes = new Set<number>();
  const fds = await readdir(dir);
  // readlink per fd is the cost here (one syscall each); links vanish while we read: skip those.
  await Promise.all(
    fds.map(async (fd) => {
      try {
        const target = await readlink(`${dir}/${fd}`);
        if (target.startsWith('socket:[')) inodes.add(Number(target.slice(8, -1)));
      } catch {
        // The fd closed between readdir and readlink.
      }
    }),
  );
  return inodes;
}

async function readTable(path: string): Promise<string> {
  try {
    return await readFile(path, 'latin1');
  } catch {
    // No IPv6 in this kernel (or no /proc/net/tcp6 in this namespace): no rows from it.
    return '';
  }
}

/**
 * TCP rows of the network namespace, read as `/proc/<pid>/net/tcp{,6}`: the namespace of that
 * process, which may differ from ours. `wantState` (a hex code) keeps only rows in that state.
 */
export async function tcpRows(
  pid: number | 'self' = 'self',
  wantState?: string,
): Promise<KernelSocketRow[]> {
  const [v4, v6] = await Promise.all([
    readTable(`/proc/${pid}/net/tcp`),
    readTable(`/proc/${pid}/net/tcp6`),
  ]);
  // While sockets churn, a read of /proc/net/tcp can list one socket more than once (seen: 8
  // times): keep each 4-tuple once, or counts and the unattributed list inflate.
  const unique = new Map<string, KernelSocketRow>();
  for (const row of [...parseProcNetTcp(v4, wantState), ...parseProcNetTcp(v6, wantState)]) {
    unique.set(
      endpointKey(row.localAddress, row.localPort, row.remoteAddress, row.remotePort),
      row,
    );
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
  const inodes = await socketInodesOf(pid);
  return rows.filter((row) => inodes.has(row.inode));
}

/** `address|port|address|port`, with IPv4-mapped IPv6 reduced to IPv4 so both forms match. */
export function endpointKey(
  localAddress: string | undefined,
  localPort: number | undefined,
  remoteAddress: string | undefined,
  remotePort: number | undefined,
): string {
  const plain = (address: string | undefined) =>
    address?.startsWith('::ffff:') === true && address.includes('.') ? address.slice(7) : address;
  return `${plain(localAddress)}|${localPort}|${plain(remoteAddress)}|${remotePort}`;
}
