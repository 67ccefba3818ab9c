/** Small statistics and number formatting for the benchmark reports. */
import { quantile } from '../src/lab/analysis.js';

export interface Stats { n: number; p50: number | null; p90: number | null; p99: number | null; max: number | null; min: number | null; mean: number | null }

export function stats(values: readonly number[]): Stats {
  const v = values.filter((x) => Number.isFinite(x));
  return {
    n: v.length,
    p50: quantile(v, 0.5),
    p90: quantile(v, 0.9),
    p99: quantile(v, 0.99),
    max: v.length ? Math.max(...v) : null,
    min: v.length ? Math.min(...v) : null,
    mean: v.length ? v.reduce((a, b) => a + b, 0) / v.length : null,
  };
}

export const r1 = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(1));
export const r2 = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(2));
