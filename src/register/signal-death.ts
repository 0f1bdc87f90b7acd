/**
 * A process killed by a signal emits no 'exit': to leave a report behind, something must run
 * first. A JS signal listener does, but it changes how the process dies: with any listener, Node
 * no longer dies of SIGINT/SIGTERM at once; the signal is queued for the event loop, and a loop
 * with nothing left to do exits 0 before it gets there. Two apps showed it (issue 14): one that
 * cleans up on SIGINT, removes its handler and raises SIGINT again (130 without closewait, 0
 * with), and `setTimeout(() => process.kill(process.pid, 'SIGTERM'))` (143 without, 0 with).
 *
 * So our listener only ever acts where the signal would have killed the process:
 * - when the app has a listener of its own, ours writes the report and leaves the rest to it;
 * - when ours is alone, it writes the report, removes itself (Node restores the default action
 *   when a signal's last listener goes) and raises the signal again, which now kills;
 * - a signal the app sends itself (`process.kill(process.pid, ...)`) while ours is the only
 *   listener is the same death, raised synchronously: ours steps aside before it is sent, so it
 *   kills at once, as it would have without closewait, instead of being queued behind a loop
 *   that may exit first. That is why `process.kill` is wrapped (the wrapper only ever adds the
 *   report; the call itself goes through unchanged).
 *
 * Known limit: an app with no handler whose event loop is blocked (a synchronous busy loop)
 * dies of SIGINT/SIGTERM only once the loop runs our listener, as with any JS listener.
 */
import { constants } from 'node:os';
import { setTimer } from '../clock.js';

const WATCHED = ['SIGINT', 'SIGTERM'] as const;
export type WatchedSignal = (typeof WATCHED)[number];

/** How long to hold the loop for a signal raised again; it kills well before this. */
const LANDING_MS = 1000;

function watchedSignal(signal: unknown): WatchedSignal | undefined {
  const name =
    signal === undefined
      ? 'SIGTERM'
      : typeof signal === 'number'
        ? Object.entries(constants.signals).find(([, number]) => number === signal)?.[0]
        : signal;
  return WATCHED.find((watched) => watched === name);
}

function targetsThisProcess(pid: unknown): boolean {
  // 0: the whole process group, this process included.
  return Number(pid) === process.pid || Number(pid) === 0;
}

/**
 * Calls `write(signal)` before SIGINT or SIGTERM ends the process, without changing how it
 * ends. `write` must not throw. Main thread only (workers get no signals).
 */
export function reportBeforeSignalDeath(write: (signal: WatchedSignal) => void): void {
  const originalKill = process.kill;
  const listeners = new Map<WatchedSignal, () => void>();
  const stepAside = (signal: WatchedSignal) => {
    const listener = listeners.get(signal);
    if (listener === undefined) return;
    listeners.delete(signal);
    process.off(signal, listener);
  };
  const aloneOn = (signal: WatchedSignal) => {
    const listener = listeners.get(signal);
    return listener !== undefined && process.listeners(signal).every((each) => each === listener);
  };

  for (const signal of WATCHED) {
    const listener = () => {
      write(signal);
      // The app listens too: it decides whether and how to end ('exit' writes again if so).
      if (!aloneOn(signal)) return;
      stepAside(signal);
      originalKill.call(process, process.pid, signal);
      // Should it land on another thread a moment later, the loop must still be running then:
      // Node would otherwise exit 0 first. Ref'd on purpose; the signal ends it.
      setTimer(() => {}, LANDING_MS);
    };
    listeners.set(signal, listener);
    process.on(signal, listener);
  }

  const kill = function kill(pid: number, signal?: string | number): true {
    const watched = watchedSignal(signal);
    if (watched !== undefined && targetsThisProcess(pid) && aloneOn(watched)) {
      write(watched);
      stepAside(watched);
      const sent = originalKill.call(process, pid, signal);
      setTimer(() => {}, LANDING_MS);
      return sent;
    }
    return originalKill.call(process, pid, signal);
  };
  process.kill = kill;
}
