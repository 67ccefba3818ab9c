/**
 * Fuzz the decoder with a fixed seed: random bytes and mutations of valid messages. Every
 * input must decode to a value or a WireError — never an exception, never the decoder's
 * internal safety net — and every value that decodes must survive a re-encode.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix } from '../../../src/wire/ipv6.js';
import {
  MhOptionType,
  MhType,
  buFlags,
  baFlags,
  decodeMobilityHeader,
  encodeMobilityHeader,
  WireError,
  type DecodedMessage,
  type MobilityMessage,
} from '../../../src/wire/mh/index.js';
import { authOptionFor } from '../../../src/security/mn-ha-auth.js';
import { mulberry32, randInt } from '../../helpers/prng.js';

const SEED = 0x5eed_2026;
const ITERATIONS = 120_000;

const seeds: MobilityMessage[] = [
  {
    type: MhType.BindingUpdate, seq: 0x1234, lifetimeUnits: 100, flags: buFlags({ ack: true, home: true, router: true, proxy: true }),
    options: [
      { type: MhOptionType.MobileNodeIdentifier, subtype: 1, identifier: new TextEncoder().encode('g1') },
      { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:100::/64') },
      { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:101::/64') },
      { type: MhOptionType.MobilityMessageReplayProtection, timestamp: 123456789n },
      authOptionFor({ spi: 256, algorithm: 'hmac-sha1-96', key: new Uint8Array(16) }),
    ],
  },
  {
    type: MhType.BindingAck, status: 0, seq: 5, lifetimeUnits: 100, flags: baFlags({ router: true }),
    options: [{ type: MhOptionType.BindingRefreshAdvice, intervalUnits: 90 }, { type: MhOptionType.Timestamp, timestamp: 1n }],
  },
  { type: MhType.BindingError, status: 2, homeAddress: parseIpv6('2001:db8::1'), options: [] },
  { type: MhType.BindingRefreshRequest, options: [{ type: MhOptionType.HandoffIndicator, indicator: 1 }] },
];
const seedBytes = seeds.map((m) => encodeMobilityHeader(m));

function stripCovered(m: DecodedMessage): unknown {
  if (m.type === 'unknown') return m;
  return { ...m, options: m.options.map((o) => ('coveredLength' in o ? { ...o, coveredLength: undefined } : o)) };
}

function mutate(rand: () => number, base: Uint8Array): Uint8Array {
  const b = Uint8Array.from(base);
  switch (randInt(rand, 0, 5)) {
    case 0: // flip a few bits
      for (let k = randInt(rand, 1, 4); k > 0; k--) b[randInt(rand, 0, b.length - 1)]! ^= 1 << randInt(rand, 0, 7);
      return b;
    case 1: // set a byte to an edge value
      b[randInt(rand, 0, b.length - 1)] = [0, 1, 0x7f, 0x80, 0xff][randInt(rand, 0, 4)]!;
      return b;
    case 2: // truncate
      return b.subarray(0, randInt(rand, 0, b.length - 1));
    case 3: // extend with garbage
      return Uint8Array.from([...b, ...Array.from({ length: randInt(rand, 1, 24) }, () => randInt(rand, 0, 255))]);
    case 4: { // corrupt the header length
      b[1] = randInt(rand, 0, 255);
      return b;
    }
    default: { // splice a random option TLV into the option area
      const at = randInt(rand, 6, b.length - 1);
      const tlv = [randInt(rand, 0, 30), randInt(rand, 0, 40)];
      const out = Uint8Array.from([...b.subarray(0, at), ...tlv, ...b.subarray(at)]);
      const len = out.length - (out.length % 8);
      out[1] = len / 8 - 1;
      return out.subarray(0, len);
    }
  }
}

describe('decoder fuzz (fixed seed)', () => {
  it(`${ITERATIONS} random and mutated inputs never throw`, () => {
    const rand = mulberry32(SEED);
    const stats = { ok: 0, errors: new Map<string, number>(), reencoded: 0, unencodable: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      let input: Uint8Array;
      if (i % 4 === 0) {
        const n = randInt(rand, 0, 64);
        input = Uint8Array.from({ length: n }, () => randInt(rand, 0, 255));
        if (n >= 2 && rand() < 0.7) { input[0] = 59; input[1] = Math.max(0, Math.ceil(n / 8) - 1); }
      } else {
        input = mutate(rand, seedBytes[i % seedBytes.length]!);
      }
      let r: ReturnType<typeof decodeMobilityHeader>;
      try {
        r = decodeMobilityHeader(input);
      } catch (e) {
        throw new Error(`decoder threw on ${Buffer.from(input).toString('hex')}: ${String(e)}`);
      }
      if (!r.ok) {
        expect(r.error).toBeInstanceOf(WireError);
        expect(r.error.detail.startsWith('decoder fault')).toBe(false);
        stats.errors.set(r.error.reason, (stats.errors.get(r.error.reason) ?? 0) + 1);
        continue;
      }
      stats.ok++;
      let again: Uint8Array;
      try {
        again = encodeMobilityHeader(r.value);
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
        stats.unencodable++;
        continue;
      }
      const r2 = decodeMobilityHeader(again);
      expect(r2.ok).toBe(true);
      if (r2.ok) expect(stripCovered(r2.value)).toEqual(stripCovered(r.value));
      stats.reencoded++;
    }
    // The corpus must exercise both sides, or the test proves nothing.
    expect(stats.ok).toBeGreaterThan(ITERATIONS / 20);
    expect(stats.errors.size).toBeGreaterThanOrEqual(8);
    console.log('fuzz outcome', { ok: stats.ok, reencoded: stats.reencoded, unencodable: stats.unencodable, errors: Object.fromEntries(stats.errors) });
  });
});
