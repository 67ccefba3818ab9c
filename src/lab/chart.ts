/**
 * The demo's chart, after the paper's figure 5: traffic per host over time, the stream moving
 * from one host to the other at each migration. PURE: options in, an SVG document (string) out;
 * no dependencies, no I/O.
 *
 * x = time in seconds from `originMs` (default: the earliest point or marker); y = kbit/s from 0.
 * One line (with a faint area under it) per series; a `null` value breaks the line. Each
 * migration is a dashed vertical marker with its label (e.g. "A → B · gap 112 ms"), and, when
 * `until` is given, a shaded band over the gap itself. The document carries <title> and <desc>
 * and `role="img"` for screen readers.
 */

export interface ChartSeries {
  label: string;
  /** Any SVG colour; a default palette is used when omitted. */
  color?: string;
  /** [time in ms, kbit/s or null]; the same clock as the markers. */
  points: ReadonlyArray<readonly [number, number | null]>;
}

export interface ChartMarker {
  /** When the migration happened (ms). */
  at: number;
  /** Shown at the top of the marker, e.g. "A → B · gap 112 ms". */
  label: string;
  /** Optional end of the traffic gap (ms): the band [at, until] is shaded. */
  until?: number;
}

export interface Figure5Options {
  series: readonly ChartSeries[];
  migrations: readonly ChartMarker[];
  title: string;
  /** Smaller line under the title (e.g. "520 kbit/s UDP, 100 ms bins"). */
  subtitle?: string;
  /** Text for screen readers; a summary of the data is generated when omitted. */
  description?: string;
  width?: number;
  height?: number;
  /** Time zero (ms). Default: the earliest point or marker. */
  originMs?: number;
  /** Upper end of the y axis (kbit/s). Default: a round number above the data. */
  yMaxKbps?: number;
  xLabel?: string;
  yLabel?: string;
  /** Prefix for element ids, to keep them unique when several charts share a page. */
  idPrefix?: string;
}

/** Colour-blind-safe defaults (Okabe–Ito blue and vermillion first). */
export const CHART_PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9'] as const;

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif";
const INK = '#1f2328';
const MUTED = '#59636e';
const GRID = '#e6e8eb';
const AXIS = '#8c959f';
const MARKER = '#6e7781';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

