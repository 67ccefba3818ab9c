/**
 * The guest link identity is a cross-host contract: every host, every version, must derive
 * the same MAC, link-local address and bridge name from a guest id. The golden values below
 * pin it; changing them breaks live migration between hosts running different versions.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import {
  guestFromAlias, guestLinkAlias, guestLinkIdentity, isGuestLinkName, linkLocalFromMac, mnpGatewayAddress,
} from '../../../src/core/guest-link-identity.js';
import { sha256 } from '../../../src/core/sha256.js';
import { formatIpv6, parseIpv6, parsePrefix } from '../../../src/wire/ipv6.js';
import { formatMac, isLocalUnicastMac, modifiedEui64, parseMac } from '../../../src/wire/mac.js';
import { mulberry32, randInt } from '../../helpers/prng.js';

describe('sha256 (pure) agrees with node:crypto', () => {
  it('FIPS 180-4 examples', () => {
    const hex = (s: string): string => Buffer.from(sha256(new TextEncoder().encode(s))).toString('hex');
    expect(hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))
      .toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('every length 0..300, across the 55/56/64-octet padding edges (seeded bytes)', () => {
    const rand = mulberry32(0x5a256);
    for (let len = 0; len <= 300; len++) {
      const data = Uint8Array.from({ length: len }, () => randInt(rand, 0, 255));
      expect(Buffer.from(sha256(data)).toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });
});

describe('guestLinkIdentity', () => {
  it('golden values (cross-host, cross-version contract)', () => {
    const id = guestLinkIdentity('g1@example.net');
    expect(id.ifname).toBe('r6gd731becdc4');
    expect(formatMac(id.mac)).toBe('02:d7:31:be:cd:c4');
    expect(formatIpv6(id.linkLocal)).toBe('fe80::d7:31ff:febe:cdc4');
    expect(id.alias).toBe('roam6 guest g1@example.net');
  });

  it('is deterministic and distinct per guest', () => {
    const a = guestLinkIdentity('g1');
    expect(guestLinkIdentity('g1')).toEqual(a);
    expect(guestLinkIdentity('g2').ifname).not.toBe(a.ifname);
    const names = new Set(Array.from({ length: 5000 }, (_, i) => guestLinkIdentity(`guest-${i}@example.net`).ifname));
    expect(names.size).toBe(5000);
  });

  it('MAC is locally administered unicast and shows in the interface name', () => {
    for (const g of ['g1', 'ü', 'x'.repeat(254), '客人@例子.测试']) {
      const id = guestLinkIdentity(g);
      expect(isLocalUnicastMac(id.mac)).toBe(true);
      expect(id.mac[0]).toBe(0x02);
      expect(id.ifname.length).toBeLessThanOrEqual(15);
      expect(isGuestLinkName(id.ifname)).toBe(true);
      expect(id.ifname.slice(3)).toBe(formatMac(id.mac).slice(3).replace(/:/g, ''));
      expect(Buffer.byteLength(id.alias)).toBeLessThanOrEqual(255);
    }
  });

  it('link-local address is fe80::/64 + modified EUI-64 (RFC 4291 App. A)', () => {
    expect(Buffer.from(modifiedEui64(parseMac('00:1b:21:3c:9d:f8'))).toString('hex')).toBe('021b21fffe3c9df8');
    expect(formatIpv6(linkLocalFromMac(parseMac('02:00:00:00:0a:01')))).toBe('fe80::ff:fe00:a01');
  });

  it('refuses an empty id', () => {
    expect(() => guestLinkIdentity('')).toThrow(TypeError);
  });
});

describe('names, aliases and gateway addresses', () => {
  it('isGuestLinkName accepts only r6g + 10 lower-case hex digits', () => {
    expect(isGuestLinkName('r6g012345678')).toBe(false);
    expect(isGuestLinkName('r6g01234567ab')).toBe(true);
    expect(isGuestLinkName('r6g01234567AB')).toBe(false);
    expect(isGuestLinkName('r6g01234567abc')).toBe(false);
    expect(isGuestLinkName('eth0')).toBe(false);
  });

  it('alias round-trips the id, and long ids are cut on a character boundary', () => {
    expect(guestFromAlias(guestLinkAlias('g1@example.net'))).toBe('g1@example.net');
    const long = 'é'.repeat(127); // 254 octets
    const alias = guestLinkAlias(long);
    expect(Buffer.byteLength(alias)).toBeLessThanOrEqual(255);
    expect(alias.endsWith('…')).toBe(true);
    expect(alias).not.toContain('\ufffd');
    expect(guestFromAlias('something else')).toBeNull();
    expect(guestFromAlias(null)).toBeNull();
    expect(guestFromAlias('roam6 guest ')).toBeNull();
  });

  it('gateway is <MNP>::1, whatever host bits the prefix carries', () => {
    expect(formatIpv6(mnpGatewayAddress(parsePrefix('2001:db8:100::/64')))).toBe('2001:db8:100::1');
    expect(formatIpv6(mnpGatewayAddress({ addr: parseIpv6('2001:db8:100::7'), len: 56 }))).toBe('2001:db8:100::1');
    expect(formatIpv6(mnpGatewayAddress(parsePrefix('2001:db8:100::/127')))).toBe('2001:db8:100::1');
    expect(() => mnpGatewayAddress(parsePrefix('2001:db8:100::/128'))).toThrow(RangeError);
  });
});
