import { InvalidOptionError } from '../errors.js';
import { kernelViewUnsupported } from '../kernel/process-sockets.js';
import { type CliIo, EXIT, HELP, usageProblem } from './help.js';
import { formatLook, type InspectLook, lookJson, socketKey } from './inspect-format.js';
import { terminalSafeJson } from './printable.js';
import { ProcessUnreadableError, readProcessTcp } from './process-tcp.js';

interface InspectArgs {
  pid: number;
  /** Undefined: look once. */
  watchMs: number | undefined;
  json: boolean;
}

const DEFAULT_WATCH_SECONDS = 2;
const MIN_WATCH_SECONDS = 0.1;
/** A day: past 2^31 - 1 ms (24.8 days) Node's timers fire at once, and nobody waits a day. */
const MAX_WATCH_SECONDS = 86_400;
const SECONDS = /^(\d+(\.\d*)?|\.\d+)$/;

/**
 * The arguments of `closewait inspect`; a problem with them as a sentence, or as an
 * InvalidOptionError when an option's value is wrong.
 */
export function parseInspectArgs(
  argv: readonly string[],
): InspectArgs | 'help' | string | InvalidOptionError {
  let pidText: string | undefined;
  let watchSeconds: number | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--json') json = true;
    else if (arg === '--watch' || arg.startsWith('--watch=')) {
      let text = arg.startsWith('--watch=') ? arg.slice(8) : undefined;
      // `--watch 5` takes the 5 only when the pid is given elsewhere: `inspect --watch 1234`
      // watches process 1234.
      const next = argv[i + 1];
      const pidLater = argv.slice(i + 2).some((later) => !later.startsWith('-'));
      if (text === undefined && next !== undefined && SECONDS.test(next)) {
        if (pidText !== undefined || pidLater) {
          text = next;
          i++;
        }
      }
      watchSeconds = text === undefined ? DEFAULT_WATCH_SECONDS : Number(text);
      if (
        text !== undefined &&
        (!SECONDS.test(text) ||
          watchSeconds < MIN_WATCH_SECONDS ||
          watchSeconds > MAX_WATCH_SECONDS)
      ) {
        return new InvalidOptionError(
          '--watch',
          `seconds, from ${MIN_WATCH_SECONDS} to ${MAX_WATCH_SECONDS}`,
          text,
        );
      }
    } else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else if (pidText === undefined) pidText = arg;
    else return `one pid at a time; received ${JSON.stringify(arg)} too`;
  }
  if (pidText === undefined) return 'which process? (closewait inspect <pid>)';
  if (!/^[1-9]\d*$/.test(pidText))
    return `the pid must be a number; received ${JSON.stringify(pidText)}`;
  return {
    pid: Number(pidText),
    watchMs: watchSeconds === undefined ? undefined : Math.round(watchSeconds * 1000),
    json,
  };
}

/**
 * `closewait inspect <pid>`: see HELP.inspect. `platformProblem` is there for tests: off Linux
 * the command must say so and exit 2, which a Linux test can't otherwise reach.
 */
export async function inspectCommand(
  argv: readonly string[],
  io: CliIo,
  platformProblem: () => string | undefined = kernelViewUnsupported,
): Promise<number> {
  const parsed = parseInspectArgs(argv);
  if (parsed === 'help') {
    io.out(HELP.inspect);
    return EXIT.clean;
  }
  if (typeof parsed === 'string' || parsed instanceof InvalidOptionError) {
    io.err(`closewait inspect: ${usageProblem(parsed)}\n\n${HELP.inspect}`);
    return EXIT.trouble;
  }
  const unsupported = platformProblem();
  if (unsupported !== undefined) {
    if (parsed.json) io.out(`${JSON.stringify({ supported: false, reason: unsupported })}\n`);
    io.err(`closewait inspect: unsupported here: ${unsupported}\n`);
    return EXIT.trouble;
  }
  return parsed.watchMs === undefined ? lookOnce(parsed, io) : watch(parsed, parsed.watchMs, io);
}

function show(look: InspectLook, args: InspectArgs, io: CliIo, clear: boolean): void {
  if (args.json) io.out(`${terminalSafeJson(lookJson(look))}\n`);
  else io.out(`${clear ? '\x1b[2J\x1b[H' : ''}${formatLook(look)}`);
}

function unreadable(error: unknown, io: CliIo): number {
  if (!(error instanceof ProcessUnreadableError)) throw error;
  io.err(`closewait inspect: ${error.message}\n`);
  return EXIT.trouble;
}

async function lookOnce(args: InspectArgs, io: CliIo): Promise<number> {
  try {
    const tcp = await readProcessTcp(args.pid);
    show({ checkedAt: Date.now(), tcp, firstSeen: undefined }, args, io, false);
    return tcp.closeWait.length > 0 ? EXIT.found : EXIT.clean;
  } catch (error) {
    return unreadable(error, io);
  }
}

/** Looks every `intervalMs` until SIGINT/SIGTERM or the process exits. */
async function watch(args: InspectArgs, intervalMs: number, io: CliIo): Promise<number> {
  const firstSeen = new Map<string, number>();
  // A terminal gets the table redrawn in place; a pipe or a file gets each look after the last.
  const clear = !args.json && process.stdout.isTTY === true;
  let sawAny = false;
  let looks = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // The reader of a pipe went away (`| head`): cli.ts keeps the EPIPE from crashing us.
  process.stdout.on('error', stop);
  try {
    while (!stopped) {
      let tcp: Awaited<ReturnType<typeof readProcessTcp>>;
      try {
        tcp = await readProcessTcp(args.pid);
      } catch (error) {
        if (looks > 0 && error instanceof ProcessUnreadableError && error.code === 'ENOENT') {
          io.err(`closewait inspect: process ${args.pid} exited\n`);
          break;
        }
        return unreadable(error, io);
      }
      looks++;
      const now = Date.now();
      const present = new Set<string>();
      for (const socket of tcp.closeWait) {
        const key = socketKey(socket);
        present.add(key);
        if (!firstSeen.has(key)) firstSeen.set(key, now);
      }
      // Forget closed sockets, so the map holds only what the process holds now. A row missing
      // from one read of the table (it can skip rows while sockets churn) whose fd is still
      // open keeps its first sighting.
      for (const key of firstSeen.keys()) {
        const inode = Number(key.slice(0, key.indexOf('|')));
        if (!present.has(key) && !tcp.socketInodes.has(inode)) firstSeen.delete(key);
      }
      if (tcp.closeWait.length > 0) sawAny = true;
      show({ checkedAt: now, tcp, firstSeen }, args, io, clear);
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.stdout.off('error', stop);
  }
  return sawAny ? EXIT.found : EXIT.clean;
}
