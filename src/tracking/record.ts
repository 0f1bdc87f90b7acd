import type { Server, Socket } from 'node:net';
import type { ServerInfo, SocketDirection, SocketLeak } from '../types.js';
import type { Sites, StackHolder } from './stack.js';

/** What we know of a listening server: accepted sockets are reported by it, not by their stack. */
export class ServerRecord {
  /** The `listen()` call's stack, when the server started listening while we watched. */
  listenStack: StackHolder | undefined;
  /** Set once one of its sockets has leaked (reported in groups, and for adaptive stacks). */
  hasLeaked = false;
  /**
   * What leaks report of it, built at the first leak: a flood of 10,000 leaks from one server
   * must not parse its listen stack 10,000 times (measured: most of ~70 µs per leak). Cleared
   * when it listens again.
   */
  info: ServerInfo | undefined = undefined;
  /** The listen stack's site and app site, parsed once (a flood shares one server). */
  sites: Sites | undefined = undefined;
  /**
   * Where it listened, read when it accepted its first socket: a server closed before its
   * leaks are shown (a test's cleanup, a shutdown) has no address left to ask for.
   */
  boundAddress: string | undefined = undefined;
  boundPort: number | undefined = undefined;
  constructor(
    readonly id: number,
    readonly server: Server,
  ) {}
}

/**
 * One tracked socket. Times are monotonic milliseconds (clock.ts); they are turned into epoch
 * milliseconds only when a record is shown to the user.
 */
export class SocketRecord {
  /** Index in the registry's slot array; -1 once released. */
  slot = -1;
  /** When the peer's FIN was seen through `'end'`; 0 until then. */
  peerEndedAt = 0;
  /** When the half-closed check is next due; meaningful only while queued. */
  dueAt = 0;
  /** Position in the due queue; -1 when not queued. */
  dueIndex = -1;
  /** The state StateCounts counts it in; -1 when not counted. */
  countedAs = -1;
  /** `bytesWritten` at the last check: a socket still writing is not a leak yet. */
  writtenMark = -1;
  /** Bytes still queued at the last check after `end()`: falling means the FIN is flushing. */
  pendingMark = -1;
  /** First sweep that saw a FIN read by Node but not consumed by the app; 0 if none. */
  finUnreadSince = 0;
  /** Bytes buffered in front of that FIN at the last sweep: a change is consumption. */
  finUnreadLength = 0;
  /** The open leak, if this socket is one now. */
  leak: SocketLeak | undefined = undefined;
  /** What few sockets carry (a request, a kernel observation): allocated on first use. */
  context: SocketContext | undefined = undefined;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly direction: SocketDirection,
    readonly createdAt: number,
    public stack: StackHolder | undefined,
    readonly server: ServerRecord | undefined,
  ) {}

  /** The context, created if needed: for writers; readers use `context?.`. */
  get more(): SocketContext {
    this.context ??= new SocketContext();
    return this.context;
  }
}

/**
 * The fields most sockets never need, kept out of SocketRecord so that every tracked socket
 * costs less (the bench measures bytes per socket against a 300-byte target).
 */
export class SocketContext {
  /** Last request carried by the socket, or the request that preceded an upgrade hand-off. */
  requestMethod: string | undefined = undefined;
  requestOrigin: string | undefined = undefined;
  requestPath: string | undefined = undefined;
  handoff: 'upgrade' | 'connect' | undefined = undefined;
  /** First kernel check that showed CLOSE_WAIT while Node had not read the FIN; 0 if none. */
  kernelFinSince = 0;
  /** Bytes unread in front of that FIN at that check: shrinking means the app reads. */
  kernelUnreadMark = 0;
  /** The 4-tuple as /proc/net/tcp prints it, cached once the socket is connected. */
  endpointKey: string | undefined = undefined;
  /** Set when the auto-destroy policy destroyed it, so the resolution says so. */
  destroyedByPolicy = false;
}
