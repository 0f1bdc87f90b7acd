/** Plain-text tables for the terminal and Markdown tables for the README, from the same rows. */

export function textTable(header, rows) {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => String(row[column]).length)),
  );
  const line = (cells) =>
    cells
      .map((cell, column) =>
        column === 0 ? String(cell).padEnd(widths[column]) : String(cell).padStart(widths[column]),
      )
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join(
    '\n',
  );
}

export function markdownTable(header, rows) {
  const line = (cells) => `| ${cells.map(String).join(' | ')} |`;
  const rule = `| ${header.map((_, column) => (column === 0 ? '---' : '---:')).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function fixed(value, digits) {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** A target check: "ok" or how far off it is. */
export function verdict(met) {
  return met ? 'met' : 'MISSED';
}
