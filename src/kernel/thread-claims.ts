/**
 * Monitors in several threads of one process read the same /proc/self/fd, so each one's kernel
 * check sees the other threads' CLOSE_WAIT sockets as rows none of its own sockets accounts for
 * (diagnostics channels are per thread: a socket is tracked only in the thread that made it).
 * Before it calls such rows unattributed, a monitor asks the others, over one process-wide
 * BroadcastChannel, which of them they track.
 *
 * Asked, not published: a thread may track thousands of sockets, of which a healthy one has no
 * CLOSE_WAIT row at all. Asking costs nothing until a check finds rows it cannot match, and then
 * one message each way per monitor. Every monitor answers every question (an empty answer too),
 * so the asker stops waiting as soon as all the monitors it knows of have answered; one that
 * does not answer within REPLY_DEADLINE_MS (a thread that ended, or is blocked) is forgotten
 * until it speaks again. Claims heard are remembered while their row lasts: the synchronous check
 * at exit, which cannot wait for answers, uses them; for it, a monitor also tells the others of
 * each socket it declares a leak (rare by nature), unasked.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { clearTimer, setTimer } from '../clock.js';
import type { SocketRecord } from '../tracking/record.js';
import type { KernelSocketRow } from './proc-net-tcp.js';
import { endpointKey } from './process-sockets.js';

const CHANNEL_NAME = 'closewait:claims';
/** How long a check waits for the other monitors' answers. */
export const REPLY_DEADLINE_MS = 100;

type ClaimMessage =
  | { type: 'hello' | 'here' | 'bye'; from: string }
  | { type: 'ask'; from: string; ask: number; keys: string[] }
  | { type: 'claim'; from: string; to: string; ask: number; keys: string[]; threadId: number };

/** `to` of a claim nobody asked for: every monitor keeps it. */
const EVERYONE = '*';

interface Question {
  waitingFor: Set<string>;
  claimed: Map<string, number>;
  done(): void;
}

let monitorsMade = 0;

/** The key of a kernel row, as `socketKey` makes it for a socket with the same 4-tuple. */
export function rowKey(row: KernelSocketRow): string {
  return endpointKey(row.localAddress, row.localPort, row.remoteAddress, row.remotePort);
}

export function socketKey(record: SocketRecord): string | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = record.socket;
  if (localPort === undefined || remotePort === undefined) return undefined;
  return endpointKey(localAddress, localPort, remoteAddress, remotePort);
}

function isClaimMessage(data: unknown): data is ClaimMessage {
  const message = data as Partial<ClaimMessage> | null;
  return typeof message === 'object' && message !== null && typeof message.from === 'string';
}

export class ThreadClaims {
  /** Unique in the process: the thread and this monitor's place in it. */
  readonly #id = `${threadId}:${++monitorsMade}`;
  #channel: BroadcastChannel | undefined;
  /** Other monitors heard from, in any thread (this one's included), that have not left. */
  readonly #peers = new Set<string>();
  readonly #questions = new Map<number, Question>();
  #asked = 0;
  /** Endpoint keys another monitor claimed, with its thread id: pruned to the rows still seen. */
  #known = new Map<string, number>();

  constructor(
    /** Which of these keys this monitor tracks. */
    private readonly tracks: (keys: ReadonlySet<string>) => string[],
    private readonly failed: (error: unknown) => void,
  ) {}

