/** Where the commands write: the real streams, or a test's buffers. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** A usage problem as the command prints it, after `closewait <command>: `. */
export function usageProblem(problem: string | Error): string {
  return typeof problem === 'string' ? problem : problem.message.replace(/^closewait: /, '');
}

/** Exit codes, the same for every command; `run` passes the app's own failures through. */
export const EXIT = {
  /** Nothing found. */
  clean: 0,
  /** Leaks (run) or CLOSE_WAIT sockets (inspect) found. */
  found: 1,
  /** closewait could not do its job: bad usage, no /proc, no such process, no report. */
  trouble: 2,
} as const;

const EXIT_CODES_RUN = `Exit codes:
  0    the app exited 0 (or was stopped by a Ctrl-C or a SIGTERM closewait received too)
       and leaked nothing
  1    the app exited 0 (or was stopped as above) and leaked sockets, or still held sockets
       in CLOSE_WAIT when it exited (whatever their age, Linux): see the table
  2    closewait could not watch: bad usage, the command did not start, or no report came back
       (the command was not Node >= 20.19, or was killed with SIGKILL)
  N    the app's own non-zero exit code, passed through; 128 + signal number when it was
       killed by a signal closewait did not receive`;

const EXIT_CODES_INSPECT = `Exit codes:
  0    no CLOSE_WAIT sockets (with --watch: none in any look)
  1    CLOSE_WAIT sockets found (with --watch: in some look)
  2    bad usage, not Linux (no /proc), no such process, or not allowed to read its fds`;

export const HELP = {
  main: `closewait: find CLOSE_WAIT socket leaks (the peer closed, the process did not)

Usage:
  closewait run [options] -- <command> [args...]   run a Node app with leak detection, print
                                                   the grouped report when it exits
  closewait inspect <pid> [--watch [s]] [--json]   list the CLOSE_WAIT sockets of any process
                                                   (any language) from /proc (Linux)
  closewait <command> --help                       more on one command

Without the command, in any Node app:
  node --import closewait/register app.js
  NODE_OPTIONS="--import closewait/register" npm start
`,

  run: `Usage: closewait run [--report-json <file>] [--] <command> [args...]

Runs <command> with closewait's preload in NODE_OPTIONS (--import), so every Node process it
starts is watched from its first line. Leaks are logged to stderr as they are found (pino JSON);
when the command exits, the leaks of the whole run are printed as a table on stderr, grouped by
the line that created the socket (for a server's sockets: its listen() call and the route).
The command stays in the terminal's process group: Ctrl-C reaches it directly (closewait
does not pass it on again), and SIGTERM sent to closewait is passed on; closewait waits for
the command to exit.

Options:
  --report-json <file>   also write the report as JSON to <file> ('-' for stdout)
  -h, --help             this text

The preload reads the CLOSEWAIT_* environment variables (closewait --help lists them); run sets
CLOSEWAIT_STACKS=all unless you set it, and CLOSEWAIT_REPORT_FILE for its own use. Each Node
process of the command (npm, then your app) reports on its own: a table per process.

${EXIT_CODES_RUN}
`,

  inspect: `Usage: closewait inspect <pid> [--watch [seconds]] [--json]

Lists the CLOSE_WAIT sockets of process <pid> (any program, any language) from /proc/<pid>/fd
and /proc/<pid>/net/tcp{,6}, like a focused \`ss -tanp state close-wait\`: addresses, receive
and send queues, whether the process read up to the peer's FIN (FIN READ: yes, it read the end
and still did not close; no, it stopped reading), and the state of the peer's end when it lives
on this machine.
The kernel keeps no age for a socket: with --watch, each socket shows how long it has been
seen in CLOSE_WAIT since the first look, a lower bound of its age.

Options:
  --watch [seconds]   look again every <seconds> (default 2) until Ctrl-C or the process exits
  --json              one JSON object per look, for scripts (with --watch: one per line)
  -h, --help          this text

Needs Linux, and permission to read /proc/<pid>/fd: the process's own user, or root.

${EXIT_CODES_INSPECT}
`,
} as const;

/** The environment variables, for `closewait --help`. */
export const ENV_HELP = `Environment (read by the preload, closewait/register):
  CLOSEWAIT_GRACE_MS              ms a half-closed socket may stay quiet before it is a leak
                                  (default 30000)
  CLOSEWAIT_STACKS                all | none | a sample rate 0..1 (default 0.01; all under
                                  closewait run and when NODE_ENV=test)
  CLOSEWAIT_AUTO_DESTROY_MS       destroy leaks older than this many ms (default: never)
  CLOSEWAIT_AUTO_DESTROY_DRY_RUN  1: only log and count what would be destroyed
  CLOSEWAIT_KERNEL_CHECK_MS       Linux: compare with /proc/net/tcp this often (0/unset: off)
  CLOSEWAIT_PATCH_CONNECT         1: also see new net.Socket().connect() on Node < 22.17
  CLOSEWAIT_SUMMARY_MS            log the report's counts this often (default: off)
  CLOSEWAIT_LOG_LEVEL             pino level on stderr: fatal error warn info debug trace silent
                                  (default warn)
  CLOSEWAIT_HEALTH_PORT           serve /health/sockets and /metrics (prom-client) on this port
                                  (0: any free port, logged at info)
  CLOSEWAIT_HEALTH_HOST           address for it (default 127.0.0.1)
  CLOSEWAIT_HEALTH_VERBOSE        1: sites, stacks and addresses in the health payload
  CLOSEWAIT_REPORT_FILE           write the report as JSON at exit; %p becomes the pid
A bad value prints one line on stderr, and the app runs without closewait.
`;
