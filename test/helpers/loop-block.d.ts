export interface LoopBlocks {
  /** Main-thread CPU time of the longest gap between two ticks, in ms. */
  cpuMs: number;
  /** The longest wall-clock gap between two ticks, less the 1 ms interval, in ms. */
  wallMs: number;
}

export function watchLoopBlocks(): { stop(): LoopBlocks };

/** How long one synchronous call holds the loop, in main-thread CPU ms and wall ms. */
export function timeCall(call: () => unknown): LoopBlocks;
