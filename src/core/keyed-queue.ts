/**
 * Serialise async work per key: work for one key runs in order, different keys run freely.
 * Node's answer to UMIP's thread + lock per binding: the only interleaving points are awaits.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Wait for everything queued so far. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }
}
