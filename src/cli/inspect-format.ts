import { printable } from './printable.js';
import type { CloseWaitSocket, ProcessTcp } from './process-tcp.js';

/** One look at a process, with how long each socket has been seen (under --watch). */
export interface InspectLook {
  checkedAt: number;
  tcp: ProcessTcp;
  /** Socket key -> when a look first saw it in CLOSE_WAIT; only under --watch. */
  firstSeen: ReadonlyMap<string, number> | undefined;
}

/** A socket's identity across looks: the inode, and the 4-tuple in case the inode is reused. */
export function socketKey(socket: CloseWaitSocket): string {
  return `${socket.inode}|${socket.localAddress}|${socket.localPort}|${socket.remoteAddress}|${socket.remotePort}`;
}

function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function seconds(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

function statesText(byState: Record<string, number>): string {
  return Object.entries(byState)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([state, count]) => `${count} ${state}`)
    .join(', ');
}

/** The look as a table a person reads: a heading, then one line per CLOSE_WAIT socket. */
export function formatLook(look: InspectLook): string {
  const { tcp, firstSeen } = look;
  const count = tcp.closeWait.length;
  const lines = [
    `pid ${tcp.pid} · ${printable(tcp.command)}`,
    `${count} CLOSE_WAIT socket${count === 1 ? '' : 's'} (the peer closed, this process did not)` +
      ` · ${tcp.tcpSockets} TCP socket${tcp.tcpSockets === 1 ? '' : 's'}` +
      (tcp.tcpSockets === 0 ? '' : `: ${statesText(tcp.byState)}`),
  ];
  if (count === 0) return `${lines.join('\n')}\n`;
  const header = ['LOCAL', 'REMOTE', 'RECV-Q', 'SEND-Q', 'FIN READ', 'PEER', 'INODE'];
  if (firstSeen !== undefined) header.push('SEEN FOR');
  const rows = tcp.closeWait.map((socket) => {
    const row = [
      endpoint(socket.localAddress, socket.localPort),
      endpoint(socket.remoteAddress, socket.remotePort),
      String(socket.receiveQueue),
      String(socket.sendQueue),
      socket.finRead ? 'yes' : 'no',
      socket.peerState ?? '-',
      String(socket.inode),
    ];
    if (firstSeen !== undefined) {
      const since = firstSeen.get(socketKey(socket)) ?? look.checkedAt;
      row.push(seconds(look.checkedAt - since));
    }
    return row;
  });
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const numeric = new Set([2, 3, 6]);
  const pad = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1
          ? cell
          : numeric.has(column)
            ? cell.padStart(widths[column]!)
            : cell.padEnd(widths[column]!),
      )
      .join('  ');
  lines.push(pad(header), ...rows.map(pad));
  if (tcp.closeWait.some((socket) => socket.finRead)) {
    lines.push('FIN READ yes: the process read to the end of the stream and still has not closed');
  }
  if (tcp.closeWait.some((socket) => !socket.finRead)) {
    lines.push(
      'FIN READ no: the process stopped reading; RECV-Q is the bytes it never read, plus 1 for the FIN',
    );
  }
  lines.push(
    firstSeen === undefined
      ? 'The kernel keeps no age for a socket: --watch shows how long each is seen in CLOSE_WAIT.'
      : 'SEEN FOR: since the first look that saw it in CLOSE_WAIT (a lower bound of its age).',
  );
  return `${lines.join('\n')}\n`;
}

/** The look as JSON for scripts: stable field names, times as ISO strings and ms. */
export function lookJson(look: InspectLook) {
  const { tcp, firstSeen } = look;
  return {
    pid: tcp.pid,
    command: tcp.command,
    checkedAt: new Date(look.checkedAt).toISOString(),
    tcpSockets: tcp.tcpSockets,
    byState: tcp.byState,
    closeWait: tcp.closeWait.map((socket) => {
      const since = firstSeen?.get(socketKey(socket));
      return {
        localAddress: socket.localAddress,
        localPort: socket.localPort,
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        receiveQueue: socket.receiveQueue,
        sendQueue: socket.sendQueue,
        finRead: socket.finRead,
        unreadBytes: socket.unreadBytes,
        peerState: socket.peerState ?? null,
        inode: socket.inode,
        uid: socket.uid,
        ...(since === undefined
          ? {}
          : { firstSeenAt: new Date(since).toISOString(), seenForMs: look.checkedAt - since }),
      };
    }),
  };
}
