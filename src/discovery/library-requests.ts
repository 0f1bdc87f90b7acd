/**
 * Requests an HTTP library sends on a stack of its own, after the app's call has returned. got
 * (14.x) makes its `http.ClientRequest` ticks after `got()`/`got.stream()` returned, so Node's
 * channels for that request and its socket fire with no app frame on the stack: the leak would
 * be named by got's internals. got publishes channels of its own:
 * - `got:request:create`: synchronously in the app's call, so a stack captured there names the
 *   app's line;
 * - `got:request:start`: right after `http.request()` returned, in the same synchronous run, so
 *   the socket `net.client.socket` announced in that run (a new connection), or the request
 *   `http.client.request.created` announced in it (Node 22+; also for a reused keep-alive
 *   socket, assigned a tick later), is this got request's.
 * Both are keyed by got's `requestId`. Node 20 has no `http.client.request.created`: there, a got
 * request that reuses a keep-alive socket keeps the socket's first name.
 */
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { CHANNELS } from './channels.js';
import type { DiscoverySink } from './discovery.js';

/** got requests created and not yet answered: a request that never is stays until evicted. */
const MAX_PENDING = 1024;

interface GotMessage {
  requestId?: unknown;
  url?: unknown;
}

function originOf(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

export class LibraryRequests {
  /** got's requestId → the key the sink keeps the request's stack under. */
  readonly #pending = new Map<string, object>();
  /** Announced in the synchronous run now going on, while a got request is pending. */
  #recentSocket: Socket | undefined;
  #recentRequest: ClientRequest | undefined;
  /** The socket created in the constructor of #recentRequest, if it made one. */
  #recentRequestSocket: Socket | undefined;
  #clearQueued = false;
  /** Requests waiting for their socket (a reused keep-alive one comes a tick later). */
  readonly #awaitingSocket = new WeakMap<ClientRequest, object>();
  readonly #clearRecent = () => {
    this.#clearQueued = false;
    this.#recentSocket = undefined;
    this.#recentRequest = undefined;
    this.#recentRequestSocket = undefined;
  };
  readonly onRequestSocket: (this: ClientRequest, socket: Socket) => void;

  constructor(private readonly sink: DiscoverySink) {
    const requests = this;
    this.onRequestSocket = function onRequestSocket(socket) {
      try {
        const key = requests.#awaitingSocket.get(this);
        if (key !== undefined) sink.requestNamed(socket, key);
      } catch (error) {
        sink.failed(error);
      }
    };
  }

  /** Channel handlers, each behind Discovery's guard (a throw goes to the sink's `failed`). */
  handlers(
    guard: <Message>(
      handle: (message: Message, above: Function) => void,
    ) => (message: unknown) => void,
  ): Array<[string, (message: unknown) => void]> {
    const { sink } = this;
    return [
      [
        CHANNELS.gotRequestCreate,
        guard(({ requestId, url }: GotMessage, above) => {
          if (typeof requestId !== 'string') return;
          const key = {};
          if (this.#pending.size >= MAX_PENDING) {
            this.#pending.delete(this.#pending.keys().next().value!);
          }
          this.#pending.set(requestId, key);
          sink.requestCreated(key, originOf(url), above);
        }),
      ],
      [
        // Kept past the start: a retry makes a new ClientRequest under the same requestId.
        CHANNELS.gotRequestStart,
        guard(({ requestId }: GotMessage) => {
          const key = this.#pending.get(String(requestId));
          if (key !== undefined) this.#linkRecent(key);
        }),
      ],
      [
        CHANNELS.gotResponseEnd,
        guard(({ requestId }: GotMessage) => this.#pending.delete(String(requestId))),
      ],
      [
        CHANNELS.gotRequestError,
        guard(({ requestId }: GotMessage) => this.#pending.delete(String(requestId))),
      ],
      [
        CHANNELS.httpClientRequestCreated,
        guard(({ request }: { request: ClientRequest }) => {
          if (this.#pending.size === 0) return;
          this.#recentRequest = request;
          // Node announces the connection inside the ClientRequest constructor, before this.
          this.#recentRequestSocket = this.#recentSocket;
          this.#recentSocket = undefined;
          this.#queueClear();
        }),
      ],
    ];
  }

  /** From Discovery's `net.client.socket` handler: costs nothing while no got request waits. */
  clientSocket(socket: Socket): void {
    if (this.#pending.size === 0) return;
    this.#recentSocket = socket;
    this.#queueClear();
  }

  #linkRecent(key: object): void {
    const request = this.#recentRequest;
    const socket = request === undefined ? this.#recentSocket : this.#recentRequestSocket;
    this.#clearRecent();
    if (socket !== undefined) {
      this.sink.requestNamed(socket, key);
    } else if (request !== undefined) {
      if (request.socket != null) this.sink.requestNamed(request.socket, key);
      else {
        this.#awaitingSocket.set(request, key);
        request.once('socket', this.onRequestSocket);
      }
    }
  }

  /** What was announced belongs to this synchronous run only. */
  #queueClear(): void {
    if (this.#clearQueued) return;
    this.#clearQueued = true;
    queueMicrotask(this.#clearRecent);
  }
}
