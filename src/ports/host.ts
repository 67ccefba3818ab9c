/**
 * Ports of the host agent: the guest's link on this host, and the guest registry (Redis).
 */
import type { GuestPolicy } from './guest-directory.js';

export interface GuestLinkPort {
  /**
   * Build (or adopt after a restart) the guest's link on this host: a bridge with the guest's
   * fixed gateway MAC and link-local address, the MNP gateway address, MTU, and Router
   * Advertisements. Returns the interface the guest's prefixes are routed out of. Idempotent.
   */
  ensure(guest: GuestPolicy): Promise<string>;
  /**
   * Attach the guest's own interface (the hypervisor's TAP/vif/veth) if it is here. With
   * `waitUpMs` (the guest runs here now), also wait up to that long until the link can carry
   * packets, so that a registration right after it does not pull traffic onto a link that still
   * drops it. Resolves whether the interface was attached.
   */
  attach(guest: string, opts?: { readonly waitUpMs?: number }): Promise<boolean>;
  /** Tell the guest right away that its router is here (RA + unsolicited NA). */
  announce(guest: string): Promise<void>;
  /** Remove the guest's link. Idempotent. */
  remove(guest: string): Promise<void>;
}

export interface HostGuestRecord extends GuestPolicy {
  /** The host id currently holding the guest, as recorded in the registry. */
  readonly host?: string;
}

export interface GuestRegistryPort {
  get(guest: string): Promise<HostGuestRecord | undefined>;
  /** Record that `host` now holds the guest. */
  setHost(guest: string, host: string): Promise<void>;
  /** Guests the registry says this host holds (for adoption at start). */
  heldBy(host: string): Promise<string[]>;
}
