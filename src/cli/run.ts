import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from '../errors.js';
import { buildDir } from '../package-paths.js';
import { type REGISTER_ENV, readRegisterEnv } from '../register-env.js';
import { type CliIo, EXIT, HELP, usageProblem } from './help.js';
import { formatExitReports, leakCount, REPORT_PREFIX, readExitReports } from './run-report.js';

interface RunArgs {
  command: string;
  args: string[];
  reportJson: string | undefined;
}

/**
 * Options stop at `--` or at the first word that is not one: the rest is the command's. A
 * problem comes back as a sentence, or as an InvalidOptionError when an option's value is wrong.
 */
export function parseRunArgs(
  argv: readonly string[],
): RunArgs | 'help' | string | InvalidOptionError {
  let reportJson: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--report-json' || arg.startsWith('--report-json=')) {
      reportJson = arg === '--report-json' ? argv[++i] : arg.slice('--report-json='.length);
      if (reportJson === undefined || reportJson === '') {
        return new InvalidOptionError(
          '--report-json',
          "a file name, or '-' for stdout",
          reportJson,
        );
      }
    } else if (arg.startsWith('-')) {
      return `unknown option ${arg}`;
    } else break;
  }
  const [command, ...args] = argv.slice(i);
  if (command === undefined) return 'no command to run (closewait run -- node app.js)';
  return { command, args, reportJson };
}

/**
 * The preload by path, as a file URL: the command may run where `closewait` does not resolve
 * by name (npx runs closewait from its cache), and a URL has no spaces to split NODE_OPTIONS on.
 */
function preloadFlag(): string {
  return `--import=${pathToFileURL(join(buildDir, 'integrations', 'register.js')).href}`;
}

function childEnv(reportDir: string): NodeJS.ProcessEnv {
  const nodeOptions = [process.env.NODE_OPTIONS, preloadFlag()].filter(Boolean).join(' ');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_OPTIONS: nodeOptions,
    // %p: npm, a shell script and the app are each a Node process with their own report.
    CLOSEWAIT_REPORT_FILE: join(reportDir, `${REPORT_PREFIX}%p.json`),
  };
  // A run is a diagnosis: a site for every leak is worth a stack per socket.
  const stacks: keyof typeof REGISTER_ENV = 'CLOSEWAIT_STACKS';
  if (!process.env[stacks]?.trim()) env[stacks] = 'all';
  return env;
}

/**
 * Signals meant for the command. The child stays in closewait's process group, so it keeps the
 * terminal (it can read stdin, Ctrl-Z stops both): a Ctrl-C (SIGINT) or Ctrl-\ (SIGQUIT) from
 * the terminal reaches every process of the group, the child included, and passing it on
 * again would deliver it twice (a second Ctrl-C is "force quit" to many apps). So those two
 * are only waited on; SIGTERM, which no terminal sends, is passed on. To interrupt a run from
 * a script, signal its process group (`kill -INT -- -<pgid>`) or send SIGTERM.
 */
const FROM_TERMINAL: readonly NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];
const PASSED_ON: readonly NodeJS.Signals[] = ['SIGTERM'];

function passOnSignals(child: ChildProcess) {
  const received = new Set<NodeJS.Signals>();
  const onSignal = (signal: NodeJS.Signals) => {
    received.add(signal);
    if (!PASSED_ON.includes(signal)) return;
    try {
      child.kill(signal);
    } catch {
      // Already gone: its 'exit' is on the way.
    }
  };
  for (const signal of [...FROM_TERMINAL, ...PASSED_ON]) process.on(signal, onSignal);
  return {
    received,
    how: (signal: NodeJS.Signals) =>
      PASSED_ON.includes(signal) ? 'passed on by closewait' : 'sent to the process group',
    stop() {
      for (const signal of [...FROM_TERMINAL, ...PASSED_ON]) process.off(signal, onSignal);
    },
  };
}

type Outcome =
  | { started: false; error: Error }
  | { started: true; code: number | null; signal: NodeJS.Signals | null };

function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)}s`;
}

/** `closewait run -- <command...>`: see HELP.run. */
export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseRunArgs(argv);
  if (parsed === 'help') {
    io.out(HELP.run);
    return EXIT.clean;
  }
  if (typeof parsed === 'string' || parsed instanceof InvalidOptionError) {
    io.err(`closewait run: ${usageProblem(parsed)}\n\n${HELP.run}`);
    return EXIT.trouble;
  }
  // The preload would print the same problem and let the app run unwatched: a run that cannot
  // watch is better stopped before it starts.
  const env = readRegisterEnv({ ...process.env, CLOSEWAIT_REPORT_FILE: undefined });
  if (!env.ok) {
    io.err(`closewait run: ${env.problems.join('; ')}\n`);
    return EXIT.trouble;
  }
  const reportDir = mkdtempSync(join(tmpdir(), 'closewait-run-'));
  try {
    return await runAndReport(parsed, reportDir, io);
  } finally {
    rmSync(reportDir, { recursive: true, force: true });
  }
}

async function runAndReport(run: RunArgs, reportDir: string, io: CliIo): Promise<number> {
  const started = Date.now();
  const child = spawn(run.command, run.args, { stdio: 'inherit', env: childEnv(reportDir) });
  const signals = passOnSignals(child);
  const outcome = await new Promise<Outcome>((resolve) => {
    child.once('error', (error) => resolve({ started: false, error }));
    child.once('exit', (code, signal) => resolve({ started: true, code, signal }));
  });
  signals.stop();

  const shown = [run.command, ...run.args].join(' ');
  if (!outcome.started) {
    io.err(`closewait run: could not start \`${shown}\`: ${outcome.error.message}\n`);
    return EXIT.trouble;
  }
  const { code, signal } = outcome;
  const stoppedByUs = signal !== null && signals.received.has(signal);
  const how =
    code !== null
      ? `exited with code ${code}`
      : `was stopped by ${signal}${stoppedByUs ? ` (${signals.how(signal)})` : ''}`;
  io.err(`\nclosewait run: \`${shown}\` ${how} after ${secondsSince(started)}\n`);

  const reports = readExitReports(reportDir);
  if (run.reportJson !== undefined)
    writeJson(run.reportJson, { command: shown, code, signal, reports }, io);
  if (reports.length === 0) {
    io.err(
      'closewait run: no report came back: the command started no Node >= 20.19 process, ' +
        'or it was killed before it could write one (SIGKILL)\n',
    );
  } else {
    io.err(formatExitReports(reports));
  }

  // The app's own failure comes first: closewait must not hide it behind a leak count.
  if (code !== null && code !== 0) return code;
  if (signal !== null && !stoppedByUs) return 128 + (constants.signals[signal] ?? 0);
  if (reports.length === 0) return EXIT.trouble;
  return reports.some((report) => leakCount(report) > 0) ? EXIT.found : EXIT.clean;
}

function writeJson(path: string, value: unknown, io: CliIo): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  try {
    if (path === '-') io.out(text);
    else writeFileSync(path, text);
  } catch (error) {
    io.err(`closewait run: could not write ${path}: ${(error as Error).message}\n`);
  }
}
