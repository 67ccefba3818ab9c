/** An in-memory BindingStore for unit tests (and `store: none`). Can be told to fail. */
import type { BindingStore, StoredBinding } from '../../ports/binding-store.js';

export class MemoryBindingStore implements BindingStore {
  readonly data = new Map<string, StoredBinding>();
  batches = 0;
  failing: Error | null = null;

  async writeBatch(upserts: readonly StoredBinding[], deletes: readonly string[]): Promise<void> {
    if (this.failing) throw this.failing;
    this.batches++;
    for (const b of upserts) this.data.set(b.guest, structuredClone(b));
    for (const g of deletes) this.data.delete(g);
  }

  async loadAll(): Promise<StoredBinding[]> {
    if (this.failing) throw this.failing;
    return [...this.data.values()].map((b) => structuredClone(b));
  }
}
