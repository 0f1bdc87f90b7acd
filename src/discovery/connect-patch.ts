import dc from 'node:diagnostics_channel';
import net, { type Socket } from 'node:net';
import { CHANNELS } from './channels.js';

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
  dc.subscribe(CHANNELS.clientSocket, onSocket);
  const socket = new net.Socket();
  socket.on('error', () => {});
  try {
    socket.connect({ path: `\0closewait-probe-${process.pid}` });
  } catch {
    // Not a platform with abstract sockets: the answer is whatever was published before.
  } finally {
    dc.unsubscribe(CHANNELS.clientSocket, onSocket);
    socket.destroy();
  }
  socketConnectAnnounced = seen;
  return seen;
}

/** A private channel the opt-in `connect` patch publishes on, so one patch serves all monitors. */
const patchedConnectChannel = dc.channel(CHANNELS.patchedConnect);
let originalConnect: typeof net.Socket.prototype.connect | undefined;

function patchedConnect(this: Socket, ...args: unknown[]): Socket {
  const result = Reflect.apply(originalConnect!, this, args) as Socket;
  if (patchedConnectChannel.hasSubscribers) patchedConnectChannel.publish({ socket: this });
  return result;
}

export function installConnectPatch(): void {
  if (originalConnect !== undefined) return;
  originalConnect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = patchedConnect as typeof net.Socket.prototype.connect;
}

export function removeConnectPatchIfUnused(): void {
  if (originalConnect === undefined || patchedConnectChannel.hasSubscribers) return;
  // Someone patched over us: unwrapping now would drop their patch, so leave ours inert.
  if (net.Socket.prototype.connect !== (patchedConnect as unknown)) return;
  net.Socket.prototype.connect = originalConnect;
  originalConnect = undefined;
}
