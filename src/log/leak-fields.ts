import type { DestroyInfo, LeakKind, LeakResolution, SocketLeak } from '../types.js';

/** What a leak line carries under its `leak` key: stable names, searchable in any log store. */
export interface LeakLogFields {
  id: number;
  kind: LeakKind;
  direction: 'server' | 'client';
  /** The leak's group, as the report names it: the site, or the server and route. */
  where: string;
  localAddress: string | undefined;
  localPort: number | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  tls: boolean;
  /** From the socket's creation to the leak's detection. */
  ageMs: number;
  /** From the peer's FIN (or the first sweep that saw it unconsumed) to the detection. */
  closeWaitMs: number;
  bytesRead: number;
  bytesWritten: number;
  unreadBytes: number;
  pendingWriteBytes: number;
  kernelUnreadBytes?: number;
  request?: { method: string; url: string; handoff?: 'upgrade' | 'connect' };
  server?: { address: string | undefined; port: number | undefined; listenSite?: string };
  site?: string;
  appSite?: string;
  stack?: string;
}

/** Tokens often ride in query strings; a leak line only needs the path to name the route. */
function withoutQuery(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

export function leakFields(leak: SocketLeak, where: string): LeakLogFields {
  const fields: LeakLogFields = {
    id: leak.id,
    kind: leak.kind,
    direction: leak.direction,
    where,
    localAddress: leak.localAddress,
    localPort: leak.localPort,
    remoteAddress: leak.remoteAddress,
    remotePort: leak.remotePort,
    tls: leak.tls,
    ageMs: Math.max(0, leak.detectedAt - leak.createdAt),
    closeWaitMs: Math.max(0, leak.detectedAt - leak.peerEndedAt),
    bytesRead: leak.bytesRead,
    bytesWritten: leak.bytesWritten,
    unreadBytes: leak.unreadBytes,
    pendingWriteBytes: leak.pendingWriteBytes,
  };
  if (leak.kernelUnreadBytes !== undefined) fields.kernelUnreadBytes = leak.kernelUnreadBytes;
  if (leak.request !== undefined) {
    const { method, url, handoff } = leak.request;
    fields.request = { method, url: withoutQuery(url) };
    if (handoff !== undefined) fields.request.handoff = handoff;
  }
  if (leak.server !== undefined) {
    const { address, port, listenSite } = leak.server;
    fields.server = { address, port };
    if (listenSite !== undefined) fields.server.listenSite = listenSite;
  }
  if (leak.site !== undefined) fields.site = leak.site;
  if (leak.appSite !== undefined) fields.appSite = leak.appSite;
  if (leak.stack !== undefined) fields.stack = leak.stack;
  return fields;
}

/** The few fields that name a leak again on later lines (resolved, destroyed). */
export function leakIdentity(leak: SocketLeak, where: string) {
  return {
    id: leak.id,
    kind: leak.kind,
    direction: leak.direction,
    where,
    localPort: leak.localPort,
    remoteAddress: leak.remoteAddress,
    remotePort: leak.remotePort,
  };
}

/** One stable message per kind, in plain words, so a log search can match it exactly. */
const LEAK_MESSAGES: Record<LeakKind, string> = {
  'half-closed':
    'CLOSE_WAIT socket leak: the peer closed the connection and this app never closed its socket',
  'end-stuck':
    'CLOSE_WAIT socket leak: the peer closed the connection; this app called end() but its ' +
    'close is stuck behind data the peer does not read',
  'unconsumed-fin':
    'CLOSE_WAIT socket leak: the peer closed the connection but this app never read to the end, ' +
    'so it never closed its socket',
  'unread-fin':
    'CLOSE_WAIT socket leak: the peer closed the connection but this app stopped reading, ' +
    'so it never closed its socket (seen by the kernel check)',
};

export function leakMessage(kind: LeakKind): string {
  return LEAK_MESSAGES[kind];
}

const RESOLVED_MESSAGES: Record<LeakResolution['reason'], string> = {
  closed: 'CLOSE_WAIT socket leak resolved: the app closed the socket',
  consumed: 'CLOSE_WAIT socket leak resolved: the app read to the end at last',
  destroyed: "CLOSE_WAIT socket leak resolved: closewait's auto-destroy policy closed the socket",
  progress: 'CLOSE_WAIT socket leak withdrawn: the socket moved again and is judged afresh',
};

export function resolvedMessage(reason: LeakResolution['reason']): string {
  return RESOLVED_MESSAGES[reason] ?? `CLOSE_WAIT socket leak resolved (${String(reason)})`;
}

export function destroyMessage(info: DestroyInfo): string {
  return info.dryRun
    ? 'closewait auto-destroy (dry run) would destroy this CLOSE_WAIT socket leak'
    : 'closewait auto-destroy destroyed a CLOSE_WAIT socket leak the app never closed';
}
