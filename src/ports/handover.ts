/**
 * HandoverPort: how the source host asks the HA to hold a guest's packets while it pauses
 * (make before break). The HA keeps them until the BU from the new host moves the binding and
 * then sends them there, in order. Implemented over the HA's API (platform/ha-api/handover.ts).
 */
import type { Ipv6Address } from '../wire/ipv6.js';

export type HandoverHoldOutcome =
  | { readonly held: true }
  /** Why not: 'unsupported' (the HA's data plane cannot buffer), 'no-binding', or an error text. */
  | { readonly held: false; readonly reason: string };

export interface HandoverPort {
  /** Hold the guest's packets at the HA; `nextCoa` is where the guest is going. Never throws. */
  hold(guest: string, nextCoa: Ipv6Address | undefined): Promise<HandoverHoldOutcome>;
  /**
   * The guest has left this host (its hypervisor handed the last state over): the HA sends what
   * it holds, and what follows, to the next CoA now, ahead of the BU from there. Resolves
   * whether it did. Never throws.
   */
  switchToNext(guest: string): Promise<boolean>;
  /** End a hold now (the migration failed before the switch). Never throws. */
  release(guest: string): Promise<void>;
}