  start(): void {
    if (this.#channel !== undefined) return;
    const channel = new BroadcastChannel(CHANNEL_NAME);
    // A channel keeps the event loop alive like a MessagePort: ours must not.
    channel.unref();
    channel.onmessage = (event) => {
      try {
        this.#receive((event as MessageEvent).data);
      } catch (error) {
        this.failed(error);
      }
    };
    this.#channel = channel;
    this.#post({ type: 'hello', from: this.#id });
  }

  stop(): void {
    const channel = this.#channel;
    if (channel === undefined) return;
    this.#post({ type: 'bye', from: this.#id });
    this.#channel = undefined;
    channel.close();
    for (const question of this.#questions.values()) question.done();
    this.#peers.clear();
    this.#known.clear();
  }

  /**
   * The rows no other monitor tracks. Asks the monitors it knows of and waits for them, at most
   * REPLY_DEADLINE_MS; with none known, answers at once.
   */
  async unclaimed(rows: KernelSocketRow[]): Promise<KernelSocketRow[]> {
    if (rows.length === 0 || this.#channel === undefined) return rows;
    const keys = new Set(rows.map(rowKey));
    const claimed = this.#peers.size === 0 ? new Map<string, number>() : await this.#ask(keys);
    // Remember the answers for the rows still there; claims for rows now gone go.
    this.#known = claimed;
    return rows.filter((row) => !claimed.has(rowKey(row)));
  }

  /** Tells the other monitors, unasked, that this one tracks the socket of a leak it declared. */
  announce(record: SocketRecord): void {
    if (this.#channel === undefined || this.#peers.size === 0) return;
    const key = socketKey(record);
    if (key === undefined) return;
    this.#post({ type: 'claim', from: this.#id, to: EVERYONE, ask: 0, keys: [key], threadId });
  }

  /** The same, from the last answers heard: for the check at exit, which cannot wait. */
  unclaimedSync(rows: KernelSocketRow[]): KernelSocketRow[] {
    if (this.#known.size === 0) return rows;
    return rows.filter((row) => !this.#known.has(rowKey(row)));
  }

  #ask(keys: ReadonlySet<string>): Promise<Map<string, number>> {
    const ask = ++this.#asked;
    return new Promise((resolve) => {
      const claimed = new Map<string, number>();
      const waitingFor = new Set(this.#peers);
      const timer = setTimer(() => {
        // Those that never answered are gone or blocked: not waited for again until they speak.
        for (const peer of question.waitingFor) this.#peers.delete(peer);
        question.done();
      }, REPLY_DEADLINE_MS);
      timer.unref();
      const question: Question = {
        waitingFor,
        claimed,
        done: () => {
          clearTimer(timer);
          this.#questions.delete(ask);
          resolve(claimed);
        },
      };
      this.#questions.set(ask, question);
      this.#post({ type: 'ask', from: this.#id, ask, keys: [...keys] });
    });
  }

  #receive(data: unknown): void {
    if (!isClaimMessage(data) || data.from === this.#id) return;
    const from = data.from;
    switch (data.type) {
      case 'bye':
        this.#peers.delete(from);
        for (const question of this.#questions.values()) this.#answered(question, from);
        return;
      case 'hello':
        this.#peers.add(from);
        this.#post({ type: 'here', from: this.#id });
        return;
      case 'here':
        this.#peers.add(from);
        return;
      case 'ask': {
        this.#peers.add(from);
        const keys = Array.isArray(data.keys) ? data.keys.filter((k) => typeof k === 'string') : [];
        const mine = keys.length === 0 ? [] : this.tracks(new Set(keys));
        this.#post({
          type: 'claim',
          from: this.#id,
          to: from,
          ask: data.ask,
          keys: mine,
          threadId,
        });
        return;
      }
      case 'claim': {
        this.#peers.add(from);
        if (data.to === EVERYONE) {
          for (const key of data.keys) this.#known.set(key, data.threadId);
          return;
        }
        if (data.to !== this.#id) return;
        const question = this.#questions.get(data.ask);
        if (question === undefined) return;
        for (const key of data.keys) question.claimed.set(key, data.threadId);
        this.#answered(question, from);
        return;
      }
    }
  }

  #answered(question: Question, peer: string): void {
    question.waitingFor.delete(peer);
    if (question.waitingFor.size === 0) question.done();
  }

  #post(message: ClaimMessage): void {
    try {
      this.#channel?.postMessage(message);
    } catch (error) {
      this.failed(error);
    }
  }
}
