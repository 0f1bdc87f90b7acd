import { open } from 'node:fs/promises';
import { parseLines, type TcpLine } from './proc-net-tcp.js';

/**
 * Bytes per read. /proc/net/tcp lines are 150 bytes (IPv4; tcp6 ones ~170), so one read is ~430
 * rows, parsed before the next read is asked for: the loop runs between reads, and one slice of
 * parsing takes ~1 ms even when every row is wanted (measured, Node 20: see bench/kernel-check.js).
 */
export const READ_BYTES = 64 * 1024;

/**
 * Reads a /proc/net/tcp{,6} table in slices of READ_BYTES, handing each line in state
 * `wantState` (a code from `stateCode`) to `onLine` as its slice arrives. Errors (the file missing,
 * descriptors exhausted) reject with Node's own error: what a failure means is the caller's.
 * Each read is a thread-pool request, so every slice is a turn of the event loop of its own.
 */
export async function readRows(
  path: string,
  wantState: number,
  onLine: (line: TcpLine) => void,
): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    let kept = 0;
    for (;;) {
      // position null: sequential reads. The kernel resumes /proc/net/tcp where the last read
      // stopped; an explicit offset would make it walk the hash table from the start again.
      const { bytesRead } = await handle.read(buffer, kept, READ_BYTES - kept, null);
      const end = kept + bytesRead;
      if (bytesRead === 0) {
        // A last line without a newline: parse it as one.
        if (kept > 0) {
          buffer[kept] = 0x0a;
          parseLines(buffer, kept + 1, wantState, onLine);
        }
        return;
      }
      const unfinished = parseLines(buffer, end, wantState, onLine);
      kept = end - unfinished;
      // A line longer than the buffer is no line the kernel writes: drop what we have of it.
      if (kept === READ_BYTES) kept = 0;
      else buffer.copy(buffer, 0, unfinished, end);
    }
  } finally {
    await handle.close();
  }
}
