/**
 * What the metrics integrations (prom-client, OpenTelemetry) count, read from a monitor. The
 * only attributes are these closed sets: one per address, route or stack would grow a time
 * series per value and take down the metrics backend before the leak takes down the app.
 */
import type { SocketMonitor } from '../monitor.js';
import type { LeakKind, SocketDirection, TrackedSocketState } from '../types.js';

export const DIRECTIONS: readonly SocketDirection[] = ['server', 'client'];
export const KINDS: readonly LeakKind[] = [
  'half-closed',
  'end-stuck',
  'unconsumed-fin',
  'unread-fin',
];
/** The states in which the peer has closed: the socket is in CLOSE_WAIT, leak or not yet. */
export const PEER_CLOSED: ReadonlySet<TrackedSocketState> = new Set([
  'peer-ended',
  'fin-unconsumed',
  'leaked',
]);

export function countByDirection(
  monitor: SocketMonitor,
  accept: (state: TrackedSocketState) => boolean,
): Record<SocketDirection, number> {
  const counts = { server: 0, client: 0 };
  for (const socket of monitor.sockets()) if (accept(socket.state)) counts[socket.direction]++;
  return counts;
}

/** Open leaks per `${direction} ${kind}`. */
export function leaksByDirectionAndKind(monitor: SocketMonitor): Map<string, number> {
  const counts = new Map<string, number>();
  for (const leak of monitor.leaks()) {
    const key = `${leak.direction} ${leak.kind}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
