import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { AtExitSocket } from '../register/close-wait-at-exit.js';
import type { ExitReport } from '../register/exit-report.js';
import { formatReport } from '../report/report.js';
import { printable } from './printable.js';

export const REPORT_PREFIX = 'report-';

/** The reports the command's Node processes wrote at exit; a file that won't parse is skipped. */
export function readExitReports(dir: string): ExitReport[] {
  const reports: ExitReport[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return reports;
  }
  for (const name of names) {
    if (!name.startsWith(REPORT_PREFIX) || !name.endsWith('.json')) continue;
    try {
      const report = JSON.parse(readFileSync(join(dir, name), 'utf8')) as ExitReport;
      if (report?.version === 1 && typeof report.report === 'object') reports.push(report);
    } catch {
      // A half-written file of a process killed mid-write: nothing to show for it.
    }
  }
  // The processes that leaked first; then in the order they started.
  return reports.sort((a, b) => leakCount(b) - leakCount(a) || a.pid - b.pid);
}

/** Sockets in CLOSE_WAIT at exit that were not (yet) leaks, listed or only counted. */
export function atExitCount(report: ExitReport): number {
  return (report.atExit?.length ?? 0) + (report.atExitNotListed ?? 0);
}

/** Every leak the process saw, listed or only counted, and every socket in CLOSE_WAIT at exit. */
export function leakCount(report: ExitReport): number {
  return report.report.leaked + report.notListed + atExitCount(report);
}

/** `node app.js --flag`, as a person would have typed it. */
export function commandOf(argv: readonly string[]): string {
  const [node, script, ...rest] = argv;
  const parts = [basename(node ?? 'node')];
  if (script !== undefined) {
    const short = relative(process.cwd(), script);
    parts.push(short.startsWith('..') ? script : short);
  }
  // The process's own argv: whatever it holds, it must not drive the terminal it is shown on.
  const text = printable([...parts, ...rest].join(' '));
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** The at-exit sockets as rows beside the report's groups: grouped the same way, aged "at exit". */
function atExitLines(report: ExitReport): string[] {
  const sockets = report.atExit ?? [];
  const total = atExitCount(report);
  if (total === 0) return [];
  const groups = new Map<string, { count: number; socket: AtExitSocket }>();
  for (const socket of sockets) {
    const key = `${socket.kind} ${socket.direction} ${socket.where}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { count: 1, socket });
    else group.count++;
  }
  const rows = [...groups.values()]
    .sort((a, b) => b.count - a.count)
    .map(({ count, socket }) => [
      String(count),
      'at exit',
      socket.kind,
      socket.direction ?? '?',
      printable(socket.where),
    ]);
  const header = ['COUNT', 'WHEN', 'KIND', 'SIDE', 'WHERE'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const pad = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1
          ? cell
          : column === 0
            ? cell.padStart(widths[column]!)
            : cell.padEnd(widths[column]!),
      )
      .join('  ');
  const lines = [
    `closewait: ${total} socket${total === 1 ? ' was' : 's were'} still in CLOSE_WAIT at exit ` +
      '(the peer had closed, the process had not; not yet leaks by graceMs, or never seen by Node)',
    pad(header),
    ...rows.map(pad),
  ];
  if ((report.atExitNotListed ?? 0) > 0) {
    lines.push(`${report.atExitNotListed} more were counted, not listed (the list keeps 1000)`);
  }
  return lines;
}

function processTable(report: ExitReport): string {
  const lines = [formatReport(report.report), ...atExitLines(report)];
  const closed = report.report.leaked - report.stillOpen;
  if (closed > 0) {
    lines.push(
      `${closed} of them ${closed === 1 ? 'was' : 'were'} closed before the process exited ` +
        '(late, at shutdown, or by auto-destroy): OLDEST counts time in CLOSE_WAIT, and ' +
        '"tracked" only the sockets still open at exit',
    );
  }
  if (report.notListed > 0) {
    lines.push(`${report.notListed} more leaks were counted, not listed (the list keeps 1000)`);
  }
  return lines.join('\n');
}

/** One table per Node process; a heading per process only when there are several. */
export function formatExitReports(reports: readonly ExitReport[]): string {
  if (reports.length === 1) return `${processTable(reports[0]!)}\n`;
  return reports
    .map((report) => `-- pid ${report.pid}: ${commandOf(report.argv)}\n${processTable(report)}\n`)
    .join('\n');
}
