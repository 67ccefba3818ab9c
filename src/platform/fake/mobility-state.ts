/** In-memory MobilityStatePort: what Redis keeps for each guest, for unit tests. */
import type { MobilityStatePort } from '../../ports/mobility.js';

export class MemoryMobilityState implements MobilityStatePort {
  readonly seq = new Map<string, number>();
  readonly timestamps = new Map<string, bigint>();
  failing: Error | null = null;

  async nextSequence(guest: string): Promise<number> {
    if (this.failing) throw this.failing;
    const n = ((this.seq.get(guest) ?? -1) + 1) & 0xffff;
    this.seq.set(guest, n);
    return n;
  }

  async setSequence(guest: string, seq: number): Promise<boolean> {
    const cur = this.seq.get(guest);
    const d = cur === undefined ? 1 : (seq - cur) & 0xffff;
    if (d === 0 || d > 0x7fff) return false;
    this.seq.set(guest, seq);
    return true;
  }

  async advanceReplayTimestamp(guest: string, ts: bigint): Promise<boolean> {
    const cur = this.timestamps.get(guest);
    if (cur !== undefined && cur >= ts) return false;
    this.timestamps.set(guest, ts);
    return true;
  }

  async lastReplayTimestamp(guest: string): Promise<bigint | undefined> {
    return this.timestamps.get(guest);
  }
}
