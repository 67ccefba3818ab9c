/**
 * Sequence numbers and lifetimes.
 *
 * PURE. RFC 6275 §9.5.1: sequence numbers compare modulo 2^16; `a` is newer than `b` when
 * (a − b) mod 2^16 lies in [1, 32767] (UMIP MIP6_SEQ_GT). Lifetimes travel in units of 4 s.
 */
import { LIFETIME_UNIT_SEC } from './constants.js';

/** a is strictly greater than b in sequence-number space. */
export function seqGreater(a: number, b: number): boolean {
  const d = (a - b) & 0xffff;
  return d >= 1 && d <= 0x7fff;
}

export function seqNext(a: number, step = 1): number {
  return (a + step) & 0xffff;
}

/** Seconds → 4-second units, rounded down and clamped to the 16-bit field. */
export function lifetimeUnitsFromSec(sec: number): number {
  if (!(sec > 0)) return 0;
  return Math.min(0xffff, Math.floor(sec / LIFETIME_UNIT_SEC));
}

export function lifetimeSecFromUnits(units: number): number {
  return units * LIFETIME_UNIT_SEC;
}
