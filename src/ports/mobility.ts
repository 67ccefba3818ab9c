/**
 * Ports the per-guest mobile-router proxy needs: the guest's mobility state that moves with
 * it between hosts (Redis), and a way to send Mobility Header messages (a raw socket).
 */
import type { Ipv6Address } from '../wire/ipv6.js';

export interface MobilityStatePort {
  /** A sequence number no host has used for this guest (atomic increment, modulo 2^16). */
  nextSequence(guest: string): Promise<number>;
  /** Move the counter forward to `seq` (after BA status 135); never backwards. */
  setSequence(guest: string, seq: number): Promise<boolean>;
  /** Record a replay-protection timestamp if it is newer than the stored one. */
  advanceReplayTimestamp(guest: string, timestamp: bigint): Promise<boolean>;
  /** The newest replay-protection timestamp any host used for this guest, if any. */
  lastReplayTimestamp(guest: string): Promise<bigint | undefined>;
}

export interface MhSenderPort {
  /** Send MH octets to `dst` from `src` (the kernel fills the checksum). Throws on failure. */
  send(mh: Uint8Array, dst: Ipv6Address, src: Ipv6Address): void;
}
