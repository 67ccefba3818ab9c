/**
 * DataplanePort: where a guest's prefixes are tunnelled, and how tunnelled packets are
 * received. One small interface, two backends (kernel seg6, userspace TUN + raw proto 41)
 * plus a recording fake. Neither the HA nor the host agent knows which one runs.
 *
 * All methods are idempotent: installing what is already installed, or removing what is
 * not there, succeeds. Failures throw a DataplaneError (below), which the HA maps to
 * a Binding Acknowledgement status (RFC 3963 §6: 143 forwarding setup failed).
 */
import type { Ipv6Address, Ipv6Prefix } from '../wire/ipv6.js';

/** What every backend throws: the message names the operation, `guest` the binding if any. */
export class DataplaneError extends Error {
  override name = 'DataplaneError';
  readonly code = 'ROAM6_ERR_DATAPLANE';
  /** The guest whose operation failed, when there is one. */
  readonly guest: string | null;

  constructor(message: string, guest: string | null, cause?: unknown) {
    super(cause instanceof Error ? `${message}: ${cause.message}` : message, cause === undefined ? undefined : { cause });
    this.guest = guest;
  }
}

/** One prefix → care-of address mapping as the HA sees it (one binding). */
export interface TunnelBinding {
  /** Binding key: the guest id (Mobile Node Identifier). */
  readonly guest: string;
  /** The guest's Mobile Network Prefixes; traffic to them goes into the tunnel. */
  readonly prefixes: readonly Ipv6Prefix[];
  /** Tunnel remote end (the host's CoA). Also the only outer source accepted on ingress. */
  readonly coa: Ipv6Address;
}

export interface BindingCounters {
  /** Packets/bytes encapsulated toward the CoA (HA → host). */
  readonly txPackets: number;
  readonly txBytes: number;
  /** Packets/bytes decapsulated from the CoA and forwarded (host → HA). */
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** Ingress packets dropped by the RFC 3963 §9 checks (userspace backend only; kernel reports 0). */
  readonly rxDropped: number;
}

export interface DataplaneStats {
  readonly backend: 'kernel' | 'userspace' | 'fake';
  readonly bindings: number;
  /** Packets dropped for no binding / failed ingress checks / buffer overflow, backend-wide. */
  readonly dropsNoBinding: number;
  readonly dropsIngress: number;
  readonly dropsHoldOverflow: number;
}

/**
 * The HA side: one tunnel endpoint (the HA address) and many bindings.
 */
export interface HaDataplanePort {
  /** Set up decapsulation for tunnelled packets addressed to the HA address. Idempotent. */
  start(): Promise<void>;
  /** Install or move a binding (add, CoA change, prefix set change). Idempotent. */
  upsert(binding: TunnelBinding): Promise<void>;
  /** Remove every route/entry installed for this guest. Idempotent. */
  remove(guest: string): Promise<void>;
  /** Per-binding counters, or null when the guest has no binding here. */
  counters(guest: string): Promise<BindingCounters | null>;
  stats(): Promise<DataplaneStats>;
  /** Remove everything this backend ever installed (also after a crash). */
  stop(): Promise<void>;
  /**
   * Make-before-break, for backends that can buffer (userspace; the kernel backend has none of
   * it): keep the guest's packets instead of sending them to its CoA, within `h`'s bounds, and
   * let tunnelled packets from `h.nextCoa` pass the ingress check. Resolves false when the guest
   * has no binding here. Calling it again while held updates the bounds and restarts the timer.
   */
  hold?(guest: string, h: HandoverHold): Promise<boolean>;
  /**
   * End the hold: every held packet goes, in order, to the binding's CoA now (call it after
   * upsert() with the new CoA), before any later packet. Resolves how many were held.
   */
  release?(guest: string): Promise<number>;
}

export interface HandoverHold {
  /** Packets kept at most; later ones are dropped and counted. */
  readonly maxPackets: number;
  /** Without a release by then, the held packets go to the CoA of that moment. */
  readonly maxMs: number;
  /** The CoA the guest is moving to: its first packets from there pass before the BA. */
  readonly nextCoa?: Ipv6Address;
}

/**
 * The host side (mobile router proxy): one tunnel endpoint (the host's CoA) toward one HA, and
 * the guests this host currently holds. Traffic from a guest's prefixes goes into the reverse
 * tunnel to the HA; decapsulated traffic for them goes out of the guest's link.
 */
export interface HostDataplanePort {
  /**
   * Accept tunnelled packets sent from `haAddr` to `coa`, and make `coa` the outer source of the
   * reverse tunnel. Idempotent; calling it again with other addresses re-targets the endpoint.
   */
  start(coa: Ipv6Address, haAddr: Ipv6Address): Promise<void>;
  /**
   * Route the guest's prefixes out of `guestIfname`, and traffic sourced from them back to the
   * HA through the tunnel. Idempotent; a second call replaces the guest's prefix set and link.
   */
  addGuest(guest: string, prefixes: readonly Ipv6Prefix[], guestIfname: string): Promise<void>;
  /** Remove every route installed for this guest. Idempotent. */
  removeGuest(guest: string): Promise<void>;
  /** Remove everything this backend ever installed on this host (also after a crash). */
  stop(): Promise<void>;
}
