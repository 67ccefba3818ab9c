import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { escapeXml, figure5Svg, niceStep, type Figure5Options } from '../../../src/lab/chart.js';

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/**
 * A deliberately small XML well-formedness checker: tags balance, attributes are quoted and not
 * repeated, entities are the five predefined ones or numeric, no stray '<' or '&' in text.
 * Returns the element tree; throws on the first error.
 */
function parseXml(src: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const checkText = (t: string): string => {
    const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(t);
    if (bad) throw new Error(`bare '&' at ${i}: ${t.slice(bad.index, bad.index + 12)}`);
    if (t.includes('<')) throw new Error(`'<' in text at ${i}`);
    return t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  };
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = lt < 0 ? src.slice(i) : src.slice(i, lt);
    if (text.trim()) {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`text outside the root element at ${i}`);
      top.text += checkText(text);
    }
    if (lt < 0) break;
    if (src.startsWith('<?', lt)) { i = src.indexOf('?>', lt) + 2; continue; }
    if (src.startsWith('<!--', lt)) { i = src.indexOf('-->', lt) + 3; continue; }
    const gt = src.indexOf('>', lt);
    if (gt < 0) throw new Error(`unterminated tag at ${lt}`);
    const tag = src.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z_][\w:.-]*)/.exec(body);
    if (!m || !m[1]) throw new Error(`bad tag <${tag}>`);
    const el: XmlElement = { name: m[1], attrs: {}, children: [], text: '' };
    let rest = body.slice(m[1].length);
    const attrRe = /^\s+([A-Za-z_][\w:.-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/;
    for (;;) {
      const a = attrRe.exec(rest);
      if (!a || !a[1]) break;
      if (a[1] in el.attrs) throw new Error(`duplicate attribute ${a[1]} on <${el.name}>`);
      el.attrs[a[1]] = checkText(a[3] ?? a[4] ?? '');
      rest = rest.slice(a[0].length);
    }
    if (rest.trim()) throw new Error(`junk in <${el.name}>: ${rest.trim().slice(0, 30)}`);
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else if (root) throw new Error('two root elements');
    else root = el;
    if (!selfClosing) stack.push(el);
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1]?.name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

function all(el: XmlElement, pred: (e: XmlElement) => boolean, out: XmlElement[] = []): XmlElement[] {
  if (pred(el)) out.push(el);
  for (const c of el.children) all(c, pred, out);
  return out;
}
const byClass = (root: XmlElement, cls: string): XmlElement[] => all(root, (e) => e.attrs.class === cls);

const T0 = 1_760_000_000_000;

/** Host A carries the stream, then host B after a 6 s gap, then A again (the paper's picture). */
function sample(): Figure5Options {
  const a: Array<[number, number | null]> = [];
  const b: Array<[number, number | null]> = [];
  for (let t = 0; t <= 60_000; t += 500) {
    const onA = t < 20_000 || t >= 46_000;
    const onB = t >= 26_000 && t < 40_000;
    a.push([T0 + t, onA ? 540 : 0]);
    b.push([T0 + t, t > 50_000 && t < 52_000 ? null : onB ? 540 : 0]);
  }
  return {
    title: 'Guest stream per host <g1 & friends>',
    subtitle: '520 kbit/s UDP, 500 ms bins',
    series: [
      { label: 'host A', color: '#0072B2', points: a },
      { label: 'host B', points: b },
    ],
    migrations: [
      { at: T0 + 20_000, until: T0 + 26_000, label: 'A → B · gap 6.0 s' },
      { at: T0 + 40_000, until: T0 + 46_000, label: 'B → A · gap 6.0 s' },
    ],
  };
}

describe('figure5Svg', () => {
  it('is well-formed XML with an accessible title and description', () => {
    const svg = figure5Svg(sample());
    const root = parseXml(svg);
    expect(root.name).toBe('svg');
    expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(root.attrs.role).toBe('img');
    expect(root.attrs.viewBox).toBe('0 0 960 440');
    const [title, desc] = root.children;
    expect(title?.name).toBe('title');
    expect(title?.text).toBe('Guest stream per host <g1 & friends>');
    expect(desc?.name).toBe('desc');
    expect(desc?.text).toMatch(/host A \(peak 540 kbit\/s\), host B \(peak 540 kbit\/s\)/);
    expect(desc?.text).toMatch(/2 migrations: 20\.0 s: A → B · gap 6\.0 s; 40\.0 s: B → A · gap 6\.0 s\./);
    expect(root.attrs['aria-labelledby']).toBe(`${title?.attrs.id} ${desc?.attrs.id}`);
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
  });

  it('draws one line per series (broken at nulls), markers with labels, gap bands, a legend and axes', () => {
    const root = parseXml(figure5Svg(sample()));
    const lines = byClass(root, 'series-line');
    expect(lines.map((l) => l.attrs['data-label'])).toEqual(['host A', 'host B']);
    const strokeOf = (g: XmlElement): XmlElement | undefined => g.children.find((c) => c.name === 'path' && c.attrs.fill === 'none');
    expect(strokeOf(lines[0] as XmlElement)?.attrs.stroke).toBe('#0072B2');
    expect(strokeOf(lines[1] as XmlElement)?.attrs.stroke).toBe('#D55E00'); // palette default
    // host B's null at 50.5–51.5 s starts a second sub-path
    expect(strokeOf(lines[1] as XmlElement)?.attrs.d?.match(/M/g)).toHaveLength(2);
    expect(strokeOf(lines[0] as XmlElement)?.attrs.d?.match(/M/g)).toHaveLength(1);

    const markers = byClass(root, 'migration');
    expect(markers).toHaveLength(2);
    for (const m of markers) expect(m.children.some((c) => c.name === 'line' && c.attrs['stroke-dasharray'])).toBe(true);
    const texts = all(root, (e) => e.name === 'text').map((t) => t.text);
    expect(texts).toEqual(expect.arrayContaining(['A → B · gap 6.0 s', 'B → A · gap 6.0 s', 'host A', 'host B', 'migration', 'time (s)', 'kbit/s']));
    expect(byClass(root, 'gaps')[0]?.children.filter((c) => c.name === 'rect')).toHaveLength(2);
    // x ticks 0…60 s, y ticks 0…700 kbit/s
    const xTicks = byClass(root, 'x-axis')[0]?.children.filter((c) => c.name === 'text').map((t) => t.text);
    expect(xTicks?.[0]).toBe('0');
    expect(xTicks?.[xTicks.length - 1]).toBe('60');
    const yTicks = byClass(root, 'y-axis')[0]?.children.filter((c) => c.name === 'text').map((t) => t.text);
    expect(yTicks?.[0]).toBe('0');
    expect(Number(yTicks?.[yTicks.length - 1])).toBeGreaterThanOrEqual(600);
  });

  it('orders marker x positions by time and keeps their labels apart', () => {
    const opts = sample();
    const crowded: Figure5Options = {
      ...opts,
      migrations: Array.from({ length: 12 }, (_, i) => ({ at: T0 + 5000 + i * 4000, label: `${i % 2 ? 'B → A' : 'A → B'} · gap ${100 + i} ms` })),
    };
    const root = parseXml(figure5Svg(crowded));
    const xs = byClass(root, 'migration').map((m) => Number(m.children.find((c) => c.name === 'line')?.attrs.x1));
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    // labels on the same row never overlap (estimated width 0.58 em per character)
    const labels = all(byClass(root, 'migrations')[0] as XmlElement, (e) => e.name === 'text');
    const rows = new Map<string, Array<[number, number]>>();
    for (const l of labels) {
      const x = Number(l.attrs.x);
      const w = [...l.text].length * 12 * 0.58;
      const span: [number, number] = l.attrs['text-anchor'] === 'end' ? [x - w, x] : [x, x + w];
      const row = rows.get(l.attrs.y as string) ?? [];
      for (const [a, b] of row) expect(span[0] >= b || span[1] <= a).toBe(true);
      row.push(span);
      rows.set(l.attrs.y as string, row);
    }
    expect(rows.size).toBeLessThanOrEqual(3);
  });

  it('falls back to numbered markers when the labels would need too many rows', () => {
    const crowded: Figure5Options = {
      ...sample(),
      migrations: Array.from({ length: 40 }, (_, i) => ({ at: T0 + i * 1500, label: `migration ${i + 1}, gap ${100 + i} ms` })),
    };
    const root = parseXml(figure5Svg(crowded));
    const texts = all(byClass(root, 'migrations')[0] as XmlElement, (e) => e.name === 'text').map((t) => t.text);
    expect(texts.slice(0, 3)).toEqual(['1', '2', '3']);
    const titles = all(byClass(root, 'migrations')[0] as XmlElement, (e) => e.name === 'title').map((t) => t.text);
    expect(titles[0]).toBe('1: migration 1, gap 100 ms');
  });

  it('copes with no data at all', () => {
    const root = parseXml(figure5Svg({ title: 'empty', series: [], migrations: [] }));
    expect(byClass(root, 'series')[0]?.children).toEqual([]);
    expect(figure5Svg({ title: 'empty', series: [], migrations: [] })).not.toMatch(/NaN|Infinity/);
  });

  it('renders with rsvg-convert when it is installed', (ctx) => {
    let have = true;
    try { execFileSync('rsvg-convert', ['--version'], { stdio: 'ignore' }); } catch { have = false; }
    if (!have) ctx.skip();
    const dir = mkdtempSync(join(tmpdir(), 'r6chart-'));
    try {
      writeFileSync(join(dir, 'f.svg'), figure5Svg(sample()));
      execFileSync('rsvg-convert', ['-o', join(dir, 'f.png'), join(dir, 'f.svg')], { stdio: 'pipe' });
      const png = execFileSync('head', ['-c', '8', join(dir, 'f.png')]);
      expect([...png]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('chart helpers', () => {
  it('picks 1-2-5 tick steps and escapes XML', () => {
    expect(niceStep(60, 10)).toBe(5);
    expect(niceStep(700, 5)).toBe(100);
    expect(niceStep(1000, 5)).toBe(200);
    expect(niceStep(0.9, 5)).toBeCloseTo(0.2);
    expect(niceStep(0, 5)).toBe(1);
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });
});
