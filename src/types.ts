import type { KernelReadError } from './errors.js';
import type { KernelSocketRow } from './kernel/proc-net-tcp.js';

/**
 * - `half-closed`: the peer's FIN was seen (`'end'`), the app called neither `end()` nor
 *   `destroy()`, and nothing was written for `graceMs`.
 * - `end-stuck`: `end()` was called after the peer's FIN, but our FIN is still queued behind
 *   data the peer does not read, with no progress for `graceMs`.
 * - `unconsumed-fin`: Node has read the peer's FIN but the app never consumed the bytes in front
 *   of it, so `'end'` is never emitted (an unread `fetch()` body), with no progress for `graceMs`.
 * - `unread-fin`: the kernel holds the peer's FIN behind bytes Node never read (a paused socket);
 *   only the kernel check (`/proc`, Linux) sees it.
 */
export type LeakKind = 'half-closed' | 'end-stuck' | 'unconsumed-fin' | 'unread-fin';

/** `server` for sockets accepted by a listening server, `client` for outgoing ones. */
export type SocketDirection = 'server' | 'client';

export interface ServerInfo {
  /** Stable per server, for grouping. */
  id: number;
  address: string | undefined;
  port: number | undefined;
  /** The `listen()` call, when it happened while the monitor was running. */
  listenStack: string | undefined;
  /**
   * The app's line that called listen(): the first frame outside node_modules, so an app served
   * by a framework is named by its own file; else the first frame outside Node.
   */
  listenSite: string | undefined;
}

export interface RequestInfo {
  method: string;
  /** Path for server sockets; origin + path for client sockets. */
  url: string;
  /** Set when `http.Server` handed the socket over on `'upgrade'` or `'connect'`. */
  handoff: 'upgrade' | 'connect' | undefined;
}

/** What is known of one tracked socket now, for `describe(id)`. Times are epoch milliseconds. */
export interface SocketDetail extends TrackedSocket {
  bytesRead: number;
  bytesWritten: number;
  /** Bytes Node holds in front of the FIN that the app has not consumed. */
  unreadBytes: number;
  /** Bytes we still have to send (our side's queue). */
  pendingWriteBytes: number;
  /**
   * Creation stack, where captured. For accepted sockets, the stack of the server's `listen()`
   * (the accept loop's stack would name only Node's internals).
   */
  stack: string | undefined;
  /** First frame that is neither Node's internals nor closewait. */
  site: string | undefined;
  /** First frame outside node_modules. */
  appSite: string | undefined;
  /** For accepted sockets: the listening server. */
  server: ServerInfo | undefined;
  /** The request that preceded an upgrade hand-off, or the client request last sent on it. */
  request: RequestInfo | undefined;
}

/** One leaked socket. Times are epoch milliseconds. */
export interface SocketLeak extends Omit<SocketDetail, 'state' | 'peerEndedAt'> {
  kind: LeakKind;
  /** When the peer's FIN was seen (for `unconsumed-fin`/`unread-fin`: first seen unconsumed). */
  peerEndedAt: number;
  detectedAt: number;
  /** For `unread-fin`: bytes the kernel holds unread in front of the FIN. */
  kernelUnreadBytes?: number;
}

export type TrackedSocketState = 'open' | 'peer-ended' | 'fin-unconsumed' | 'leaked';

/** A tracked socket still open, as `sockets()` shows it. */
export interface TrackedSocket {
  id: number;
  direction: SocketDirection;
  state: TrackedSocketState;
  localAddress: string | undefined;
  localPort: number | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  tls: boolean;
  createdAt: number;
  peerEndedAt: number | undefined;
}

export interface LeakResolution {
  /**
   * `closed`: the app closed the socket; `consumed`: it read past the FIN at last;
   * `destroyed`: the auto-destroy policy closed it; `progress`: it moved again (wrote, or its
   * queued bytes drained) and is judged afresh, as any half-closed socket.
   */
  reason: 'closed' | 'consumed' | 'destroyed' | 'progress';
  resolvedAt: number;
}

export interface DestroyInfo {
  /** True when `autoDestroy.dryRun` only counted what would have been destroyed. */
  dryRun: boolean;
  destroyedAt: number;
}

export interface SocketMonitorEvents {
  leak: [leak: SocketLeak];
  'leak-resolved': [leak: SocketLeak, resolution: LeakResolution];
  /** The auto-destroy policy destroyed (or, in dry-run, would have destroyed) a leak. */
  destroy: [leak: SocketLeak, info: DestroyInfo];
}

/** A TCP socket as /proc/net/tcp shows it. */
export type { KernelSocketRow as KernelSocket } from './kernel/proc-net-tcp.js';

/** What the last kernel check saw, as report() carries it. */
export interface KernelSummary {
  checkedAt: number;
  /** CLOSE_WAIT sockets of this process. */
  closeWait: number;
  /** CLOSE_WAIT sockets of this process that no monitor tracks, in this thread or another. */
  unattributed: KernelSocketRow[];
}

export interface KernelCheckResult {
  /** False off Linux (no /proc): `reason` says why, and every list is empty. */
  supported: boolean;
  /** Why there is no answer: off Linux, or (with `error`) a read of /proc that failed. */
  reason: string | undefined;
  checkedAt: number;
  durationMs: number;
  /** CLOSE_WAIT sockets of this process. */
  closeWait: number;
  /** Leaks Node found that the kernel confirms are in CLOSE_WAIT. */
  confirmed: SocketLeak[];
  /**
   * Tracked sockets in CLOSE_WAIT whose FIN Node has not read (a paused reader), with the bytes
   * in front of it. Each becomes an
   * `unread-fin` leak once a later check, `graceMs` on, sees no reading progress.
   */
  hidden: Array<{ socket: SocketDetail; unreadBytes: number; leak: SocketLeak | undefined }>;
  unattributed: KernelSocketRow[];
  /** Every CLOSE_WAIT socket of this process, with the tracked socket's id where one matches. */
  rows: Array<KernelSocketRow & { socketId: number | undefined }>;
  /**
   * Set when the check could not read /proc (descriptors exhausted, no permission; `code`
   * `ERR_CLOSEWAIT_KERNEL_READ`, Node's error as `cause`). `supported` stays true, `reason`
   * holds the message, every list is empty and the counts are 0, and nothing was declared or
   * resolved from this check.
   */
  error?: KernelReadError;
}
