import { readFile } from 'node:fs/promises';
import {
  CLOSE_WAIT,
  type KernelSocketRow,
  parseProcNetTcp,
  TCP_STATES,
} from '../kernel/proc-net-tcp.js';
import { endpointKey, socketInodesOf } from '../kernel/process-sockets.js';

/** A CLOSE_WAIT socket of the inspected process, and what its peer's end is doing. */
export interface CloseWaitSocket extends KernelSocketRow {
  /**
   * The state of the other end when it lives in the same network namespace (a loopback peer):
   * FIN_WAIT2 while the peer still waits for our FIN. Undefined for a remote peer, or one gone.
   */
  peerState: string | undefined;
}

/** What /proc says about one process's TCP sockets, now. */
export interface ProcessTcp {
  pid: number;
  /** Its command line, or `[name]` when /proc gives none (a zombie, a kernel thread). */
  command: string;
  /** TCP sockets the process holds, all states. */
  tcpSockets: number;
  byState: Record<string, number>;
  closeWait: CloseWaitSocket[];
}

/** Why a process can't be inspected: gone, or not ours to read. */
export class ProcessUnreadableError extends Error {
  constructor(
    readonly pid: number,
    readonly code: 'ENOENT' | 'EACCES',
  ) {
    super(
      code === 'ENOENT'
        ? `no process ${pid} (nothing at /proc/${pid})`
        : `not allowed to read /proc/${pid}/fd: run as the process's user, or as root`,
    );
    this.name = 'ProcessUnreadableError';
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'latin1');
  } catch {
    // No IPv6 in this kernel, or the process exited while we read: no rows from it.
    return '';
  }
}

async function commandOf(pid: number): Promise<string> {
  const cmdline = (await readText(`/proc/${pid}/cmdline`)).split('\0').filter(Boolean).join(' ');
  if (cmdline !== '') return cmdline.length > 200 ? `${cmdline.slice(0, 197)}...` : cmdline;
  return `[${(await readText(`/proc/${pid}/comm`)).trim() || '?'}]`;
}

function keyOf(row: KernelSocketRow, swapped = false): string {
  return swapped
    ? endpointKey(row.remoteAddress, row.remotePort, row.localAddress, row.localPort)
    : endpointKey(row.localAddress, row.localPort, row.remoteAddress, row.remotePort);
}

/**
 * Reads the process's socket fds, then its namespace's TCP tables (/proc/<pid>/net/tcp{,6}: the
 * namespace of that process, which may not be ours) and keeps the rows whose inode it holds.
 * The whole table is parsed, not only CLOSE_WAIT rows: the other states give the counts, and
 * a loopback peer's row gives its state.
 */
export async function readProcessTcp(pid: number): Promise<ProcessTcp> {
  let inodes: Set<number>;
  try {
    inodes = await socketInodesOf(pid);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') throw new ProcessUnreadableError(pid, 'ENOENT');
    if (code === 'EACCES' || code === 'EPERM') throw new ProcessUnreadableError(pid, 'EACCES');
    throw error;
  }
  const [v4, v6, command] = await Promise.all([
    readText(`/proc/${pid}/net/tcp`),
    readText(`/proc/${pid}/net/tcp6`),
    commandOf(pid),
  ]);
  const rows = [...parseProcNetTcp(v4), ...parseProcNetTcp(v6)];
  const byKey = new Map<string, KernelSocketRow>();
  for (const row of rows) byKey.set(keyOf(row), row);

  const byState: Record<string, number> = {};
  const closeWait: CloseWaitSocket[] = [];
  let tcpSockets = 0;
  const closeWaitName = TCP_STATES[CLOSE_WAIT];
  for (const row of rows) {
    // Inode 0: a socket no process holds any more (TIME_WAIT, an orphan): nobody's.
    if (row.inode === 0 || !inodes.has(row.inode)) continue;
    tcpSockets++;
    byState[row.state] = (byState[row.state] ?? 0) + 1;
    if (row.state !== closeWaitName) continue;
    const peer = byKey.get(keyOf(row, true));
    closeWait.push({ ...row, peerState: peer?.state });
  }
  closeWait.sort((a, b) => a.localPort - b.localPort || a.remotePort - b.remotePort);
  return { pid, command, tcpSockets, byState, closeWait };
}
