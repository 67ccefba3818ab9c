/** A clock that moves only when the test says so. Timers fire in time order during advance(). */
import type { Cancel, Clock } from '../../ports/clock.js';

interface Timer {
  at: number;
  every: number | null;
  fn: () => void;
  id: number;
}

export class FakeClock implements Clock {
  private t: number;
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(startMs = 1_800_000_000_000) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Cancel {
    return this.add({ at: this.t + ms, every: null, fn, id: this.nextId++ });
  }

  every(ms: number, fn: () => void): Cancel {
    return this.add({ at: this.t + ms, every: ms, fn, id: this.nextId++ });
  }

  /** Move time forward by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.t = next.at;
      if (next.every !== null) next.at += next.every;
      else this.timers.shift();
      next.fn();
    }
    this.t = end;
  }

  private add(timer: Timer): Cancel {
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }
}
