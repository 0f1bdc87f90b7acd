/**
 * What the metrics integrations (prom-client, OpenTelemetry) count, read from a monitor. The
 * only attributes are closed sets (direction, kind): one per address, route or stack would grow
 * a time series per value and take down the metrics backend before the leak takes down the app.
 */
import { type SocketMonitor, trackerOf } from '../monitor.js';
import { DIRECTIONS, LEAK_KINDS } from '../tracking/leak-counts.js';
import type { LeakKind, SocketDirection, TrackedSocketState } from '../types.js';

export { DIRECTIONS, LEAK_KINDS as KINDS };

/** The states in which the peer has closed: the socket is in CLOSE_WAIT, leak or not yet. */
const PEER_CLOSED: ReadonlySet<TrackedSocketState> = new Set([
  'peer-ended',
  'fin-unconsumed',
  'leaked',
]);

export function countByDirection(
  monitor: SocketMonitor,
  peerClosedOnly: boolean,
): Record<SocketDirection, number> {
  // One pass over the records, nothing allocated per socket: a scrape with 50,000 sockets
  // tracked must not build 50,000 objects. A monitor of another copy has only sockets().
  const tracker = trackerOf(monitor);
  if (tracker !== undefined) return tracker.states.byDirection(peerClosedOnly);
  const counts = { server: 0, client: 0 };
  for (const socket of monitor.sockets()) {
    if (!peerClosedOnly || PEER_CLOSED.has(socket.state)) counts[socket.direction]++;
  }
  return counts;
}

/** Open leaks of one direction and kind: kept as they come and go where we can. */
export function leaksByDirectionKind(
  monitor: SocketMonitor,
): (direction: SocketDirection, kind: LeakKind) => number {
  const tracker = trackerOf(monitor);
  if (tracker !== undefined) return (direction, kind) => tracker.counts.of(direction, kind);
  const counts = new Map<string, number>();
  for (const leak of monitor.leaks()) {
    const key = `${leak.direction} ${leak.kind}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return (direction, kind) => counts.get(`${direction} ${kind}`) ?? 0;
}
