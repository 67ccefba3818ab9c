/** The real clock. Timers are unref'd so they never keep a process alive on their own. */
import type { Cancel, Clock } from '../ports/clock.js';

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms: number, fn: () => void): Cancel {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  every(ms: number, fn: () => void): Cancel {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};
