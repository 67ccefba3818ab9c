/** `npm run demo` with a small N, as CI runs it: the stream survives, the chart is written. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns } from '../helpers/netns.js';

const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;

describe.skipIf(!canUseNetns)('roam6 demo', () => {
  it('streams from a guest, migrates it twice through the queue, and writes figure 5', () => {
    const out = mkdtempSync(join(tmpdir(), 'roam6-demo-'));
    try {
      const r = spawnSync(process.execPath, [BIN, 'demo', '--migrations', '2', '--interval-ms', '1500', '--out', out], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/against the paper's ~6 s: \d+× shorter/);
      const svg = readFileSync(join(out, 'figure5.svg'), 'utf8');
      expect(svg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
      expect(svg).toContain('host-a');
      expect(svg).toContain('host-b');
      const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { migrations: { gapMs: number; lost: number; to: string }[]; received: number; sent: number };
      expect(results.migrations.map((m) => m.to)).toEqual(['host-b', 'host-a']);
      for (const m of results.migrations) {
        expect(m.gapMs).toBeLessThan(1000);
        expect(m.lost).toBeLessThanOrEqual(5);
      }
      expect(results.received).toBeGreaterThan(results.sent * 0.97);
      expect(existsSync('/tmp/roam6-lab-demo')).toBe(false); // the lab is gone
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 150_000);
});
