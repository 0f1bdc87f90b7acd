/**
 * The CLOSE_WAIT sockets a process still holds when it exits, read synchronously from /proc
 * (Linux): this runs in 'exit' (and before a signal's death), where nothing async completes.
 *
 * A run is a diagnosis: a short-lived app that exits 300 ms after a peer hung up never sees that
 * socket become a leak (graceMs is 30 s by default), yet it holds it half-closed to the end,
 * and the end is when the answer is wanted. So `closewait run` lists every socket still in
 * CLOSE_WAIT at exit, whatever its age, beside the leaks found during the run.
 */
import { readOwnCloseWaitRows } from '../kernel/exit-check.js';
import { endpointKey } from '../kernel/process-sockets.js';
import type { SocketMonitor } from '../monitor.js';
import { whereOf } from '../report/report.js';
import type { LeakKind, SocketDirection, TrackedSocket } from '../types.js';

/** One socket in CLOSE_WAIT at exit that is not already an open leak of the report. */
export interface AtExitSocket {
  /** What it would have become had the process lived; `untracked`: no channel announced it. */
  kind: LeakKind | 'untracked';
  direction: SocketDirection | undefined;
  /** As in a leak group: the creation site, or the server (and route) that accepted it. */
  where: string;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Bytes the kernel holds in front of the peer's FIN that the process never read. */
  unreadBytes: number;
  stack: string | undefined;
}

/** Past this many, at-exit sockets are counted, not listed: the report file stays small. */
export const MAX_AT_EXIT = 1000;

function kindOf(state: TrackedSocket['state'], unreadInNode: number, unreadInKernel: number) {
  if (state === 'fin-unconsumed' || (state === 'open' && unreadInNode > 0)) {
    return 'unconsumed-fin';
  }
  // Node never saw the FIN: it waits in the kernel behind bytes nobody read.
  if (state === 'open' && unreadInKernel > 0) return 'unread-fin';
  return 'half-closed';
}

/**
 * The process's CLOSE_WAIT sockets now, less the open leaks (the report lists those), each
 * named as its leak would have been. Undefined where /proc cannot tell. Never throws.
 */
export function closeWaitAtExit(
  monitor: SocketMonitor,
): { sockets: AtExitSocket[]; notListed: number } | undefined {
  try {
    const rows = readOwnCloseWaitRows();
    if (rows === undefined) return undefined;
    const sockets: AtExitSocket[] = [];
    let notListed = 0;
    if (rows.length === 0) return { sockets, notListed };
    const tracked = new Map<string, TrackedSocket>();
    for (const socket of monitor.sockets()) {
      const key = endpointKey(
        socket.localAddress,
        socket.localPort,
        socket.remoteAddress,
        socket.remotePort,
      );
      tracked.set(key, socket);
    }
    for (const row of rows) {
      const key = endpointKey(row.localAddress, row.localPort, row.remoteAddress, row.remotePort);
      const socket = tracked.get(key);
      if (socket?.state === 'leaked') continue;
      if (sockets.length >= MAX_AT_EXIT) {
        notListed++;
        continue;
      }
      const detail = socket === undefined ? undefined : monitor.describe(socket.id);
      const endpoints = {
        localAddress: row.localAddress,
        localPort: row.localPort,
        remoteAddress: row.remoteAddress,
        remotePort: row.remotePort,
        unreadBytes: row.unreadBytes,
      };
      if (socket === undefined || detail === undefined) {
        sockets.push({
          kind: 'untracked',
          direction: undefined,
          where:
            'not tracked: opened before closewait started, in a worker thread, or by a native ' +
            'addon',
          ...endpoints,
          stack: undefined,
        });
        continue;
      }
      sockets.push({
        kind: kindOf(socket.state, detail.unreadBytes, row.unreadBytes),
        direction: socket.direction,
        where: whereOf(detail),
        ...endpoints,
        // For an accepted socket, its server's listen() stack.
        stack: detail.stack,
      });
    }
    return { sockets, notListed };
  } catch {
    return undefined;
  }
}
