import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuestPolicy } from '../../src/ports/guest-directory.js';
import type { RedisHandle } from '../../src/platform/redis/connection.js';
import { RedisGuestDirectory, RedisGuestRegistry, guestPolicyFromRecord, type GuestRecord } from '../../src/platform/redis/guest-registry.js';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { CompositeGuestDirectory, GuestDirectoryConflictError, MemoryGuestDirectory } from '../../src/platform/memory-guest-directory.js';
import { eventually, hasRedisServer, RedisLab } from './redis-helpers.js';

const KEY = '00112233445566778899aabbccddeeff';

function record(n: number, spi = 1000 + n, over: Partial<GuestRecord> = {}): GuestRecord {
  return { id: `g${n}@example.net`, mnps: [`2001:db8:${n}::/48`], sas: [{ spi, algorithm: 'hmac-sha1-96', key: KEY }], mobileRouter: true, ...over };
}
const policy = (n: number, spi?: number, over: Partial<GuestRecord> = {}): GuestPolicy => guestPolicyFromRecord(record(n, spi, over));

describe('MemoryGuestDirectory and CompositeGuestDirectory', () => {
  it('looks guests up by id and SPI, and refuses duplicates naming both guests', () => {
    const dir = new MemoryGuestDirectory([policy(1), policy(2)]);
    expect(dir.bySpi(1002)?.guest.id).toBe('g2@example.net');
    expect(dir.bySpi(1002)?.sa.spi).toBe(1002);
    expect(dir.byId('g1@example.net')?.id).toBe('g1@example.net');
    expect([...dir.all()].length).toBe(2);
    expect(() => new MemoryGuestDirectory([policy(1), policy(1, 5000)])).toThrow('guest "g1@example.net" is defined twice');
    expect(() => new MemoryGuestDirectory([policy(1), policy(2, 1001)])).toThrow(GuestDirectoryConflictError);
    expect(() => new MemoryGuestDirectory([policy(1), policy(2, 1001)])).toThrow(
      'SPI 1001 of guest "g2@example.net" is already used by guest "g1@example.net"',
    );
  });

  it('lets the config side win by id and by SPI', () => {
    const config = new MemoryGuestDirectory([policy(1, 500, { mobileRouter: false }), policy(3, 700)]);
    const redis = new MemoryGuestDirectory([policy(1, 600), policy(2, 700), policy(4, 800)]);
    const both = new CompositeGuestDirectory(config, redis);
    expect(both.byId('g1@example.net')?.mobileRouter).toBe(false);
    expect(both.bySpi(600)).toBeUndefined(); // g1 is defined by config: Redis's g1 is hidden
    expect(both.bySpi(700)?.guest.id).toBe('g3@example.net'); // SPI clash: config wins
    expect(both.byId('g2@example.net')?.id).toBe('g2@example.net');
    expect(both.bySpi(800)?.guest.id).toBe('g4@example.net');
    expect([...both.all()].map((g) => g.id)).toEqual(['g1@example.net', 'g3@example.net', 'g2@example.net', 'g4@example.net']);
  });
});

