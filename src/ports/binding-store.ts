/**
 * BindingStore: where the HA's binding cache survives a restart. Writes are batched by the
 * caller; the store only has to make a batch durable and give everything back on start.
 * Implementations: Redis (src/platform/redis/binding-store.ts) and memory (fake).
 */

/** A binding as persisted: plain JSON-safe values (addresses and prefixes in text form). */
export interface StoredBinding {
  readonly guest: string;
  readonly mnps: readonly string[];
  readonly coa: string;
  readonly haAddress: string;
  readonly seq: number;
  /** BU flag names that were set (e.g. ["ack", "home", "router"]). */
  readonly flags: readonly string[];
  readonly lifetimeSec: number;
  /** Epoch ms. */
  readonly expiresAt: number;
  readonly registeredAt: number;
  readonly updatedAt: number;
  /** Last accepted replay-protection timestamp (decimal string of the 64-bit value), if any. */
  readonly lastTimestamp?: string;
  /** CoA changes, oldest first; `haMs` is the HA-side handover time when it was measured. */
  readonly history: readonly { readonly from: string; readonly to: string; readonly at: number; readonly haMs?: number }[];
}

export interface BindingStore {
  /** Persist these upserts and deletions atomically as one batch. */
  writeBatch(upserts: readonly StoredBinding[], deletes: readonly string[]): Promise<void>;
  /** Every stored binding (expired ones included; the caller filters). */
  loadAll(): Promise<StoredBinding[]>;
}
