/**
 * Plain-text tables that fit the terminal: columns keep their natural width while there is
 * room; the widest flexible column is cut (with "…") when there is not.
 */
export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string;
  /** May be cut to fit; the others keep their width. */
  readonly flexible?: boolean;
  readonly align?: 'left' | 'right';
}

export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[], width = process.stdout.columns || Number(process.env.COLUMNS) || 120): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const gap = 2;
  let total = widths.reduce((a, b) => a + b, 0) + gap * (columns.length - 1);
  while (total > width) {
    let widest = -1;
    columns.forEach((c, i) => {
      if (c.flexible && widths[i]! > Math.max(8, c.header.length) && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    });
    if (widest < 0) break;
    const cut = Math.min(total - width, widths[widest]! - Math.max(8, columns[widest]!.header.length));
    widths[widest]! -= cut;
    total -= cut;
  }
  const fit = (s: string, w: number, align: 'left' | 'right' = 'left') => {
    const t = s.length > w ? `${s.slice(0, w - 1)}…` : s;
    return align === 'right' ? t.padStart(w) : t.padEnd(w);
  };
  const line = (vals: readonly string[]) =>
    vals.map((v, i) => fit(v, widths[i]!, columns[i]!.align)).join(' '.repeat(gap)).trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

/** 3725 → "1h02m", 59 → "59s". */
export function duration(sec: number): string {
  if (sec < 60) return `${Math.round(sec)}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(Math.round(sec % 60)).padStart(2, '0')}s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h${String(Math.floor((sec % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(sec / 86400)}d${String(Math.floor((sec % 86400) / 3600)).padStart(2, '0')}h`;
}
