/**
 * The host agent's view of Redis: guests and where they are (GuestRegistryPort) and the
 * per-guest mobility state that moves with them (MobilityStatePort), over RedisGuestRegistry.
 */
import type { GuestRegistryPort, HostGuestRecord } from '../../ports/host.js';
import type { MobilityStatePort } from '../../ports/mobility.js';
import { guestPolicyFromRecord, type RedisGuestRegistry } from './guest-registry.js';

export class RedisAgentState implements GuestRegistryPort, MobilityStatePort {
  constructor(private readonly registry: RedisGuestRegistry) {}

  async get(guest: string): Promise<HostGuestRecord | undefined> {
    const r = await this.registry.get(guest);
    if (!r) return undefined;
    return { ...guestPolicyFromRecord(r), ...(r.host !== undefined ? { host: r.host } : {}) };
  }

  async setHost(guest: string, host: string): Promise<void> {
    await this.registry.setHost(guest, host);
  }

  async heldBy(host: string): Promise<string[]> {
    // list() joins each enrolment with its mobility state, where the current host lives.
    return (await this.registry.list()).filter((r) => r.host === host).map((r) => r.id);
  }

  nextSequence(guest: string): Promise<number> {
    return this.registry.nextSequence(guest);
  }

  setSequence(guest: string, seq: number): Promise<boolean> {
    return this.registry.setSequence(guest, seq);
  }

  advanceReplayTimestamp(guest: string, timestamp: bigint): Promise<boolean> {
    return this.registry.advanceReplayTimestamp(guest, timestamp);
  }

  async lastReplayTimestamp(guest: string): Promise<bigint | undefined> {
    return (await this.registry.getState(guest))?.lastTimestamp;
  }
}
