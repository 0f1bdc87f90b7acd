import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { ExitReport } from '../register/exit-report.js';
import { formatReport } from '../report/report.js';

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

/** Every leak the process saw, listed or only counted. */
export function leakCount(report: ExitReport): number {
  return report.report.leaked + report.notListed;
}

/** `node app.js --flag`, as a person would have typed it. */
export function commandOf(argv: readonly string[]): string {
  const [node, script, ...rest] = argv;
  const parts = [basename(node ?? 'node')];
  if (script !== undefined) {
    const short = relative(process.cwd(), script);
    parts.push(short.startsWith('..') ? script : short);
  }
  const text = [...parts, ...rest].join(' ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function processTable(report: ExitReport): string {
  const lines = [formatReport(report.report)];
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
