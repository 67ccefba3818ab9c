import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredBinding } from '../../src/ports/binding-store.js';
import { RedisBindingStore, storedBindingProblem } from '../../src/platform/redis/binding-store.js';
import type { RedisHandle } from '../../src/platform/redis/connection.js';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { hasRedisServer, RedisLab } from './redis-helpers.js';

function binding(i: number, over: Partial<StoredBinding> = {}): StoredBinding {
  const hex = i.toString(16);
  return {
    guest: `g${i}@example.net`,
    mnps: [`2001:db8:${hex}::/48`],
    coa: `2001:db8:a::${hex}`,
    haAddress: '2001:db8:1::2',
    seq: i & 0xffff,
    flags: ['ack', 'home', 'router'],
    lifetimeSec: 600,
    expiresAt: 1_700_000_600_000 + i,
    registeredAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000 + i,
    ...(i % 2 ? { lastTimestamp: (2n ** 63n + BigInt(i)).toString() } : {}),
    history: [{ from: '2001:db8:a::1', to: `2001:db8:a::${hex}`, at: 1_700_000_000_000 }],
    ...over,
  };
}

const byGuest = (a: StoredBinding, b: StoredBinding): number => (a.guest < b.guest ? -1 : a.guest > b.guest ? 1 : 0);

describe('storedBindingProblem', () => {
  it('accepts a binding and names the first bad field otherwise', () => {
    expect(storedBindingProblem(binding(1), 'g1@example.net')).toBeUndefined();
    expect(storedBindingProblem(binding(1), 'other')).toMatch(/does not match/);
    expect(storedBindingProblem({ ...binding(1), seq: '1' }, 'g1@example.net')).toBe('seq is not a number');
    expect(storedBindingProblem([], 'x')).toBe('not an object');
  });
});

describe.skipIf(!hasRedisServer)('RedisBindingStore', () => {
  const lab = new RedisLab();
  let h: RedisHandle;
  let n = 0;
  const fresh = (opts: ConstructorParameters<typeof RedisBindingStore>[1] = {}): RedisBindingStore =>
    new RedisBindingStore(h.client, { keys: redisKeys(`bst${++n}`), ...opts });

  beforeAll(async () => {
    const s = await lab.server();
    h = await lab.connect({ url: s.url, name: 't-bindings' });
  });
  afterAll(() => lab.cleanup());

  it('round-trips 1,000 bindings in one batch', async () => {
    const store = fresh({ chunkSize: 128 });
    const all = Array.from({ length: 1000 }, (_, i) => binding(i));
    await store.writeBatch(all, []);
    expect(await store.size()).toBe(1000);
    expect((await store.loadAll()).sort(byGuest)).toEqual([...all].sort(byGuest));
  });

  it('applies upserts and deletes together; a guest in both lists ends up deleted', async () => {
    const store = fresh();
    await store.writeBatch(Array.from({ length: 10 }, (_, i) => binding(i)), []);
    await store.writeBatch(
      [binding(1, { seq: 999 }), binding(20), binding(3)],
      [binding(2).guest, binding(3).guest, binding(4).guest, 'never-stored'],
    );
    const loaded = new Map((await store.loadAll()).map((b) => [b.guest, b]));
    expect([...loaded.keys()].sort()).toEqual(
      [0, 1, 5, 6, 7, 8, 9, 20].map((i) => binding(i).guest).sort(),
    );
    expect(loaded.get(binding(1).guest)?.seq).toBe(999);
    await store.writeBatch([], []); // no-op
    expect(await store.size()).toBe(8);
  });

  it('reports a failed batch naming the key, the batch size and the Redis error', async () => {
    const keys = redisKeys(`bst${++n}`);
    const store = new RedisBindingStore(h.client, { keys });
    await h.client.set(keys.bindings, 'not a hash'); // every HSET/HDEL in the batch now fails
    await expect(store.writeBatch([binding(1)], [binding(2).guest])).rejects.toThrow(
      new RegExp(`binding store ${keys.bindings.replace(/[{}]/g, '\\$&')}: batch of 1 upserts and 1 deletes not written: WRONGTYPE`),
    );
    expect(await h.client.get(keys.bindings)).toBe('not a hash');
  });

  it('skips and reports entries that do not decode', async () => {
    const keys = redisKeys(`bst${++n}`);
    const reported: string[] = [];
    const store = new RedisBindingStore(h.client, { keys, onCorrupt: (g, why) => reported.push(`${g}: ${why}`) });
    await store.writeBatch([binding(1), binding(2)], []);
    await h.client.hset(keys.bindings, 'bad@example.net', '{not json', 'odd@example.net', JSON.stringify(binding(3)));
    expect((await store.loadAll()).map((b) => b.guest).sort()).toEqual([binding(1).guest, binding(2).guest]);
    expect(reported.sort()).toEqual([
      expect.stringMatching(/^bad@example\.net: not JSON/),
      expect.stringMatching(/^odd@example\.net: guest field "g3@example\.net" does not match/),
    ]);
  });

  it('loads 100,000 bindings through HSCAN', async () => {
    const store = fresh();
    const total = 100_000;
    for (let start = 0; start < total; start += 10_000) {
      await store.writeBatch(Array.from({ length: 10_000 }, (_, i) => binding(start + i)), []);
    }
    const t0 = performance.now();
    const loaded = await store.loadAll();
    const ms = performance.now() - t0;
    console.log(`loadAll: ${total} bindings in ${ms.toFixed(0)} ms`);
    expect(loaded.length).toBe(total);
    expect(new Set(loaded.map((b) => b.guest)).size).toBe(total);
    expect(loaded.find((b) => b.guest === binding(54_321).guest)).toEqual(binding(54_321));
    expect(ms).toBeLessThan(30_000); // generous: a correctness bound, not a benchmark
  });
});
