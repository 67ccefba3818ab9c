/**
 * HandoverPort over the HA's HTTP API: `POST /api/v1/bindings/:guest/hold`, `POST …/hold/switch`
 * and `DELETE …/hold`, with the bearer token. A slow or absent HA never delays a migration by more
 * than `timeoutMs`: the hold is an optimisation, the handover works without it (with loss).
 */
import { formatIpv6, type Ipv6Address } from '../../wire/ipv6.js';
import type { HandoverHoldOutcome, HandoverPort } from '../../ports/handover.js';
import { apiRequest } from '../../cli/api-client.js';

export interface HaApiHandoverOptions {
  /** The HA API base: `http://[2001:db8::1]:8446` or `unix:/run/roam6/ha.sock`. */
  readonly api: string;
  readonly token: string;
  /** Hold at most this long at the HA (default 2000 ms) and this many packets (default 4096). */
  readonly maxMs?: number;
  readonly maxPackets?: number;
  /** Give up on the HA after this long (default 250 ms). */
  readonly timeoutMs?: number;
}

export class HaApiHandover implements HandoverPort {
  constructor(private readonly o: HaApiHandoverOptions) {}

  async hold(guest: string, nextCoa: Ipv6Address | undefined): Promise<HandoverHoldOutcome> {
    const body = { maxMs: this.o.maxMs ?? 2000, maxPackets: this.o.maxPackets ?? 4096, ...(nextCoa ? { nextCoa: formatIpv6(nextCoa) } : {}) };
    try {
      const r = await apiRequest(this.o.api, 'POST', this.path(guest), this.auth(), body, this.o.timeoutMs ?? 250);
      const b = r.body as { held?: boolean; reason?: string; message?: string } | null;
      if (r.status === 200 && b?.held) return { held: true };
      return { held: false, reason: b?.reason ?? `${r.status} ${b?.message ?? ''}`.trim() };
    } catch (e) {
      return { held: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  async switchToNext(guest: string): Promise<boolean> {
    try {
      const r = await apiRequest(this.o.api, 'POST', `${this.path(guest)}/switch`, this.auth(), undefined, this.o.timeoutMs ?? 250);
      return r.status === 200 && (r.body as { switched?: boolean } | null)?.switched === true;
    } catch {
      return false;
    }
  }

  async release(guest: string): Promise<void> {
    await apiRequest(this.o.api, 'DELETE', this.path(guest), this.auth(), undefined, this.o.timeoutMs ?? 250).catch(() => {});
  }

  private path(guest: string): string {
    return `/api/v1/bindings/${encodeURIComponent(guest)}/hold`;
  }

  private auth(): Record<string, string> {
    return { authorization: `Bearer ${this.o.token}` };
  }
}
