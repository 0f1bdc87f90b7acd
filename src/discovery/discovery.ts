/**
 * How sockets are found: every diagnostics channel we subscribe to, and the few listeners we add
 * where no channel exists. Nothing here decides what a leak is; it hands sockets to the sink.
 *
 * What each Node version announces (measured on 20.20.2 and 24.21.0, see README):
 * - `net.server.socket`: every accepted socket (for TLS servers, the raw TCP socket only).
 * - `net.client.socket`: Node 20 publishes it in `net.connect()`/`net.createConnection()` only;
 *   Node 24 in `Socket.prototype.connect`, so also `new net.Socket().connect()` and
 *   `tls.connect()` (nodejs/node#58349), and again on every re-`connect()` of one socket.
 * - `tracing:net.server.listen:asyncStart`: synchronous in `server.listen()`, so its stack is
 *   the app's listen call.
 * - `undici:request:create`: synchronous in the app's `fetch()`/`request()` call, on both the
 *   bundled undici behind global `fetch` and the `undici` package; `undici:client:connected`
 *   and `undici:client:sendHeaders` link sockets and requests, but run with no app frames.
 * - `http.client.request.start`: every `ClientRequest`, published once it is flushed (its socket
 *   is assigned by then): finds https Agent sockets that Node 20 never announces.
 */
