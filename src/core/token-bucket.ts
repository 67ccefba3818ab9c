/**
 * Per-key token buckets with lazy refill (no timers). Used to rate-limit Binding Updates per
 * guest, so one guest's flood cannot starve the others (RFC 6275 §11.8 MAX_UPDATE_RATE in
 * spirit, enforced at the HA). Keys are only ever authenticated-or-known guests, so the map
 * is bounded by the guest directory, not by attackers.
 */
export interface BucketConfig {
  /** Tokens added per second. */
  readonly ratePerSec: number;
  /** Bucket size (largest burst). */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly cfg: BucketConfig) {}

  /** Take one token for `key` at time `now` (ms); false when the bucket is empty. */
  take(key: string, now: number): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.cfg.burst, at: now };
      this.buckets.set(key, b);
    }
    const refill = ((now - b.at) / 1000) * this.cfg.ratePerSec;
    b.tokens = Math.min(this.cfg.burst, b.tokens + refill);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}
