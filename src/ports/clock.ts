/**
 * Clock: the only way core code learns the time or waits. Daemons use the system clock;
 * unit tests step a fake one (src/platform/fake/clock.ts) instead of patching globals.
 */
export type Cancel = () => void;

export interface Clock {
  /** Milliseconds since the Unix epoch (wall clock; used for timestamps and expiry). */
  now(): number;
  /** Run `fn` once after `ms`. */
  after(ms: number, fn: () => void): Cancel;
  /** Run `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Cancel;
}
