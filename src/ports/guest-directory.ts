/**
 * GuestDirectory: who the HA serves. A guest is identified by its Mobile Node Identifier
 * (RFC 4283 NAI, e.g. "g1@example.net") and owns its MNPs and security associations.
 * Sources: the HA config file, and Redis (guests enrolled with `roam6 guest add`).
 */
import type { Ipv6Prefix } from '../wire/ipv6.js';
import type { SecurityAssociation } from '../security/mn-ha-auth.js';

export interface GuestPolicy {
  /** Mobile Node Identifier (NAI). The binding key. */
  readonly id: string;
  /** Prefixes this guest may register (explicit mode) or gets (implicit mode). */
  readonly mnps: readonly Ipv6Prefix[];
  /** Security associations; two during a key rollover. */
  readonly sas: readonly SecurityAssociation[];
  /** Mobile-router operation allowed (RFC 3963 §6.6); false answers R-flag BUs with 140. */
  readonly mobileRouter: boolean;
}

export interface GuestDirectory {
  /** The guest that owns this SPI, with the SA, or undefined. Must be fast (hot path). */
  bySpi(spi: number): { readonly guest: GuestPolicy; readonly sa: SecurityAssociation } | undefined;
  byId(id: string): GuestPolicy | undefined;
  /** Every guest, for listing. */
  all(): Iterable<GuestPolicy>;
}
