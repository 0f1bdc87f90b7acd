/**
 * The preload starts a monitor in every worker thread (diagnostics channels are per thread), but
 * the exit report is the main thread's: one file per process. Each worker's monitor sends its
 * leaks to the main thread as they happen, over a BroadcastChannel, rather than at the worker's
 * exit: when the main thread ends the process, a worker's 'exit' handlers never run (measured on
 * Node 20, 22 and 26).
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import type { SocketMonitor } from '../monitor.js';
import type { SocketLeak } from '../types.js';

const CHANNEL_NAME = 'closewait:register-leaks';
/** Worker leaks listed in the report, all threads together; past this they are only counted. */
const MAX_LISTED_LEAKS = 1000;

type ThreadLeakMessage =
  | { type: 'leak'; threadId: number; leak: SocketLeak }
  | { type: 'resolved'; threadId: number; id: number; resolvedAt: number };

/** What one worker thread leaked while the process ran. */
export interface ThreadLeaks {
  threadId: number;
  leaks: SocketLeak[];
  /** When each leak that was closed before exit was closed, by leak id. */
  resolvedAt: ReadonlyMap<number, number>;
  notListed: number;
}

function openChannel(): BroadcastChannel {
  const channel = new BroadcastChannel(CHANNEL_NAME);
  // Like a MessagePort, a channel would keep the event loop alive: ours must not.
  channel.unref();
  return channel;
}

/** In a worker thread: sends each leak of its monitor, and each resolution, to the main thread. */
export function sendLeaksToMainThread(monitor: SocketMonitor): void {
  const channel = openChannel();
  const post = (message: ThreadLeakMessage) => {
    try {
      channel.postMessage(message);
    } catch {
      // The leak is still in this thread's log: only the exit report misses it.
    }
  };
  monitor.on('leak', (leak) => post({ type: 'leak', threadId, leak }));
  monitor.on('leak-resolved', (leak, resolution) =>
    post({ type: 'resolved', threadId, id: leak.id, resolvedAt: resolution.resolvedAt }),
  );
}

/** In the main thread: the leaks the worker threads sent, kept per thread for the exit report. */
export class WorkerLeaks {
  readonly #threads = new Map<number, ThreadLeaks & { byId: Map<number, SocketLeak> }>();
  #listed = 0;

  constructor() {
    openChannel().onmessage = (event) => {
      try {
        this.#receive((event as MessageEvent).data as ThreadLeakMessage);
      } catch {
        // A message of another shape (another copy of closewait): not ours to read.
      }
    };
  }

  #thread(id: number) {
    let thread = this.#threads.get(id);
    if (thread === undefined) {
      thread = { threadId: id, leaks: [], resolvedAt: new Map(), notListed: 0, byId: new Map() };
      this.#threads.set(id, thread);
    }
    return thread;
  }

  #receive(message: ThreadLeakMessage): void {
    if (typeof message?.threadId !== 'number') return;
    const thread = this.#thread(message.threadId);
    if (message.type === 'leak') {
      if (this.#listed >= MAX_LISTED_LEAKS) {
        thread.notListed++;
        return;
      }
      this.#listed++;
      thread.leaks.push(message.leak);
      thread.byId.set(message.leak.id, message.leak);
    } else if (message.type === 'resolved' && thread.byId.has(message.id)) {
      (thread.resolvedAt as Map<number, number>).set(message.id, message.resolvedAt);
    }
  }

  /** Threads that leaked, in the order of their thread ids. */
  threads(): ThreadLeaks[] {
    return [...this.#threads.values()]
      .filter((thread) => thread.leaks.length > 0 || thread.notListed > 0)
      .sort((a, b) => a.threadId - b.threadId)
      .map(({ threadId: id, leaks, resolvedAt, notListed }) => ({
        threadId: id,
        leaks,
        resolvedAt,
        notListed,
      }));
  }
}