import dc from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import net, { type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import type { StackHolder } from '../tracking/stack.js';

export interface UndiciRequestLike {
  method?: unknown;
  origin?: unknown;
  path?: unknown;
}

export interface DiscoverySink {
  /** A socket accepted by `server`. */
  accepted(socket: Socket, server: Server): void;
  /**
   * An outgoing socket. `above` is the frame to cut the creation stack at (our handler), or
   * undefined when the stack here holds no app frames; `stack` when captured earlier.
   */
  connected(socket: Socket, above: Function | undefined, stack?: StackHolder): void;
  listening(server: Server, above: Function): void;
  /** A stack for this request, if sampling wants one (the app's `fetch()` call site). */
  requestCreated(request: object, origin: string | undefined, above: Function): void;
  requestSent(socket: Socket, request: object, method: string, origin: string, path: string): void;
  handedOver(socket: Socket, method: string, url: string): void;
  failed(error: unknown): void;
}

interface HttpServerSocket extends Socket {
  parser?: { incoming?: { upgrade?: boolean; method?: string; url?: string } | null } | null;
}

/**
 * Whether `net.client.socket` is published by `Socket.prototype.connect` (so for
 * `new net.Socket().connect()`, `tls.connect()` and re-connects) rather than by `net.connect()`
 * alone (nodejs/node#58349: Node 22.17+ / 24.2+). Probed once with a connect to an abstract
 * socket path that cannot exist: the channel is published synchronously inside connect(), and
 * the socket is destroyed before it could do anything.
 */
let socketConnectAnnounced: boolean | undefined;
export function announcesSocketConnect(): boolean {
  if (socketConnectAnnounced !== undefined) return socketConnectAnnounced;
  let seen = false;
  const onSocket = () => {
    seen = true;
  };
  dc.subscribe('net.client.socket', onSocket);
  const socket = new net.Socket();
  socket.on('error', () => {});
  try {
    socket.connect({ path: `\0closewait-probe-${process.pid}` });
  } catch {
    // Not a platform with abstract sockets: the answer is whatever was published before.
  } finally {
    dc.unsubscribe('net.client.socket', onSocket);
    socket.destroy();
  }
  socketConnectAnnounced = seen;
  return seen;
}

/** A private channel the opt-in `connect` patch publishes on, so one patch serves all monitors. */
const patchedConnectChannel = dc.channel('closewait:net.socket.connect');
let originalConnect: typeof net.Socket.prototype.connect | undefined;

function patchedConnect(this: Socket, ...args: unknown[]): Socket {
  const result = Reflect.apply(originalConnect!, this, args) as Socket;
  if (patchedConnectChannel.hasSubscribers) patchedConnectChannel.publish({ socket: this });
  return result;
}

function installConnectPatch(): void {
  if (originalConnect !== undefined) return;
  originalConnect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = patchedConnect as typeof net.Socket.prototype.connect;
}

function removeConnectPatchIfUnused(): void {
  if (originalConnect === undefined || patchedConnectChannel.hasSubscribers) return;
  // Someone patched over us: unwrapping now would drop their patch, so leave ours inert.
  if (net.Socket.prototype.connect !== (patchedConnect as unknown)) return;
  net.Socket.prototype.connect = originalConnect;
  originalConnect = undefined;
}

export class Discovery {
  private readonly subscriptions: Array<[string, (message: unknown) => void]>;
  private readonly tlsServers = new Set<Server>();
  private running = false;

  // Listeners we add to Node objects: created once per monitor, never per socket or request.
  readonly onSecureConnection: (this: Server, socket: Socket) => void;
  readonly onTlsServerClose: (this: Server) => void;
  readonly onRequestSocket: (this: ClientRequest, socket: Socket) => void;
  readonly onSocketListenerRemoved: (this: HttpServerSocket, event: string | symbol) => void;

  constructor(
    private readonly sink: DiscoverySink,
    private readonly patchConnect: boolean,
  ) {
    const discovery = this;
    this.onSecureConnection = function onSecureConnection(socket) {
      try {
        discovery.acceptedSocket(socket, this);
      } catch (error) {
        sink.failed(error);
      }
    };
    this.onTlsServerClose = function onTlsServerClose() {
      discovery.unhookTlsServer(this);
    };
    this.onRequestSocket = function onRequestSocket(socket) {
      try {
        sink.connected(socket, undefined);
      } catch (error) {
        sink.failed(error);
      }
    };
    // http.Server removes its 'data' and 'end' listeners while `socket.parser.incoming` is
    // still the request it is about to hand over on 'upgrade'/'connect' (Node 20 and 24
    // alike); the 'removeListener' event lets us read that request without touching the data
    // flow. Streams run in EventEmitter's shape mode, where removing an event's only listener
    // emits nothing: 'data' is usually silent, 'end' (net's, http's and ours) is not.
    this.onSocketListenerRemoved = function onSocketListenerRemoved(event) {
      if (event !== 'end' && event !== 'data') return;
      try {
        const request = this.parser?.incoming;
        if (request?.upgrade !== true) return;
        this.removeListener('removeListener', discovery.onSocketListenerRemoved);
        sink.handedOver(this, String(request.method), String(request.url));
      } catch (error) {
        sink.failed(error);
      }
    };
    this.subscriptions = this.channelHandlers();
  }

  private channelHandlers(): Array<[string, (message: unknown) => void]> {
    const { sink } = this;
    const onServerSocket = (message: unknown) => {
      try {
        const socket = (message as { socket: Socket }).socket;
        const server = (socket as Socket & { server?: Server | null }).server;
        if (server instanceof tls.Server) {
          // The app holds the TLSSocket, announced by 'secureConnection', not this raw socket.
          this.hookTlsServer(server);
          return;
        }
        if (server != null) this.acceptedSocket(socket, server);
      } catch (error) {
        sink.failed(error);
      }
    };
    const onClientSocket = (message: unknown) => {
      try {
        sink.connected((message as { socket: Socket }).socket, onClientSocket);
      } catch (error) {
        sink.failed(error);
      }
    };
    const onListen = (message: unknown) => {
      try {
        const server = (message as { server: Server }).server;
        sink.listening(server, onListen);
        if (server instanceof tls.Server) this.hookTlsServer(server);
      } catch (error) {
        sink.failed(error);
      }
    };
    const onUndiciConnected = (message: unknown) => {
      try {
        sink.connected((message as { socket: Socket }).socket, undefined);
      } catch (error) {
        sink.failed(error);
      }
    };
    const onUndiciRequestCreate = (message: unknown) => {
      try {
        const request = (message as { request: UndiciRequestLike }).request;
        const origin = typeof request.origin === 'string' ? request.origin : undefined;
        sink.requestCreated(request, origin, onUndiciRequestCreate);
      } catch (error) {
        sink.failed(error);
      }
    };
    const onUndiciSendHeaders = (message: unknown) => {
      try {
        const { request, socket } = message as { request: UndiciRequestLike; socket: Socket };
        sink.requestSent(
          socket,
          request,
          String(request.method),
          String(request.origin),
          String(request.path),
        );
      } catch (error) {
        sink.failed(error);
      }
    };
    // Node publishes this in ClientRequest#_finish, once the request is flushed: the socket is
    // usually assigned by then, and the stack holds no app frames (it runs asynchronously).
    const onHttpClientRequest = (message: unknown) => {
      try {
        const request = (message as { request: ClientRequest }).request;
        if (request.socket != null) sink.connected(request.socket, undefined);
        else request.on('socket', this.onRequestSocket);
      } catch (error) {
        sink.failed(error);
      }
    };
    const handlers: Array<[string, (message: unknown) => void]> = [
      ['net.server.socket', onServerSocket],
      ['net.client.socket', onClientSocket],
      ['tracing:net.server.listen:asyncStart', onListen],
      ['undici:client:connected', onUndiciConnected],
      ['undici:request:create', onUndiciRequestCreate],
      ['undici:client:sendHeaders', onUndiciSendHeaders],
      ['http.client.request.start', onHttpClientRequest],
    ];
    if (this.patchConnect) handlers.push([patchedConnectChannel.name as string, onClientSocket]);
    return handlers;
  }

  private acceptedSocket(socket: Socket, server: Server): void {
    this.sink.accepted(socket, server);
    // Only http servers that can hand sockets over need the hook (one listener per socket,
    // and an event per removeListener call): a server with no 'upgrade'/'connect' listener
    // never hands one over ('connect' then destroys; Node 24 also destroys 'upgrade').
    if (
      (socket as HttpServerSocket).parser != null &&
      (server.listenerCount('upgrade') > 0 || server.listenerCount('connect') > 0)
    ) {
      socket.on('removeListener', this.onSocketListenerRemoved);
    }
  }

  private hookTlsServer(server: Server): void {
    if (this.tlsServers.has(server)) return;
    this.tlsServers.add(server);
    server.on('secureConnection', this.onSecureConnection);
    server.on('close', this.onTlsServerClose);
  }

  private unhookTlsServer(server: Server): void {
    if (!this.tlsServers.delete(server)) return;
    server.removeListener('secureConnection', this.onSecureConnection);
    server.removeListener('close', this.onTlsServerClose);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const [name, handler] of this.subscriptions) dc.subscribe(name, handler);
    if (this.patchConnect) installConnectPatch();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    for (const [name, handler] of this.subscriptions) dc.unsubscribe(name, handler);
    for (const server of [...this.tlsServers]) this.unhookTlsServer(server);
    if (this.patchConnect) removeConnectPatchIfUnused();
  }

  /** Removes what we added to a socket, when the monitor lets go of it. */
  release(socket: Socket): void {
    socket.removeListener('removeListener', this.onSocketListenerRemoved);
  }
}
