import { readFile } from 'node:fs/promises';
import { CLOSE_WAIT, type KernelSocketRow, TCP_STATES } from '../kernel/proc-net-tcp.js';
import { endpointKey, socketInodesOf, tcpRows } from '../kernel/process-sockets.js';

/** A CLOSE_WAIT socket of the inspected process, and what its peer's end is doing. */
export interface CloseWaitSocket extends KernelSocketRow {
  /**
   * The state of the other end when it lives in the same network namespace (a loopback peer):
   * FIN_WAIT2 while the peer still waits for our FIN. Undefined for a remote peer, or one gone.
   */
  peerState: string | undefined;
  /**
   * Whether the process has read up to the peer's FIN. The kernel counts the FIN in the receive
   * queue as one sequence number (rcv_nxt - copied_seq: measured, 1000 unread bytes show as
   * 1001): 0 means everything was read, the FIN included, and the process still has not closed.
   */
  finRead: boolean;
}

/** What /proc says about one process's TCP sockets, now. */
export interface ProcessTcp {
  pid: number;
  /**
   * Its command line, or `[name]` when /proc gives none (a zombie, a kernel thread). Raw: the
   * process chose it, escape sequences and all; see printable.ts before printing it.
   */
  command: string;
  /** TCP sockets the process holds, all states. */
  tcpSockets: number;
  byState: Record<string, number>;
  closeWait: CloseWaitSocket[];
  /** Inodes of every socket the process holds (from its fds), TCP or not. */
  socketInodes: ReadonlySet<number>;
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

async function readText(path: string, encoding: 'latin1' | 'utf8' = 'latin1'): Promise<string> {
  try {
    return await readFile(path, encoding);
  } catch {
    // No IPv6 in this kernel, or the process exited while we read: no rows from it.
    return '';
  }
}

async function commandOf(pid: number): Promise<string> {
  // Arguments may hold newlines (`python3 -c` scripts): one line per process in the heading.
  // Kept as the process gave it (UTF-8, as argv usually is); escaped where it is printed.
  const cmdline = (await readText(`/proc/${pid}/cmdline`, 'utf8'))
    .split('\0')
    .filter(Boolean)
    .join(' ')
    .replace(/\s+/g, ' ');
  if (cmdline !== '') return cmdline.length > 200 ? `${cmdline.slice(0, 197)}...` : cmdline;
  return `[${(await readText(`/proc/${pid}/comm`)).trim() || '?'}]`;
}

/**
 * Reads the process's socket fds, then its namespace's TCP tables (/proc/<pid>/net/tcp{,6}: the
 * namespace of that process, which may not be ours) and keeps the rows whose inode it holds.
 * Every state is kept, not only CLOSE_WAIT: the others give the counts, and a loopback peer's
 * row gives its state.
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
  const [rows, command] = await Promise.all([tcpRows(pid), commandOf(pid)]);
  // A peer on this machine has the same 4-tuple, swapped: its row tells how its end is doing.
  const byEndpoint = new Map(
    rows.map((row) => [
      endpointKey(row.localAddress, row.localPort, row.remoteAddress, row.remotePort),
      row,
    ]),
  );
  const byState: Record<string, number> = {};
  const closeWait: CloseWaitSocket[] = [];
  let tcpSockets = 0;
  for (const row of rows) {
    if (!inodes.has(row.inode)) continue; // another process's socket, or nobody's (inode 0)
    tcpSockets++;
    byState[row.state] = (byState[row.state] ?? 0) + 1;
    if (row.state !== TCP_STATES[CLOSE_WAIT]) continue;
    const peer = byEndpoint.get(
      endpointKey(row.remoteAddress, row.remotePort, row.localAddress, row.localPort),
    );
    closeWait.push({ ...row, peerState: peer?.state, finRead: row.receiveQueue === 0 });
  }
  closeWait.sort((a, b) => a.localPort - b.localPort || a.remotePort - b.remotePort);
  return { pid, command, tcpSockets, byState, closeWait, socketInodes: inodes };
}
