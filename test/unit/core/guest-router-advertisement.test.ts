/** What the guest link's router advertises, and the RFC limits on how often. */
import { describe, expect, it } from 'vitest';

import { guestLinkIdentity } from '../../../src/core/guest-link-identity.js';
import {
  checkRaContent, checkRaTiming, DEFAULT_RA_LIFETIMES, DEFAULT_RA_TIMING, gatewayNeighborAdvertisement,
  GuestRaConfigError, guestRouterAdvertisement, nextUnsolicitedDelayMs, type GuestRaContent,
} from '../../../src/core/guest-router-advertisement.js';
import { formatIpv6, formatPrefix, parseIpv6, parsePrefix } from '../../../src/wire/ipv6.js';
import { formatMac } from '../../../src/wire/mac.js';
import { decodeNdMessage, encodeNdMessage, findNdOption, Icmpv6Type, NdOptionType, RouterPreference } from '../../../src/wire/nd.js';

const id = guestLinkIdentity('g1@example.net');
const content: GuestRaContent = {
  prefixes: [parsePrefix('2001:db8:100::/64'), parsePrefix('2001:db8:1000::/48')],
  mtu: 1460,
  ...DEFAULT_RA_LIFETIMES,
  dns: { servers: [parseIpv6('2001:db8::53')], lifetimeSec: 600 },
  routes: [{ prefix: parsePrefix('2001:db8:200::/48'), preference: RouterPreference.High, lifetimeSec: 1800 }],
};

describe('guestRouterAdvertisement', () => {
  const ra = guestRouterAdvertisement(id, content);

  it('is a default router for 1800 s, no DHCPv6, medium preference', () => {
    expect(ra).toMatchObject({
      type: Icmpv6Type.RouterAdvertisement, curHopLimit: 64, routerLifetimeSec: 1800, preference: RouterPreference.Medium,
      flags: { managed: false, otherConfig: false, homeAgent: false }, reachableTimeMs: 0, retransTimerMs: 0,
    });
  });

  it('carries the derived MAC, MTU 1460, each MNP (A only on the /64), RDNSS and the route', () => {
    expect(formatMac(findNdOption(ra, NdOptionType.SourceLinkLayerAddress)!.address)).toBe('02:d7:31:be:cd:c4');
    expect(findNdOption(ra, NdOptionType.Mtu)!.mtu).toBe(1460);
    const pios = ra.options.filter((o) => o.type === NdOptionType.PrefixInformation);
    expect(pios.map((p) => [formatPrefix(p.prefix), p.onLink, p.autonomous, p.validLifetimeSec, p.preferredLifetimeSec])).toEqual([
      ['2001:db8:100::/64', true, true, 86400, 14400],
      ['2001:db8:1000::/48', true, false, 86400, 14400],
    ]);
    expect(findNdOption(ra, NdOptionType.RecursiveDnsServer)!.servers.map(formatIpv6)).toEqual(['2001:db8::53']);
    expect(formatPrefix(findNdOption(ra, NdOptionType.RouteInformation)!.prefix)).toBe('2001:db8:200::/48');
  });

  it('encodes and decodes unchanged', () => {
    const back = decodeNdMessage(encodeNdMessage(ra));
    expect(back.ok && back.value).toEqual(ra);
  });
});

describe('gatewayNeighborAdvertisement', () => {
  it('R=1 S=0 O=1 with the derived MAC as TLLA', () => {
    const na = gatewayNeighborAdvertisement(id, id.linkLocal);
    expect(na.flags).toEqual({ router: true, solicited: false, override: true });
    expect(formatIpv6(na.target)).toBe('fe80::d7:31ff:febe:cdc4');
    expect(formatMac(findNdOption(na, NdOptionType.TargetLinkLayerAddress)!.address)).toBe('02:d7:31:be:cd:c4');
  });
});

describe('timing', () => {
  it('defaults are valid; the random interval stays within [Min, Max]RtrAdvInterval', () => {
    expect(() => checkRaTiming(DEFAULT_RA_TIMING, 1800)).not.toThrow();
    expect(nextUnsolicitedDelayMs(DEFAULT_RA_TIMING, () => 0)).toBe(3000);
    expect(nextUnsolicitedDelayMs(DEFAULT_RA_TIMING, () => 0.999999)).toBe(10_000);
    expect(nextUnsolicitedDelayMs(DEFAULT_RA_TIMING, () => 0.5)).toBe(6500);
  });

  it.each([
    ['MaxRtrAdvInterval below 70 ms (RFC 6275 §7.5)', { minIntervalMs: 30, maxIntervalMs: 60, minDelayBetweenRasMs: 30 }, 1800],
    ['MaxRtrAdvInterval above 1800 s', { minIntervalMs: 3000, maxIntervalMs: 1_800_001, minDelayBetweenRasMs: 100 }, 1800],
    ['MinRtrAdvInterval above 0.75 × Max', { minIntervalMs: 8000, maxIntervalMs: 10_000, minDelayBetweenRasMs: 100 }, 1800],
    ['MinRtrAdvInterval below 30 ms', { minIntervalMs: 20, maxIntervalMs: 100, minDelayBetweenRasMs: 100 }, 1800],
    ['MinDelayBetweenRAs below 30 ms', { minIntervalMs: 3000, maxIntervalMs: 10_000, minDelayBetweenRasMs: 10 }, 1800],
    ['router lifetime below MaxRtrAdvInterval', DEFAULT_RA_TIMING, 5],
    ['router lifetime above 9000 s', DEFAULT_RA_TIMING, 9001],
  ])('refuses %s', (_name, timing, lifetime) => {
    expect(() => checkRaTiming(timing, lifetime)).toThrow(GuestRaConfigError);
  });

  it('accepts the fastest RFC 6275 timing and a router lifetime of 0', () => {
    expect(() => checkRaTiming({ minIntervalMs: 30, maxIntervalMs: 70, minDelayBetweenRasMs: 30 }, 0)).not.toThrow();
  });
});

describe('content checks', () => {
  it.each([
    ['no prefix', { ...content, prefixes: [] }],
    ['MTU below 1280', { ...content, mtu: 1279 }],
    ['preferred > valid', { ...content, preferredLifetimeSec: 2, validLifetimeSec: 1 }],
    ['RDNSS without servers', { ...content, dns: { servers: [], lifetimeSec: 1 } }],
  ])('refuses %s', (_name, c) => {
    expect(() => checkRaContent(c)).toThrow(GuestRaConfigError);
  });
});
