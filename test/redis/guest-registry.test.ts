import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisHandle } from '../../src/platform/redis/connection.js';
import {
  DuplicateMnpError, DuplicateSpiError, GuestNotFoundError, GuestRecordError, RedisGuestRegistry,
  guestPolicyFromRecord, redactGuestRecord, validateGuestRecord, type GuestRecord,
} from '../../src/platform/redis/guest-registry.js';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { formatPrefix } from '../../src/wire/ipv6.js';
import { hasRedisServer, RedisLab } from './redis-helpers.js';

const KEY_A = '00112233445566778899aabbccddeeff';
const KEY_B = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100';

function guest(n: number, over: Partial<GuestRecord> = {}): GuestRecord {
  return {
    id: `g${n}@example.net`,
    mnps: [`2001:db8:${n.toString(16)}::/48`],
    sas: [{ spi: 1000 + n, algorithm: 'hmac-sha1-96', key: KEY_A }],
    mobileRouter: true,
    ...over,
  };
}

describe('guest record validation', () => {
  it('canonicalises prefixes and hex', () => {
    const r = validateGuestRecord(guest(1, { mnps: ['2001:DB8:0:1:0::/64'], sas: [{ spi: 300, algorithm: 'hmac-sha256-128', key: KEY_B.toUpperCase() }] }));
    expect(r.mnps).toEqual(['2001:db8:0:1::/64']);
    expect(r.sas[0]?.key).toBe(KEY_B);
  });

  it.each([
    [{ id: 'has space' }, /guest id "has space" is invalid/],
    [{ id: '' }, /guest id "" is invalid/],
    [{ mnps: [] }, /needs at least one MNP/],
    [{ mnps: ['2001:db8::1/48'] }, /mnps\[0\] "2001:db8::1\/48" is not an IPv6 prefix/],
    [{ mnps: ['2001:db8::/48', '2001:db8:0::/48'] }, /MNP 2001:db8::\/48 is listed twice/],
    [{ sas: [] }, /needs 1–4 security associations/],
    [{ sas: [{ spi: 255, algorithm: 'hmac-sha1-96', key: KEY_A }] }, /SPI 255 must be an integer 256–4294967295/],
    [{ sas: [{ spi: 300, algorithm: 'md5', key: KEY_A } as never] }, /SPI 300 algorithm "md5" is not one of/],
    [{ sas: [{ spi: 300, algorithm: 'hmac-sha1-96', key: KEY_A }, { spi: 300, algorithm: 'hmac-sha1-96', key: KEY_A }] }, /SPI 300 is listed twice/],
    [{ mobileRouter: 'yes' as never }, /mobileRouter must be true or false/],
    [{ host: 'host a' }, /host "host a" is invalid/],
  ])('rejects %o', (over, message) => {
    expect(() => validateGuestRecord(guest(1, over as Partial<GuestRecord>))).toThrow(message);
  });

  it('never echoes key material in errors or redacted output', () => {
    const secret = 'abcdef0123456789abcdef01234567'; // 15 bytes: too short
    let message = '';
    try {
      validateGuestRecord(guest(1, { sas: [{ spi: 300, algorithm: 'hmac-sha1-96', key: secret }] }));
    } catch (err) {
      expect(err).toBeInstanceOf(GuestRecordError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/SPI 300 key must be 16–128 bytes of hex/);
    expect(message).not.toContain(secret);
    expect(JSON.stringify(redactGuestRecord(guest(1)))).not.toContain(KEY_A);
  });

  it('builds a policy whose SA keys do not print', () => {
    const policy = guestPolicyFromRecord(guest(7));
    expect(policy.mnps.map(formatPrefix)).toEqual(['2001:db8:7::/48']);
    const sa = policy.sas[0];
    expect(sa?.key).toEqual(Uint8Array.from(Buffer.from(KEY_A, 'hex')));
    expect(JSON.stringify(policy)).not.toMatch(/key/);
    expect(inspect(policy, { depth: 5 })).not.toMatch(/key|0x11|17, 34/);
  });
});

describe.skipIf(!hasRedisServer)('RedisGuestRegistry', () => {
  const lab = new RedisLab();
  let h: RedisHandle;
  let n = 0;
  const fresh = (): RedisGuestRegistry => new RedisGuestRegistry(h.client, { keys: redisKeys(`greg${++n}`) });

  beforeAll(async () => {
    const s = await lab.server();
    h = await lab.connect({ url: s.url, name: 't-guests' });
  });
  afterAll(() => lab.cleanup());

  it('puts, gets, lists and removes guests, keeping the SPI index exact', async () => {
    const reg = fresh();
    expect(await reg.put(guest(2))).toBe('created');
    expect(await reg.put(guest(1, { host: 'host-a' }))).toBe('created');
    expect(await reg.get('g1@example.net')).toEqual(validateGuestRecord(guest(1, { host: 'host-a' })));
    expect(await reg.get('nobody@example.net')).toBeUndefined();
    expect((await reg.list()).map((g) => [g.id, g.host])).toEqual([
      ['g1@example.net', 'host-a'],
      ['g2@example.net', undefined],
    ]);
    expect(await reg.guestIdForSpi(1001)).toBe('g1@example.net');

    // Replace g1's SA: the old SPI leaves the index; the host stays.
    expect(await reg.put(guest(1, { sas: [{ spi: 4_294_967_295, algorithm: 'hmac-sha256-128', key: KEY_B }] }))).toBe('updated');
    expect(await reg.guestIdForSpi(1001)).toBeUndefined();
    expect(await reg.guestIdForSpi(4_294_967_295)).toBe('g1@example.net');
    expect((await reg.get('g1@example.net'))?.host).toBe('host-a');

    expect(await reg.remove('g1@example.net')).toBe(true);
    expect(await reg.remove('g1@example.net')).toBe(false);
    expect(await reg.get('g1@example.net')).toBeUndefined();
    expect(await reg.guestIdForSpi(4_294_967_295)).toBeUndefined();
    expect(await h.client.hlen(reg.keys.guestMnpIndex)).toBe(1);
    expect(await h.client.exists(reg.keys.guestState('g1@example.net'))).toBe(0);
  });

  it('rejects an SPI or MNP of another guest, naming both, and changes nothing', async () => {
    const reg = fresh();
    await reg.put(guest(1, { sas: [{ spi: 300, algorithm: 'hmac-sha1-96', key: KEY_A }] }));
    const dupSpi = guest(2, { sas: [{ spi: 301, algorithm: 'hmac-sha1-96', key: KEY_A }, { spi: 300, algorithm: 'hmac-sha1-96', key: KEY_B }] });
    const err = await reg.put(dupSpi).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateSpiError);
    expect((err as Error).message).toBe('SPI 300 of guest "g2@example.net" is already used by guest "g1@example.net"');
    expect((err as Error).message).not.toContain(KEY_B);
    expect(await reg.get('g2@example.net')).toBeUndefined();
    expect(await reg.guestIdForSpi(301)).toBeUndefined();

    await expect(reg.put(guest(3, { mnps: ['2001:db8:1::/48'] }))).rejects.toThrow(
      new DuplicateMnpError('2001:db8:1::/48', 'g3@example.net', 'g1@example.net').message,
    );

    // Once g1 gives SPI 300 up, g2 may take it.
    await reg.put(guest(1, { sas: [{ spi: 310, algorithm: 'hmac-sha1-96', key: KEY_A }] }));
    expect(await reg.put(dupSpi)).toBe('created');
    expect(await reg.guestIdForSpi(300)).toBe('g2@example.net');
  });

  it('hands out 10,000 distinct sequence numbers to two concurrent clients', async () => {
    const reg = fresh();
    await reg.put(guest(1));
    const other = new RedisGuestRegistry(h.duplicate(), { keys: reg.keys });
    const run = (r: RedisGuestRegistry): Promise<number[]> =>
      Promise.all(Array.from({ length: 5000 }, () => r.nextSequence('g1@example.net')));
    const [a, b] = await Promise.all([run(reg), run(other)]);
    const all = new Set([...a, ...b]);
    expect(all.size).toBe(10_000);
    expect(Math.min(...all)).toBe(1);
    expect(Math.max(...all)).toBe(10_000);
    expect((await reg.getState('g1@example.net'))?.seq).toBe(10_000);
  });

  it('wraps the sequence number 65535 → 0', async () => {
    const reg = fresh();
    await reg.put(guest(1));
    expect(await reg.setSequence('g1@example.net', 65534)).toBe(true); // first value: any number
    expect(await reg.nextSequence('g1@example.net')).toBe(65535);
    expect(await reg.nextSequence('g1@example.net')).toBe(0);
    expect(await reg.nextSequence('g1@example.net')).toBe(1);
  });

  it('setSequence only moves forward in 2^16 serial arithmetic', async () => {
    const reg = fresh();
    await reg.put(guest(1));
    const id = 'g1@example.net';
    expect(await reg.setSequence(id, 100)).toBe(true); // first value
    expect(await reg.setSequence(id, 50)).toBe(false);
    expect(await reg.setSequence(id, 100)).toBe(false);
    expect(await reg.setSequence(id, 100 + 32768)).toBe(false); // half-way: not "newer"
    expect(await reg.setSequence(id, 100 + 32767)).toBe(true);
    expect(await reg.setSequence(id, 65530)).toBe(true);
    expect(await reg.setSequence(id, 5)).toBe(true); // forward across the wrap
    expect(await reg.setSequence(id, 65530)).toBe(false); // backward across the wrap
    expect((await reg.getState(id))?.seq).toBe(5);
    expect(await reg.nextSequence(id)).toBe(6);
    await expect(reg.setSequence(id, 65536)).rejects.toThrow(RangeError);
  });

  it('keeps the greatest replay timestamp (full 64 bits)', async () => {
    const reg = fresh();
    await reg.put(guest(1));
    const id = 'g1@example.net';
    expect(await reg.getState(id)).toEqual({});
    expect(await reg.advanceReplayTimestamp(id, 9n)).toBe(true);
    expect(await reg.advanceReplayTimestamp(id, 10n)).toBe(true); // longer decimal, greater
    expect(await reg.advanceReplayTimestamp(id, 9n)).toBe(false);
    expect(await reg.advanceReplayTimestamp(id, 10n)).toBe(false);
    const max = 2n ** 64n - 1n;
    expect(await reg.advanceReplayTimestamp(id, max - 1n)).toBe(true);
    expect(await reg.advanceReplayTimestamp(id, max)).toBe(true); // differs from max − 1 only past 2^53
    expect(await reg.advanceReplayTimestamp(id, 2n ** 63n)).toBe(false);
    expect((await reg.getState(id))?.lastTimestamp).toBe(max);
    await expect(reg.advanceReplayTimestamp(id, 2n ** 64n)).rejects.toThrow(RangeError);
  });

  it('records the host and refuses state for guests that are not enrolled', async () => {
    const reg = fresh();
    await reg.put(guest(1));
    await reg.setHost('g1@example.net', 'host-b');
    expect(await reg.getState('g1@example.net')).toEqual({ host: 'host-b' });
    expect((await reg.get('g1@example.net'))?.host).toBe('host-b');
    await reg.setHost('g1@example.net', undefined);
    expect((await reg.get('g1@example.net'))?.host).toBeUndefined();
    expect(await reg.getState('ghost@example.net')).toBeUndefined();
    await expect(reg.nextSequence('ghost@example.net')).rejects.toThrow(GuestNotFoundError);
    await expect(reg.setSequence('ghost@example.net', 1)).rejects.toThrow('guest "ghost@example.net" is not enrolled');
    await expect(reg.advanceReplayTimestamp('ghost@example.net', 1n)).rejects.toThrow(GuestNotFoundError);
    await expect(reg.setHost('ghost@example.net', 'host-a')).rejects.toThrow(GuestNotFoundError);
    expect(await h.client.exists(reg.keys.guestState('ghost@example.net'))).toBe(0);
  });

  it('reloads scripts after SCRIPT FLUSH (server restart or failover)', async () => {
    const reg = fresh();
    await reg.put(guest(1));
    await h.client.script('FLUSH');
    expect(await reg.nextSequence('g1@example.net')).toBe(1);
  });

  it('lists many guests in scan batches and skips corrupt entries with a report', async () => {
    const reported: string[] = [];
    const reg = new RedisGuestRegistry(h.client, { keys: redisKeys(`greg${++n}`), scanCount: 50, onCorrupt: (id) => reported.push(id) });
    for (let i = 1; i <= 600; i++) await reg.put(guest(i));
    await h.client.hset(reg.keys.guests, 'broken@example.net', '{"v":1,"mnps":[]}');
    const listed = await reg.list();
    expect(listed.length).toBe(600);
    const ids = listed.map((g) => g.id);
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(600);
    expect(reported).toEqual(['broken@example.net']);
  });
});