/** A "nice" tick step (1, 2 or 5 × 10^n) for about `target` ticks over `range`. */
export function niceStep(range: number, target: number): number {
  if (!(range > 0) || !(target > 0)) return 1;
  const raw = range / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

function formatTick(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const s = v.toFixed(decimals);
  return s === '-0' ? '0' : s;
}

/** Thousands separated with a thin space, for y labels like "1 000". */
function groupThousands(s: string): string {
  const [int, frac] = s.split('.');
  const grouped = (int ?? '').replace(/\B(?=(\d{3})+(?!\d))/g, '\u2009');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

const r1 = (x: number): string => {
  const v = Math.round(x * 10) / 10;
  return Object.is(v, -0) ? '0' : String(v);
};

/** Rough text width (px) for layout decisions: no font metrics in a pure function. */
function textWidth(s: string, fontSize: number): number {
  return [...s].length * fontSize * 0.58;
}

function describe(opts: Figure5Options, origin: number, xMaxSec: number): string {
  const parts = [`Traffic in kbit/s over ${formatTick(xMaxSec, xMaxSec >= 10 ? 1 : 0.1)} s`];
  if (opts.series.length) {
    const peaks = opts.series.map((s) => {
      const vals = s.points.map((p) => p[1]).filter((v): v is number => v !== null && Number.isFinite(v));
      const peak = vals.length ? Math.max(...vals) : 0;
      return `${s.label} (peak ${Math.round(peak)} kbit/s)`;
    });
    parts.push(`for ${peaks.join(', ')}`);
  }
  let text = `${parts.join(' ')}.`;
  if (opts.migrations.length) {
    const ms = opts.migrations.map((m) => `${formatTick((m.at - origin) / 1000, 0.1)} s: ${m.label}`);
    text += ` ${opts.migrations.length} migration${opts.migrations.length === 1 ? '' : 's'}: ${ms.join('; ')}.`;
  }
  return text;
}

interface PlacedLabel {
  marker: ChartMarker;
  x: number;
  text: string;
  /** Only the marker's number is shown (too many labels); the full label is in its <title>. */
  compact: boolean;
  anchorEnd: boolean;
  /** 0 = the row right above the plot. */
  row: number;
}

/** Most label rows above the plot before labels fall back to numbers. */
const MAX_LABEL_ROWS = 3;

function placeLabels(markers: readonly ChartMarker[], xOf: (t: number) => number, fontSize: number, minX: number, maxX: number, compact: boolean): PlacedLabel[] {
  const rowEnds: number[] = [];
  return [...markers]
    .map((marker, i) => ({ marker, i }))
    .sort((a, b) => a.marker.at - b.marker.at)
    .map(({ marker, i }) => {
      const x = xOf(marker.at);
      const text = compact ? String(i + 1) : marker.label;
      const w = textWidth(text, fontSize);
      // Right of the line, unless that runs off the plot; then left of it.
      const anchorEnd = x + 4 + w > maxX && x - 4 - w >= minX;
      const x0 = anchorEnd ? x - 4 - w : x + 4;
      let row = rowEnds.findIndex((end) => end + 10 <= x0);
      if (row < 0) {
        row = rowEnds.length;
        rowEnds.push(-Infinity);
      }
      rowEnds[row] = x0 + w;
      return { marker, x, text, compact, anchorEnd, row };
    });
}

function layoutMarkerLabels(markers: readonly ChartMarker[], xOf: (t: number) => number, fontSize: number, minX: number, maxX: number): PlacedLabel[] {
  const full = placeLabels(markers, xOf, fontSize, minX, maxX, false);
  if (full.every((p) => p.row < MAX_LABEL_ROWS)) return full;
  return placeLabels(markers, xOf, fontSize, minX, maxX, true);
}

/** Renders the chart. Returns a standalone SVG document (UTF-8, no XML declaration needed). */
export function figure5Svg(opts: Figure5Options): string {
  const width = opts.width ?? 960;
  const height = opts.height ?? 440;
  const id = opts.idPrefix ?? 'fig5';
  const xLabel = opts.xLabel ?? 'time (s)';
  const yLabel = opts.yLabel ?? 'kbit/s';

  // ---- data extent
  const ts: number[] = [];
  let dataMax = 0;
  for (const s of opts.series) {
    for (const [t, v] of s.points) {
      if (!Number.isFinite(t)) continue;
      ts.push(t);
      if (v !== null && Number.isFinite(v) && v > dataMax) dataMax = v;
    }
  }
  for (const m of opts.migrations) {
    ts.push(m.at);
    if (m.until !== undefined) ts.push(m.until);
  }
  const minT = ts.length ? Math.min(...ts) : 0;
  const maxT = ts.length ? Math.max(...ts) : 1000;
  const origin = opts.originMs ?? minT;
  const xMaxSec = Math.max((maxT - origin) / 1000, 1e-3);
  const xMinSec = Math.min(0, (minT - origin) / 1000);

  // ---- layout
  const titleSize = 18;
  const subSize = 13;
  const tickSize = 12;
  const labelSize = 12;
  const legendY = opts.subtitle ? 66 : 46;
  const markerRowH = 17;
  const left = 68;
  const right = 28;
  const bottom = 54;
  const plotW = Math.max(50, width - left - right);

  // x scale first: marker label rows (above the plot) depend on it, and the top margin on them.
  const xStep = niceStep(xMaxSec - xMinSec, Math.max(3, Math.round(plotW / 90)));
  // End the axis on a tick when the data ends just short of one.
  const nextTick = Math.ceil(xMaxSec / xStep - 1e-9) * xStep;
  const xEndSec = nextTick - xMaxSec < xStep * 0.25 ? nextTick : xMaxSec;
  const xOfSec = (sec: number): number => left + ((sec - xMinSec) / (xEndSec - xMinSec)) * plotW;
  const xOf = (tMs: number): number => xOfSec((tMs - origin) / 1000);

  const placed = layoutMarkerLabels(opts.migrations, xOf, labelSize, left, left + plotW);
  const rows = placed.reduce((m, p) => Math.max(m, p.row + 1), 0);
  const top = legendY + 18 + rows * markerRowH;
  const plotH = Math.max(50, height - top - bottom);

  const yStep = niceStep(opts.yMaxKbps ?? Math.max(dataMax * 1.15, 1), 5);
  const yMax = opts.yMaxKbps ?? Math.max(yStep, Math.ceil((Math.max(dataMax, 1) * 1.15) / yStep) * yStep);
  const yOf = (v: number): number => top + plotH - (Math.min(Math.max(v, 0), yMax) / yMax) * plotH;

  const out: string[] = [];
  const desc = opts.description ?? describe(opts, origin, xMaxSec);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `role="img" aria-labelledby="${id}-title ${id}-desc" font-family="${escapeXml(FONT)}">`,
    `<title id="${id}-title">${escapeXml(opts.title)}</title>`,
    `<desc id="${id}-desc">${escapeXml(desc)}</desc>`,
    `<defs><clipPath id="${id}-plot"><rect x="${r1(left)}" y="${r1(top - 1)}" width="${r1(plotW)}" height="${r1(plotH + 2)}"/></clipPath></defs>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  );

  // ---- title, subtitle
  out.push(`<text x="${left}" y="28" font-size="${titleSize}" font-weight="600" fill="${INK}">${escapeXml(opts.title)}</text>`);
  if (opts.subtitle) out.push(`<text x="${left}" y="48" font-size="${subSize}" fill="${MUTED}">${escapeXml(opts.subtitle)}</text>`);

  // ---- grid and y axis
  out.push(`<g class="y-axis" font-size="${tickSize}" fill="${MUTED}" text-anchor="end">`);
  for (let v = 0; v <= yMax + yStep * 1e-6; v += yStep) {
    const y = r1(yOf(v));
    out.push(`<line x1="${left}" x2="${r1(left + plotW)}" y1="${y}" y2="${y}" stroke="${v === 0 ? AXIS : GRID}" stroke-width="1"/>`);
    out.push(`<text x="${left - 8}" y="${y}" dy="0.32em">${groupThousands(formatTick(v, yStep))}</text>`);
  }
  out.push('</g>');
  out.push(
    `<text transform="translate(18 ${r1(top + plotH / 2)}) rotate(-90)" text-anchor="middle" font-size="${labelSize}" fill="${INK}">${escapeXml(yLabel)}</text>`,
  );

  // ---- x axis
  out.push(`<g class="x-axis" font-size="${tickSize}" fill="${MUTED}" text-anchor="middle">`);
  const firstTick = Math.ceil(xMinSec / xStep - 1e-9) * xStep;
  for (let s = firstTick; s <= xEndSec + xStep * 1e-6; s += xStep) {
    const x = r1(xOfSec(s));
    out.push(`<line x1="${x}" x2="${x}" y1="${r1(top + plotH)}" y2="${r1(top + plotH + 5)}" stroke="${AXIS}"/>`);
    out.push(`<text x="${x}" y="${r1(top + plotH + 20)}">${formatTick(s, xStep)}</text>`);
  }
  out.push('</g>');
  out.push(`<text x="${r1(left + plotW / 2)}" y="${r1(height - 10)}" text-anchor="middle" font-size="${labelSize}" fill="${INK}">${escapeXml(xLabel)}</text>`);

  // ---- gap bands (under the lines)
  out.push(`<g class="gaps" clip-path="url(#${id}-plot)">`);
  for (const m of opts.migrations) {
    if (m.until === undefined) continue;
    const x1 = xOf(Math.min(m.at, m.until));
    const x2 = xOf(Math.max(m.at, m.until));
    out.push(`<rect x="${r1(x1)}" y="${r1(top)}" width="${r1(Math.max(x2 - x1, 1))}" height="${r1(plotH)}" fill="#d1242f" fill-opacity="0.10"/>`);
  }
  out.push('</g>');

  // ---- series
  out.push(`<g class="series" clip-path="url(#${id}-plot)">`);
  opts.series.forEach((s, i) => {
    const color = s.color ?? CHART_PALETTE[i % CHART_PALETTE.length] ?? INK;
    const runs: Array<Array<[number, number]>> = [];
    let run: Array<[number, number]> = [];
    const sorted = [...s.points].filter((p) => Number.isFinite(p[0])).sort((a, b) => a[0] - b[0]);
    for (const [t, v] of sorted) {
      if (v === null || !Number.isFinite(v)) {
        if (run.length) runs.push(run);
        run = [];
        continue;
      }
      run.push([xOf(t), yOf(v)]);
    }
    if (run.length) runs.push(run);
    const line = runs.map((r) => r.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${r1(x)} ${r1(y)}`).join('')).join('');
    const base = r1(yOf(0));
    const area = runs
      .filter((r) => r.length > 1)
      .map((r) => {
        const first = r[0] as [number, number];
        const last = r[r.length - 1] as [number, number];
        return `M${r1(first[0])} ${base}${r.map(([x, y]) => `L${r1(x)} ${r1(y)}`).join('')}L${r1(last[0])} ${base}Z`;
      })
      .join('');
    out.push(`<g class="series-line" data-label="${escapeXml(s.label)}">`);
    out.push(`<title>${escapeXml(s.label)}</title>`);
    if (area) out.push(`<path d="${area}" fill="${escapeXml(color)}" fill-opacity="0.08" stroke="none"/>`);
    if (line) {
      out.push(`<path d="${line}" fill="none" stroke="${escapeXml(color)}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>`);
    }
    out.push('</g>');
  });
  out.push('</g>');

  // ---- migration markers: a dashed line through the plot, up to its label above the plot
  // (labels staggered into rows so they never overlap each other or the data).
  out.push(`<g class="migrations" font-size="${labelSize}">`);
  for (const p of placed) {
    const ty = top - 8 - p.row * markerRowH;
    out.push(`<g class="migration" data-at="${r1(p.marker.at)}">`);
    if (p.compact) out.push(`<title>${escapeXml(`${p.text}: ${p.marker.label}`)}</title>`);
    out.push(
      `<line x1="${r1(p.x)}" x2="${r1(p.x)}" y1="${r1(ty + 4)}" y2="${r1(top + plotH)}" stroke="${MARKER}" stroke-width="1.25" stroke-dasharray="5 4"/>`,
    );
    out.push('</g>');
  }
  // Texts after all lines, with a white halo, so a leader passing behind a label stays readable.
  for (const p of placed) {
    const ty = top - 8 - p.row * markerRowH;
    out.push(
      `<text x="${r1(p.anchorEnd ? p.x - 4 : p.x + 4)}" y="${r1(ty)}" text-anchor="${p.anchorEnd ? 'end' : 'start'}" fill="${INK}" ` +
        `stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke">${escapeXml(p.text)}</text>`,
    );
  }
  out.push('</g>');

  // ---- legend (top right): one swatch per series, then the marker
  const items: Array<{ label: string; svg: (x: number, y: number) => string }> = opts.series.map((s, i) => {
    const color = s.color ?? CHART_PALETTE[i % CHART_PALETTE.length] ?? INK;
    return {
      label: s.label,
      svg: (x: number, y: number) => `<line x1="${r1(x)}" x2="${r1(x + 22)}" y1="${r1(y)}" y2="${r1(y)}" stroke="${escapeXml(color)}" stroke-width="3" stroke-linecap="round"/>`,
    };
  });
  if (opts.migrations.length) {
    items.push({
      label: 'migration',
      svg: (x: number, y: number) => `<line x1="${r1(x + 11)}" x2="${r1(x + 11)}" y1="${r1(y - 7)}" y2="${r1(y + 7)}" stroke="${MARKER}" stroke-width="1.25" stroke-dasharray="3 3"/>`,
    });
  }
  const itemW = items.map((it) => 22 + 6 + textWidth(it.label, labelSize) + 18);
  let lx = left + plotW - itemW.reduce((a, b) => a + b, 0) + 18;
  out.push(`<g class="legend" font-size="${labelSize}" fill="${INK}">`);
  items.forEach((it, i) => {
    out.push(it.svg(lx, legendY));
    out.push(`<text x="${r1(lx + 28)}" y="${r1(legendY)}" dy="0.32em">${escapeXml(it.label)}</text>`);
    lx += itemW[i] ?? 0;
  });
  out.push('</g>');

  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
