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
  /** When cutting is not enough, columns are dropped, highest dropOrder first. */
  readonly dropOrder?: number;
}

export function renderTable<T>(rows: readonly T[], allColumns: readonly Column<T>[], width = process.stdout.columns || Number(process.env.COLUMNS) || 120): string {
  const gap = 2;
  const allCells = rows.map((r) => allColumns.map((c) => c.value(r)));
  const natural = allColumns.map((c, i) => Math.max(c.header.length, ...allCells.map((row) => row[i]!.length)));
  // Optional columns (those with a dropOrder) may be cut to 8 to save one from being dropped;
  // required columns are counted at their natural width here, so the key column stays whole.
  const minWidth = (i: number) =>
    allColumns[i]!.flexible && allColumns[i]!.dropOrder !== undefined ? Math.min(natural[i]!, Math.max(8, allColumns[i]!.header.length)) : natural[i]!;
  // Drop optional columns (highest dropOrder first) while even the cut-down table is too wide.
  let keep = allColumns.map((_, i) => i);
  const fits = (idx: number[]) => idx.reduce((a, i) => a + minWidth(i), 0) + gap * (idx.length - 1) <= width;
  const droppable = allColumns
    .map((c, i) => ({ i, d: c.dropOrder }))
    .filter((x): x is { i: number; d: number } => x.d !== undefined)
    .sort((a, b) => b.d - a.d);
  for (const { i } of droppable) {
    if (fits(keep)) break;
    keep = keep.filter((k) => k !== i);
  }
  const columns = keep.map((i) => allColumns[i]!);
  const cells = allCells.map((row) => keep.map((i) => row[i]!));
  const widths = keep.map((i) => natural[i]!);
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
