/**
 * Which new sockets get a creation stack, when `stacks` samples (`sampleRate` < 1). Sampling is
 * made adaptive by what leaked: a leak that could not be named makes the next sockets (or every
 * request to that origin) carry a stack, so the second leak from the same line is named.
 */

/** After a client leak with no stack, this many client sockets get one regardless of sampling. */
const STACK_BOOST_SOCKETS = 1000;
/** Origins that leaked without a stack: bounded, it only steers sampling. */
const MAX_HOT_ORIGINS = 1000;

export class StackSampler {
  readonly #hotOrigins = new Set<string>();
  #boost = 0;

  constructor(private readonly rate: number) {}

  /** Whether the socket (or request to `origin`) about to be tracked gets a stack. */
  wants(origin: string | undefined): boolean {
    const rate = this.rate;
    if (rate >= 1) return true;
    if (rate <= 0) return false;
    if (this.#boost > 0) {
      this.#boost--;
      return true;
    }
    if (origin !== undefined && this.#hotOrigins.has(origin)) return true;
    return Math.random() < rate;
  }

  /** A client leak had no stack: name the next ones from the same origin, or the next sockets. */
  leakedUnnamed(origin: string | undefined): void {
    if (origin !== undefined && this.#hotOrigins.size < MAX_HOT_ORIGINS) {
      this.#hotOrigins.add(origin);
    } else {
      this.#boost = STACK_BOOST_SOCKETS;
    }
  }
}
