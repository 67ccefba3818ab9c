/**
 * Benchmark reports: each bench owns one section of docs/benchmarks.md, delimited by
 * `<!-- bench:NAME -->` markers, and rewrites only that section, stamped with the machine and
 * the date. Raw results also go to docs/bench/NAME.json for later comparison.
 */
import { cpus, totalmem, release } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above bench/');
    dir = up;
  }
  return dir;
}

export function machine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}`;
}

export function writeSection(name: string, title: string, command: string, body: string, raw: unknown): void {
  const root = repoRoot();
  const file = resolve(root, 'docs/benchmarks.md');
  const header = '# Benchmarks\n\nEach section is written by its benchmark; rerun the command shown to refresh it.\n';
  let text = existsSync(file) ? readFileSync(file, 'utf8') : header;
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const section = `${start}\n## ${title}\n\n_${new Date().toISOString().slice(0, 10)} · ${machine()}_  \nReproduce: \`${command}\`\n\n${body.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, text);
  mkdirSync(resolve(root, 'docs/bench'), { recursive: true });
  writeFileSync(resolve(root, `docs/bench/${name}.json`), `${JSON.stringify({ date: new Date().toISOString(), machine: machine(), results: raw }, null, 2)}\n`);
}

/** Run `fn` repeatedly for about `ms` and return operations per second (after a warm-up). */
export function rate(fn: () => void, ms = 1500): number {
  const warm = Date.now() + 200;
  while (Date.now() < warm) fn();
  let n = 0;
  const t0 = process.hrtime.bigint();
  const stop = t0 + BigInt(ms) * 1_000_000n;
  let now = t0;
  while (now < stop) {
    for (let k = 0; k < 1000; k++) fn();
    n += 1000;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - t0) / 1e9);
}

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
