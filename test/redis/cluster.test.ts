/**
 * The same stores on Redis Cluster (a one-node cluster owning all 16384 slots). Cluster mode
 * refuses a multi-key command or script whose keys hash to different slots (CROSSSLOT) even
 * on one node, so this proves the hash tags in keys.ts hold for every atomic step.
 */
import { Queue, Worker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBindingStore } from '../../src/platform/redis/binding-store.js';
import type { RedisHandle } from '../../src/platform/redis/connection.js';
import { RedisGuestDirectory, RedisGuestRegistry } from '../../src/platform/redis/guest-registry.js';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { eventually, freeLoopbackPort, hasRedisServer, RedisLab } from './redis-helpers.js';

const KEY = '00112233445566778899aabbccddeeff';

describe.skipIf(!hasRedisServer)('Redis Cluster (one node, all slots)', () => {
  const lab = new RedisLab();
  let h: RedisHandle;
  let port = 0;

  beforeAll(async () => {
    port = await freeLoopbackPort();
    await lab.server({
      tcp: { host: '127.0.0.1', port },
      extraConfig: ['cluster-enabled yes', 'cluster-config-file nodes.conf', 'cluster-node-timeout 2000', 'cluster-announce-ip 127.0.0.1'],
    });
    const admin = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    const ok = await eventually(async () => String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'), 10_000, 50);
    admin.disconnect();
    expect(ok).toBe(true);
    h = await lab.connect({ url: `redis+cluster://127.0.0.1:${port}`, name: 't-cluster' });
  });
  afterAll(() => lab.cleanup());

  it('is a real cluster: keys in different slots cannot share a transaction', async () => {
    expect(h.client).toBeInstanceOf(Cluster);
    await expect(h.client.eval("return redis.call('MGET', KEYS[1], KEYS[2])", 2, 'a', 'b')).rejects.toThrow(/CROSSSLOT|different slots/i);
  });

  it('stores and loads bindings', async () => {
    const store = new RedisBindingStore(h.client, { keys: redisKeys('cl1'), chunkSize: 10 });
    const b = (i: number) => ({
      guest: `g${i}`, mnps: ['2001:db8::/48'], coa: '2001:db8:a::2', haAddress: '2001:db8:1::2', seq: i, flags: [],
      lifetimeSec: 60, expiresAt: 1, registeredAt: 1, updatedAt: 1, history: [],
    });
    await store.writeBatch(Array.from({ length: 50 }, (_, i) => b(i)), ['g3']);
    expect((await store.loadAll()).length).toBe(49);
  });

  it('runs BullMQ under the hash-tagged queue prefix', async () => {
    const prefix = redisKeys('cl3').queuePrefix;
    const queue = new Queue('host-a', { connection: h.client, prefix });
    const seen: unknown[] = [];
    const worker = new Worker('host-a', async (job) => void seen.push(job.data), { connection: h.duplicate(), prefix });
    try {
      await queue.add('prepare', { guest: 'g1@example.net' });
      expect(await eventually(() => seen.length === 1, 5_000)).toBe(true);
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  it('runs every registry script and follows changes', async () => {
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys('cl2') });
    const dir = new RedisGuestDirectory(reg, h, { onError: () => undefined, resyncIntervalMs: 0 });
    try {
      await dir.start();
      const rec = { id: 'g1@example.net', mnps: ['2001:db8:1::/48'], sas: [{ spi: 300, algorithm: 'hmac-sha1-96' as const, key: KEY }], mobileRouter: true };
      expect(await reg.put({ ...rec, host: 'host-a' })).toBe('created');
      expect(await eventually(() => dir.bySpi(300) !== undefined, 2_000)).toBe(true);
      expect(await reg.nextSequence(rec.id)).toBe(1);
      expect(await reg.setSequence(rec.id, 10)).toBe(true);
      expect(await reg.advanceReplayTimestamp(rec.id, 5n)).toBe(true);
      await reg.setHost(rec.id, 'host-b');
      expect(await reg.getState(rec.id)).toEqual({ seq: 10, lastTimestamp: 5n, host: 'host-b' });
      expect((await reg.list()).map((g) => g.host)).toEqual(['host-b']);
      expect(await reg.remove(rec.id)).toBe(true);
      expect(await eventually(() => dir.byId(rec.id) === undefined, 2_000)).toBe(true);
    } finally {
      await dir.stop();
    }
  });
});
