import type { SocketReportData } from '../report/report.js';

/** Groups named on a summary line; the counts above them are always complete. */
const MAX_SUMMARY_GROUPS = 5;

/** The periodic summary: `report()` counts, and the largest groups by name. */
export function summaryFields(report: SocketReportData) {
  return {
    summary: {
      tracked: report.tracked,
      leaked: report.leaked,
      byState: report.byState,
      byKind: report.byKind,
      byDirection: report.byDirection,
      groupCount: report.groups.length,
      topGroups: report.groups.slice(0, MAX_SUMMARY_GROUPS).map((group) => ({
        where: group.where,
        kind: group.kind,
        direction: group.direction,
        count: group.count,
        oldestAgeMs: Math.round(group.oldestAgeMs),
      })),
    },
  };
}

export function summaryMessage(report: SocketReportData): string {
  if (report.leaked === 0) {
    return `closewait summary: no CLOSE_WAIT socket leaks; ${report.tracked} sockets tracked`;
  }
  const groups = report.groups.length;
  return (
    `closewait summary: ${report.leaked} CLOSE_WAIT socket leak${report.leaked === 1 ? '' : 's'} ` +
    `open (the peer closed, this app did not) in ${groups} place${groups === 1 ? '' : 's'}; ` +
    `${report.tracked} sockets tracked`
  );
}
