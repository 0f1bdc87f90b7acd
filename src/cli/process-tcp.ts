import { readFile } from 'node:fs/promises';
import {
  CLOSE_WAIT,
  type KernelSocketRow,
  parseProcNetTcp,
  TCP_STATES,
} from '../kernel/proc-net-tcp.js';
import { socketInodesOf } from '../kernel/process-sockets.js';

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
  /** Data bytes the process never read, in front of the FIN: the receive queue less the FIN. */
  unreadBytes: number;
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

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'latin1');
  } catch {
    // No IPv6 in this kernel, or the process exited while we read: no rows from it.
    return '';
  }
}

async function commandOf(pid: number): Promise<string> {
  // Arguments may hold newlines (`python3 -c` scripts): one line per process in the heading.
  const cmdline = (await readText(`/proc/${pid}/cmdline`))
    .split('\0')
    .filter(Boolean)
    .join(' ')
    .replace(/\s+/g, ' ');
  if (cmdline !== '') return cmdline.length > 200 ? `${cmdline.slice(0, 197)}...` : cmdline;
  return `[${(await readText(`/proc/${pid}/comm`)).trim() || '?'}]`;
}

/** The columns read from every row: `sl: local rem st queues tr retrnsmt uid timeout inode`. */
const ROW_HEAD =
  /^\s*\d+: ([0-9A-Fa-f]+:[0-9A-Fa-f]+) ([0-9A-Fa-f]+:[0-9A-Fa-f]+) \S+ \S+ \S+ \S+ +\d+ +\d+ (\d+)/;
/** How /proc/net/tcp6 writes an IPv4-mapped address (::ffff:a.b.c.d) in front of the IPv4 word. */
const V4_MAPPED_PREFIX = '0000000000000000FFFF0000';

/** An endpoint as both tables may write it: a v4 peer of a dual-stack socket is in the other. */
function spellings(endpoint: string): string[] {
  const colon = endpoint.indexOf(':');
  const address = endpoint.slice(0, colon).toUpperCase();
  const port = endpoint.slice(colon);
  if (address.length === 8) return [endpoint, `${V4_MAPPED_PREFIX}${address}${port}`];
  if (address.startsWith(V4_MAPPED_PREFIX)) return [endpoint, `${address.slice(24)}${port}`];
  return [endpoint];
}

/**
 * Rows of the sockets the process holds, one per 4-tuple, as raw lines. Rows are picked by inode
 * before any is parsed: a busy host's table holds a lot (here, while other tests ran: 44,000 to
 * 131,000 rows). Measured at 44,000 rows: parsing every row ~200 ms, this scan ~25 ms.
 * A 4-tuple is unique in a namespace, yet the same row can come twice: the kernel writes the
 * table a chunk per read() and resumes by position, so sockets opened or closed meanwhile
 * shift rows into the next chunk (seen: one row 8 times while other tests churned sockets).
 * Keyed by 4-tuple, each socket counts once.
 */
function heldRows(texts: readonly string[], inodes: ReadonlySet<number>): Map<string, string> {
  const held = new Map<string, string>();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const head = ROW_HEAD.exec(line);
      // Inode 0: a socket no process holds any more (TIME_WAIT, an orphan): nobody's.
      if (head === null || head[3] === '0' || !inodes.has(Number(head[3]))) continue;
      held.set(`${head[1]} ${head[2]}`, line);
    }
  }
  return held;
}

function parseLine(line: string): KernelSocketRow | undefined {
  // parseProcNetTcp skips its first line, the table's header.
  return parseProcNetTcp(`header\n${line}`)[0];
}

/**
 * The states of the given rows' peers, where the peer is local (its row has the endpoints
 * swapped): one more pass over the tables, made only when there are CLOSE_WAIT rows.
 */
function peerStates(texts: readonly string[], lines: readonly string[]): Map<string, string> {
  const wanted = new Map<string, string>();
  for (const line of lines) {
    const head = ROW_HEAD.exec(line);
    if (head === null) continue;
    for (const local of spellings(head[2]!)) {
      for (const remote of spellings(head[1]!)) wanted.set(`${local} ${remote}`, line);
    }
  }
  const states = new Map<string, string>();
  for (const text of texts) {
    for (const peer of text.split('\n')) {
      const head = ROW_HEAD.exec(peer);
      const ours = head === null ? undefined : wanted.get(`${head[1]} ${head[2]}`);
      if (ours === undefined) continue;
      const state = parseLine(peer)?.state;
      if (state !== undefined) states.set(ours, state);
    }
  }
  return states;
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
  const [v4, v6, command] = await Promise.all([
    readText(`/proc/${pid}/net/tcp`),
    readText(`/proc/${pid}/net/tcp6`),
    commandOf(pid),
  ]);
  const texts = [v4, v6];
  const byState: Record<string, number> = {};
  const closeWaitLines: string[] = [];
  const closeWaitRows: KernelSocketRow[] = [];
  let tcpSockets = 0;
  const closeWaitName = TCP_STATES[CLOSE_WAIT];
  for (const line of heldRows(texts, inodes).values()) {
    const row = parseLine(line);
    if (row === undefined) continue;
    tcpSockets++;
    byState[row.state] = (byState[row.state] ?? 0) + 1;
    if (row.state !== closeWaitName) continue;
    closeWaitLines.push(line);
    closeWaitRows.push(row);
  }
  const peers = closeWaitLines.length === 0 ? undefined : peerStates(texts, closeWaitLines);
  const closeWait = closeWaitRows.map(
    (row, index): CloseWaitSocket => ({
      ...row,
      peerState: peers?.get(closeWaitLines[index]!),
      finRead: row.receiveQueue === 0,
      unreadBytes: Math.max(0, row.receiveQueue - 1),
    }),
  );
  closeWait.sort((a, b) => a.localPort - b.localPort || a.remotePort - b.remotePort);
  return { pid, command, tcpSockets, byState, closeWait, socketInodes: inodes };
}
