/**
 * A data plane that records what it was told (FRR's kernel_null.c spirit). For core unit
 * tests and for running the HA without touching the kernel (`dataplane: "none"`).
 */
import { formatIpv6, formatPrefix, type Ipv6Address, type Ipv6Prefix } from '../../wire/ipv6.js';
import type { BindingCounters, DataplaneStats, HaDataplanePort, HostDataplanePort, TunnelBinding } from '../../ports/dataplane.js';

export type FakeOp = { op: 'start' } | { op: 'upsert'; guest: string; coa: string; prefixes: string[] } | { op: 'remove'; guest: string } | { op: 'stop' };

export class FakeHaDataplane implements HaDataplanePort {
  readonly ops: FakeOp[] = [];
  readonly routes = new Map<string, { coa: string; prefixes: string[] }>();
  /** Make the next upsert/remove fail with this error (for rollback tests). */
  failNext: Error | null = null;
  /** Keep only the current state, not the op log (for benchmarks with many bindings). */
  constructor(private readonly recordOps = true) {}

  async start(): Promise<void> {
    if (this.recordOps) this.ops.push({ op: 'start' });
  }

  async upsert(b: TunnelBinding): Promise<void> {
    this.maybeFail();
    const entry = { coa: formatIpv6(b.coa), prefixes: b.prefixes.map(formatPrefix) };
    if (this.recordOps) this.ops.push({ op: 'upsert', guest: b.guest, ...entry });
    this.routes.set(b.guest, entry);
  }

  async remove(guest: string): Promise<void> {
    this.maybeFail();
    if (this.recordOps) this.ops.push({ op: 'remove', guest });
    this.routes.delete(guest);
  }

  async counters(guest: string): Promise<BindingCounters | null> {
    return this.routes.has(guest) ? { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0 } : null;
  }

  async stats(): Promise<DataplaneStats> {
    return { backend: 'fake', bindings: this.routes.size, dropsNoBinding: 0, dropsIngress: 0, dropsHoldOverflow: 0 };
  }

  async stop(): Promise<void> {
    if (this.recordOps) this.ops.push({ op: 'stop' });
    this.routes.clear();
  }

  private maybeFail(): void {
    const e = this.failNext;
    if (e) {
      this.failNext = null;
      throw e;
    }
  }
}

/** Host-side counterpart: records guests and their routes, touches nothing. */
export class FakeHostDataplane implements HostDataplanePort {
  readonly guests = new Map<string, { prefixes: string[]; ifname: string }>();
  endpoint: { coa: string; ha: string } | null = null;

  async start(coa: Ipv6Address, haAddr: Ipv6Address): Promise<void> {
    this.endpoint = { coa: formatIpv6(coa), ha: formatIpv6(haAddr) };
  }

  async addGuest(guest: string, prefixes: readonly Ipv6Prefix[], guestIfname: string): Promise<void> {
    this.guests.set(guest, { prefixes: prefixes.map(formatPrefix), ifname: guestIfname });
  }

  async removeGuest(guest: string): Promise<void> {
    this.guests.delete(guest);
  }

  async stop(): Promise<void> {
    this.guests.clear();
    this.endpoint = null;
  }
}
