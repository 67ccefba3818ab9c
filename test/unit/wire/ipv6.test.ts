import { describe, expect, it } from 'vitest';
import {
  formatIpv6, parseIpv6, tryParseIpv6, tryParsePrefix, prefixContains, prefixCovers, parsePrefix, isRoutableUnicast,
} from '../../../src/wire/ipv6.js';

describe('IPv6 text forms (RFC 4291 in, RFC 5952 out)', () => {
  it.each([
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8::', '2001:db8::'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['2001:DB8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
  ])('%s → %s', (input, canonical) => {
    expect(formatIpv6(parseIpv6(input))).toBe(canonical);
  });
  it.each(['', ':', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '2001:db8:::1', '12345::', 'g::', '1::2::3', '::1.2.3.256'])('rejects %j', (t) => {
    expect(tryParseIpv6(t)).toBeNull();
  });
  it('parses prefixes and refuses host bits unless asked', () => {
    expect(tryParsePrefix('2001:db8:100::/48')).not.toBeNull();
    expect(tryParsePrefix('2001:db8:100::1/48')).toBeNull();
    expect(tryParsePrefix('2001:db8:100::1/48', { allowHostBits: true })?.addr).toEqual(parseIpv6('2001:db8:100::'));
    expect(tryParsePrefix('2001:db8::/129')).toBeNull();
  });
  it('answers containment for odd prefix lengths', () => {
    const p = parsePrefix('2001:db8:100::/41');
    expect(prefixContains(p, parseIpv6('2001:db8:17f:ffff::1'))).toBe(true);
    expect(prefixContains(p, parseIpv6('2001:db8:180::1'))).toBe(false);
    expect(prefixCovers(parsePrefix('2001:db8::/32'), p)).toBe(true);
    expect(prefixCovers(p, parsePrefix('2001:db8::/32'))).toBe(false);
  });
  it('knows which addresses can be a care-of address', () => {
    expect(isRoutableUnicast(parseIpv6('2001:db8:a::2'))).toBe(true);
    for (const a of ['::', '::1', 'fe80::1', 'ff02::1']) expect(isRoutableUnicast(parseIpv6(a))).toBe(false);
  });
});
