/**
 * How sockets are found: a handler for each channel of channels.ts, and the few listeners we add
 * where no channel exists. Nothing here decides what a leak is; it hands sockets to the sink.
 */
import dc from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import type { Server, Socket } from 'node:net';
import tls from 'node:tls';
import type { StackHolder } from '../tracking/stack.js';
import { CHANNELS } from './channels.js';
import { installConnectPatch, removeConnectPatchIfUnused } from './connect-patch.js';

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

  /**
   * One handler per channel, each behind the same guard: a throw in here (an odd message, a
   * socket in a state we did not foresee) goes to the sink's `failed`, never into the code
   * that published. A handler that captures a stack cuts it at its guard (`above`).
   */
  private channelHandlers(): Array<[string, (message: unknown) => void]> {
    const { sink } = this;
    // Messages are typed here as each channel's publisher documents them; a field we read that
    // is missing throws inside the guard.
    const guard = <Message>(handle: (message: Message, above: Function) => void) => {
      const guarded = (message: unknown) => {
        try {
          handle(message as Message, guarded);
        } catch (error) {
          sink.failed(error);
        }
      };
      return guarded;
    };
    const handlers: Array<[string, (message: unknown) => void]> = [
      [
        CHANNELS.serverSocket,
        guard(({ socket }: { socket: Socket }) => {
          const server = (socket as Socket & { server?: Server | null }).server;
          // The app holds the TLSSocket, announced by 'secureConnection', not this raw socket.
          if (server instanceof tls.Server) this.hookTlsServer(server);
          else if (server != null) this.acceptedSocket(socket, server);
        }),
      ],
      [
        CHANNELS.clientSocket,
        guard(({ socket }: { socket: Socket }, above) => sink.connected(socket, above)),
      ],
      [
        CHANNELS.listen,
        guard(({ server }: { server: Server }, above) => {
          sink.listening(server, above);
          if (server instanceof tls.Server) this.hookTlsServer(server);
        }),
      ],
      [
        CHANNELS.undiciConnected,
        guard(({ socket }: { socket: Socket }) => sink.connected(socket, undefined)),
      ],
      [
        CHANNELS.undiciRequestCreate,
        guard(({ request }: { request: UndiciRequestLike }, above) => {
          const origin = typeof request.origin === 'string' ? request.origin : undefined;
          sink.requestCreated(request, origin, above);
        }),
      ],
      [
        CHANNELS.undiciSendHeaders,
        guard(({ request, socket }: { request: UndiciRequestLike; socket: Socket }) => {
          const { method, origin, path } = request;
          sink.requestSent(socket, request, String(method), String(origin), String(path));
        }),
      ],
      [
        CHANNELS.httpClientRequest,
        guard(({ request }: { request: ClientRequest }) => {
          if (request.socket != null) sink.connected(request.socket, undefined);
          else request.on('socket', this.onRequestSocket);
        }),
      ],
    ];
    if (this.patchConnect) {
      handlers.push([
        CHANNELS.patchedConnect,
        guard(({ socket }: { socket: Socket }, above) => sink.connected(socket, above)),
      ]);
    }
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