describe.skipIf(!hasRedisServer)('RedisGuestDirectory', () => {
  const lab = new RedisLab();
  let h: RedisHandle;
  let n = 0;
  const directories: RedisGuestDirectory[] = [];

  beforeAll(async () => {
    const s = await lab.server();
    h = await lab.connect({ url: s.url, name: 't-directory' });
  });
  afterAll(async () => {
    await Promise.all(directories.map((d) => d.stop()));
    await lab.cleanup();
  });

  async function started(reg: RedisGuestRegistry, changes: [string, boolean][] = [], resyncIntervalMs = 0): Promise<RedisGuestDirectory> {
    const dir = new RedisGuestDirectory(reg, h, {
      onChange: (id, g) => changes.push([id, g !== undefined]),
      onError: () => undefined,
      resyncIntervalMs,
    });
    directories.push(dir);
    await dir.start();
    return dir;
  }

  it('loads what is enrolled and follows put and remove within a second', async () => {
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys(`gdir${++n}`) });
    await reg.put(record(1));
    const changes: [string, boolean][] = [];
    const dir = await started(reg, changes);
    expect(dir.byId('g1@example.net')?.sas[0]?.spi).toBe(1001);
    expect(dir.bySpi(1001)?.guest.id).toBe('g1@example.net');
    expect(changes).toEqual([]); // the initial load is not reported as changes

    await reg.put(record(2));
    expect(await eventually(() => dir.bySpi(1002) !== undefined, 1_000)).toBe(true);

    await reg.put(record(1, 1111)); // SPI change
    expect(await eventually(() => dir.bySpi(1111) !== undefined, 1_000)).toBe(true);
    expect(dir.bySpi(1001)).toBeUndefined();

    await reg.remove('g2@example.net');
    expect(await eventually(() => dir.byId('g2@example.net') === undefined, 1_000)).toBe(true);
    expect(dir.bySpi(1002)).toBeUndefined();
    await dir.idle();
    expect(changes).toEqual([
      ['g2@example.net', true],
      ['g1@example.net', true],
      ['g2@example.net', false],
    ]);
    expect([...dir.all()].map((g) => g.id)).toEqual(['g1@example.net']);
  });

  it('moves an SPI between guests in publish order', async () => {
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys(`gdir${++n}`) });
    await reg.put(record(1, 300));
    const dir = await started(reg);
    await reg.put(record(1, 301));
    await reg.put(record(2, 300));
    expect(await eventually(() => dir.bySpi(300)?.guest.id === 'g2@example.net', 1_000)).toBe(true);
    await dir.idle();
    expect(dir.bySpi(301)?.guest.id).toBe('g1@example.net');
  });

  it('reloads everything after its subscription connection drops (missed notifications)', async () => {
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys(`gdir${++n}`) });
    const dir = await started(reg);
    // Kill every pub/sub connection, then change a guest before the subscriber is back.
    await h.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await reg.put(record(5));
    expect(await eventually(() => dir.byId('g5@example.net') !== undefined, 3_000)).toBe(true);
  });

  /** A registry on the same keys whose notifications go nowhere: changes the directory can only find by checking. */
  const silent = (reg: RedisGuestRegistry): RedisGuestRegistry =>
    new RedisGuestRegistry(h.client, { keys: { ...reg.keys, guestChanges: `${reg.keys.guestChanges}:muted` } });

  it('notices a gap in notification versions and reloads everything', async () => {
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys(`gdir${++n}`) });
    const dir = await started(reg);
    await silent(reg).put(record(7));
    await reg.put(record(8));
    expect(await eventually(() => dir.byId('g8@example.net') !== undefined, 1_000)).toBe(true);
    await dir.idle();
    expect(dir.byId('g7@example.net')).toBeDefined();
    expect(await reg.version()).toBe(2);
  });

  it('finds missed changes by checking the version counter (the Cluster path)', async () => {
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys(`gdir${++n}`) });
    await reg.put(record(1));
    const dir = await started(reg, [], 50);
    await silent(reg).remove('g1@example.net');
    await silent(reg).put(record(9));
    expect(await eventually(() => dir.byId('g9@example.net') !== undefined && dir.byId('g1@example.net') === undefined, 2_000)).toBe(true);
    expect(dir.bySpi(1001)).toBeUndefined();
  });

  it('stop() ends the subscription; lookups keep the last view', async () => {
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys(`gdir${++n}`) });
    await reg.put(record(1));
    const dir = await started(reg);
    await dir.stop();
    await reg.put(record(2));
    await new Promise((r) => setTimeout(r, 100));
    expect(dir.byId('g2@example.net')).toBeUndefined();
    expect(dir.byId('g1@example.net')).toBeDefined();
  });
});
