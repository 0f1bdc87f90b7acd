/**
 * Every diagnostics channel closewait subscribes to, declared once, with what each Node line
 * publishes on it (measured on 20.20, 22.23, 24.22 and 26.12; test/discovery-channels.test.ts
 * checks each one on the line it runs on). Discovery subscribes to these and nothing else.
 */
export const CHANNELS = {
  /** Every accepted socket (for TLS servers, the raw TCP socket only). All lines. */
  serverSocket: 'net.server.socket',
  /**
   * An outgoing socket. Node 20 and Node 22 before 22.17: from `net.connect()` /
   * `net.createConnection()` only. Node 22.17+ and 24.2+ (nodejs/node#58349): from
   * `Socket.prototype.connect`, so also `new net.Socket().connect()`, `tls.connect()` and every
   * re-`connect()` of one socket. Detected at run time (announcesSocketConnect), not by version.
   */
  clientSocket: 'net.client.socket',
  /** Synchronous in `server.listen()`: its stack is the app's listen call. All lines. */
  listen: 'tracing:net.server.listen:asyncStart',
  /** undici (bundled behind `fetch`, and the package): a connection is up. No app frames. */
  undiciConnected: 'undici:client:connected',
  /** undici: synchronous in the app's `fetch()`/`request()` call, so its stack names the app. */
  undiciRequestCreate: 'undici:request:create',
  /** undici: the request's headers went out on a socket: links the request to the socket. */
  undiciSendHeaders: 'undici:client:sendHeaders',
  /**
   * Every `ClientRequest`, once flushed (its socket is usually assigned by then); no app
   * frames. Finds https Agent sockets that Node 20's `net.client.socket` never announces.
   */
  httpClientRequest: 'http.client.request.start',
  /** closewait's own, published by the opt-in `patchSocketConnect` patch. */
  patchedConnect: 'closewait:net.socket.connect',
} as const;

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS];
