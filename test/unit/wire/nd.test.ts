/**
 * Neighbor Discovery codec: captured vectors (Linux 6.18 kernel and radvd 2.19, on veths in
 * namespaces), round trips with edge values, malformed input, a seeded fuzz run, the RFC 4861
 * reception checks, and a cross-check with tshark's icmpv6 dissector.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { WireError } from '../../../src/wire/errors.js';
import { formatIpv6, formatPrefix, parseIpv6, parsePrefix } from '../../../src/wire/ipv6.js';
import { formatMac, parseMac } from '../../../src/wire/mac.js';
import {
  ALL_NODES, decodeNdMessage, encodeNdMessage, findNdOption, Icmpv6Type, INFINITE_LIFETIME, IPPROTO_ICMPV6,
  ND_HOP_LIMIT, NdOptionType, ndReceptionProblem, RouterPreference, solicitedNodeMulticast,
  type NdMessage, type PrefixInformationOption, type RouterAdvertisement,
} from '../../../src/wire/nd.js';
import { ipv6Packet, pcapFile } from '../../../src/wire/pcap.js';
import { mulberry32, randInt } from '../../helpers/prng.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** The vectors carry the kernel's checksum; the codec leaves it zero. */
const zeroChecksum = (b: Uint8Array): Uint8Array => { const c = b.slice(); c[2] = 0; c[3] = 0; return c; };

function decoded(bytes: Uint8Array): NdMessage {
  const r = decodeNdMessage(bytes);
  if (!r.ok) throw r.error;
  return r.value;
}

/** Captured on a veth: A = 02:00:00:00:0a:01 (forwarding, radvd), B = 02:00:00:00:0b:01 (host). */
const VECTORS = {
  /** B's kernel, Router Solicitation with SLLA. */
  rs: '8500652c000000000101020000000b01',
  /** B's kernel, address resolution: NS for fe80::ff:fe00:a01 with SLLA. */
  ns: '8700529900000000fe80000000000000000000fffe000a010101020000000b01',
  /** A's kernel, DAD probe (from ::) with a Nonce option (RFC 7527, type 14: unknown to us). */
  nsDad: '87002c5500000000fe80000000000000000000fffe000a010e01b3239261e941',
  /** A's kernel answering B: R S O set (A forwards), TLLA. */
  na: '8800721ce0000000fe80000000000000000000fffe000a010201020000000a01',
  /**
   * radvd's final RA on exit (router lifetime 0): hop limit 64, O, Prf high; PIO 2001:db8:100::/64
   * L A 86400/14400; RIO 2001:db8:200::/48 low, lifetime 0, sent with Length 3; RDNSS ::53 ::54,
   * lifetime 0; MTU 1460; SLLA.
   */
  ra: `8600318e404800000000000000000000
       030440c000015180000038400000000020010db8010000000000000000000000
       180330180000000020010db8020000000000000000000000
       190500000000000020010db800000000000000000000005320010db8000000000000000000000054
       05010000000005b4
       0101020000000a01`,
};

describe('captured vectors decode', () => {
  it('Router Solicitation', () => {
    const rs = decoded(hex(VECTORS.rs));
    expect(rs.type).toBe(Icmpv6Type.RouterSolicitation);
    expect(formatMac(findNdOption(rs, NdOptionType.SourceLinkLayerAddress)!.address)).toBe('02:00:00:00:0b:01');
  });

  it('Neighbor Solicitation, and a DAD probe with an unknown option kept as bytes', () => {
    const ns = decoded(hex(VECTORS.ns));
    expect(ns.type === Icmpv6Type.NeighborSolicitation && formatIpv6(ns.target)).toBe('fe80::ff:fe00:a01');
    const dad = decoded(hex(VECTORS.nsDad));
    expect(dad.options).toEqual([{ type: 'unknown', code: 14, data: hex('b3239261e941') }]);
  });

  it('Neighbor Advertisement from a router', () => {
    const na = decoded(hex(VECTORS.na));
    if (na.type !== Icmpv6Type.NeighborAdvertisement) throw new Error('not an NA');
    expect(na.flags).toEqual({ router: true, solicited: true, override: true });
    expect(formatMac(findNdOption(na, NdOptionType.TargetLinkLayerAddress)!.address)).toBe('02:00:00:00:0a:01');
  });

  it("radvd's Router Advertisement, every option", () => {
    const ra = decoded(hex(VECTORS.ra)) as RouterAdvertisement;
    expect(ra).toMatchObject({
      type: Icmpv6Type.RouterAdvertisement, curHopLimit: 64, preference: RouterPreference.High,
      flags: { managed: false, otherConfig: true, homeAgent: false },
      routerLifetimeSec: 0, reachableTimeMs: 0, retransTimerMs: 0,
    });
    expect(ra.otherFlagBits).toBeUndefined();
    const pio = findNdOption(ra, NdOptionType.PrefixInformation)!;
    expect([formatPrefix(pio.prefix), pio.onLink, pio.autonomous, pio.routerAddress, pio.validLifetimeSec, pio.preferredLifetimeSec])
      .toEqual(['2001:db8:100::/64', true, true, false, 86400, 14400]);
    const rio = findNdOption(ra, NdOptionType.RouteInformation)!;
    expect([formatPrefix(rio.prefix), rio.preference, rio.lifetimeSec]).toEqual(['2001:db8:200::/48', RouterPreference.Low, 0]);
    const rdnss = findNdOption(ra, NdOptionType.RecursiveDnsServer)!;
    expect(rdnss.servers.map(formatIpv6)).toEqual(['2001:db8::53', '2001:db8::54']);
    expect(findNdOption(ra, NdOptionType.Mtu)!.mtu).toBe(1460);
    expect(formatMac(findNdOption(ra, NdOptionType.SourceLinkLayerAddress)!.address)).toBe('02:00:00:00:0a:01');
  });

  it('re-encodes byte for byte (checksum zero), except the RIO which we send with the minimal Length 2', () => {
    for (const v of [VECTORS.rs, VECTORS.ns, VECTORS.nsDad, VECTORS.na]) {
      expect(toHex(encodeNdMessage(decoded(hex(v))))).toBe(toHex(zeroChecksum(hex(v))));
    }
    const ra = decoded(hex(VECTORS.ra));
    const again = encodeNdMessage(ra);
    expect(again.length).toBe(hex(VECTORS.ra).length - 8);
    expect(decoded(again)).toEqual(ra);
  });
});

const MAC = parseMac('02:d7:31:be:cd:c4');
const fullRa: RouterAdvertisement = {
  type: Icmpv6Type.RouterAdvertisement,
  curHopLimit: 255,
  flags: { managed: true, otherConfig: true, homeAgent: true },
  preference: RouterPreference.Low,
  otherFlagBits: 0x04, // RFC 4389 Proxy
  routerLifetimeSec: 0xffff,
  reachableTimeMs: 0xffff_ffff,
  retransTimerMs: 1,
  options: [
    { type: NdOptionType.SourceLinkLayerAddress, address: MAC },
    { type: NdOptionType.Mtu, mtu: 1460 },
    {
      type: NdOptionType.PrefixInformation, prefix: parsePrefix('2001:db8:100::/64'), onLink: true, autonomous: true,
      routerAddress: false, validLifetimeSec: INFINITE_LIFETIME, preferredLifetimeSec: 0,
    },
    {
      type: NdOptionType.PrefixInformation, prefix: parsePrefix('2001:db8:101:8000::/49'), onLink: false, autonomous: false,
      routerAddress: true, validLifetimeSec: 1, preferredLifetimeSec: 1,
    },
    { type: NdOptionType.RouteInformation, prefix: parsePrefix('::/0'), preference: RouterPreference.High, lifetimeSec: 1800 },
    { type: NdOptionType.RouteInformation, prefix: parsePrefix('2001:db8:200::/48'), preference: RouterPreference.Medium, lifetimeSec: 0 },
    { type: NdOptionType.RouteInformation, prefix: parsePrefix('2001:db8:300::1:0/112'), preference: RouterPreference.Low, lifetimeSec: INFINITE_LIFETIME },
    { type: NdOptionType.RecursiveDnsServer, lifetimeSec: 600, servers: [parseIpv6('2001:db8::53')] },
    { type: 'unknown', code: 31, data: hex('0000 00000258 03636f6d00000000') }, // DNSSL "com", kept as bytes
  ],
};

describe('round trips', () => {
  const messages: NdMessage[] = [
    fullRa,
    { ...fullRa, flags: { managed: false, otherConfig: false, homeAgent: false }, preference: RouterPreference.Medium, otherFlagBits: undefined, options: [] },
    { type: Icmpv6Type.RouterSolicitation, options: [] },
    { type: Icmpv6Type.RouterSolicitation, options: [{ type: NdOptionType.SourceLinkLayerAddress, address: MAC }] },
    { type: Icmpv6Type.NeighborSolicitation, target: parseIpv6('2001:db8:100::1'), options: [] },
    {
      type: Icmpv6Type.NeighborAdvertisement, flags: { router: true, solicited: false, override: true }, target: parseIpv6('fe80::1'),
      options: [{ type: NdOptionType.TargetLinkLayerAddress, address: MAC }],
    },
    { type: Icmpv6Type.NeighborAdvertisement, flags: { router: false, solicited: true, override: false }, target: parseIpv6('::1'), options: [] },
  ];

  it.each(messages.map((m, i) => [i, m] as const))('message %i: decode(encode(m)) equals m, length a multiple of 8', (_i, m) => {
    const bytes = encodeNdMessage(m);
    expect(bytes.length % 8).toBe(0);
    expect(bytes[2]! | bytes[3]!).toBe(0);
    const back = decoded(bytes);
    const expected = m.type === Icmpv6Type.RouterAdvertisement && m.otherFlagBits === undefined ? (({ otherFlagBits: _o, ...rest }) => rest)(m) : m;
    expect(back).toEqual(expected);
  });

  it('RIO uses Length 1, 2 or 3 by prefix length (RFC 4191 §2.3); prefixes lose their host bits', () => {
    const rio = (len: number): Uint8Array => encodeNdMessage({
      ...fullRa, otherFlagBits: undefined, options: [
        { type: NdOptionType.RouteInformation, prefix: { addr: parseIpv6('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'), len }, preference: 0, lifetimeSec: 0 },
      ],
    });
    expect([rio(0), rio(1), rio(64), rio(65), rio(128)].map((b) => b[17])).toEqual([1, 2, 2, 3, 3]);
    const back = decoded(rio(48)) as RouterAdvertisement;
    expect(formatPrefix(findNdOption(back, NdOptionType.RouteInformation)!.prefix)).toBe('2001:db8:ffff::/48');
  });
});

describe('malformed input gives a WireError, never a throw', () => {
  const ra = encodeNdMessage(fullRa);
  const cases: [string, Uint8Array, string][] = [
    ['empty', new Uint8Array(0), 'truncated'],
    ['ICMPv6 header cut', hex('8600'), 'truncated'],
    ['not ND (echo request)', hex('8000000000000000'), 'bad-field'],
    ['code 1', hex('8501000000000000'), 'bad-field'],
    ['RA shorter than 16', ra.subarray(0, 12), 'too-short-for-type'],
    ['NS shorter than 24', hex(VECTORS.ns).subarray(0, 20), 'too-short-for-type'],
    ['option of length 0', hex('85000000000000000100000000000000'), 'bad-option-length'],
    ['option runs past the end', hex('850000000000000001020000000000000000'), 'truncated'],
    ['one stray octet after the options', hex('8500000000000000 0101020000000b01 ff'), 'truncated'],
    ['PIO with length 3', hex(`86000000000000000000000000000000 0303 ${'00'.repeat(22)}`), 'bad-option-length'],
    ['PIO prefix length 129', hex(`86000000000000000000000000000000 0304814000000000000000000000000020010db8010000000000000000000000`), 'bad-field'],
    ['MTU with length 2', hex('86000000000000000000000000000000 05020000000005b40000000000000000'), 'bad-option-length'],
    ['RDNSS with length 4', hex(`86000000000000000000000000000000 1904000000000000 ${'00'.repeat(24)}`), 'bad-field'],
    ['RDNSS with length 1', hex('86000000000000000000000000000000 1901000000000000'), 'bad-option-length'],
    ['RIO /64 with length 1', hex('86000000000000000000000000000000 1801400000000000'), 'bad-field'],
    ['RIO /65 with length 2', hex('86000000000000000000000000000000 180241000000000020010db800000000'), 'bad-field'],
    ['RIO with length 4', hex(`86000000000000000000000000000000 1804000000000000 ${'00'.repeat(24)}`), 'bad-option-length'],
    ['NS for a multicast target', hex('8700000000000000ff020000000000000000000000000001'), 'bad-field'],
  ];
  it.each(cases)('%s → %s', (_name, bytes, reason) => {
    const r = decodeNdMessage(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.reason).toBe(reason);
  });

  it('fuzz: random bytes and mutations of valid messages (seeded)', () => {
    const rand = mulberry32(0x4e44_2026);
    const seeds = [ra, ...Object.values(VECTORS).map(hex)];
    for (let i = 0; i < 50_000; i++) {
      let input: Uint8Array;
      if (i % 3 === 0) {
        input = Uint8Array.from({ length: randInt(rand, 0, 96) }, () => randInt(rand, 0, 255));
        input[0] = randInt(rand, 133, 136);
        if (input.length > 1) input[1] = 0;
      } else {
        input = seeds[i % seeds.length]!.slice(0, randInt(rand, 0, 200));
        for (let k = randInt(rand, 1, 4); k > 0 && input.length > 0; k--) input[randInt(rand, 0, input.length - 1)] = randInt(rand, 0, 255);
      }
      const r = decodeNdMessage(input);
      if (r.ok) expect(decodeNdMessage(encodeNdMessage(r.value)).ok).toBe(true);
      else expect(r.error.detail).not.toMatch(/decoder fault/);
    }
  });
});

describe('encoding refuses what no peer could read', () => {
  const bad: [string, NdMessage][] = [
    ['router lifetime 65536', { ...fullRa, routerLifetimeSec: 65536 }],
    ['hop limit 256', { ...fullRa, curHopLimit: 256 }],
    ['negative reachable time', { ...fullRa, reachableTimeMs: -1 }],
    ['otherFlagBits overlapping M', { ...fullRa, otherFlagBits: 0x80 }],
    ['preference 4', { ...fullRa, preference: 4 as RouterPreference }],
    ['MTU 2^32', { ...fullRa, otherFlagBits: undefined, options: [{ type: NdOptionType.Mtu, mtu: 2 ** 32 }] }],
    ['PIO /129', { ...fullRa, otherFlagBits: undefined, options: [{ ...(fullRa.options[2] as PrefixInformationOption), prefix: { addr: parseIpv6('::'), len: 129 } }] }],
    ['RDNSS without servers', { ...fullRa, otherFlagBits: undefined, options: [{ type: NdOptionType.RecursiveDnsServer, lifetimeSec: 1, servers: [] }] }],
    ['an option over 2040 octets', { type: Icmpv6Type.RouterSolicitation, options: [{ type: 'unknown', code: 99, data: new Uint8Array(2040) }] }],
    ['NS for a multicast target', { type: Icmpv6Type.NeighborSolicitation, target: ALL_NODES, options: [] }],
  ];
  it.each(bad)('%s', (_name, msg) => {
    expect(() => encodeNdMessage(msg)).toThrow(WireError);
  });
});

describe('reception checks that need the IPv6 header (RFC 4861 §6.1, §7.1)', () => {
  const ll = parseIpv6('fe80::1');
  const rs = decoded(hex(VECTORS.rs));
  const ra = decoded(encodeNdMessage(fullRa));
  const dad = decoded(hex(VECTORS.nsDad));
  const na = decoded(hex(VECTORS.na));
  it('hop limit must be 255 when known', () => {
    expect(ndReceptionProblem(rs, { src: ll, dst: parseIpv6('ff02::2'), hopLimit: 64 })).toMatch(/hop limit 64/);
    expect(ndReceptionProblem(rs, { src: ll, dst: parseIpv6('ff02::2'), hopLimit: ND_HOP_LIMIT })).toBeNull();
    expect(ndReceptionProblem(rs, { src: ll, dst: parseIpv6('ff02::2') })).toBeNull();
  });
  it('RS from :: must not carry a source link-layer address', () => {
    expect(ndReceptionProblem(rs, { src: parseIpv6('::'), dst: parseIpv6('ff02::2') })).toMatch(/unspecified/);
  });
  it('RA source must be link-local', () => {
    expect(ndReceptionProblem(ra, { src: parseIpv6('2001:db8::1'), dst: ALL_NODES })).toMatch(/link-local/);
    expect(ndReceptionProblem(ra, { src: ll, dst: ALL_NODES })).toBeNull();
  });
  it('DAD probes go to a solicited-node group', () => {
    const target = parseIpv6('fe80::ff:fe00:a01');
    expect(formatIpv6(solicitedNodeMulticast(target))).toBe('ff02::1:ff00:a01');
    expect(ndReceptionProblem(dad, { src: parseIpv6('::'), dst: solicitedNodeMulticast(target) })).toBeNull();
    expect(ndReceptionProblem(dad, { src: parseIpv6('::'), dst: ALL_NODES })).toMatch(/solicited-node/);
  });
  it('a solicited NA must not go to a multicast address', () => {
    expect(ndReceptionProblem(na, { src: ll, dst: ALL_NODES })).toMatch(/solicited flag/);
    expect(ndReceptionProblem(na, { src: ll, dst: parseIpv6('fe80::2') })).toBeNull();
  });
});

describe('tshark decodes what we encode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'roam6-nd-tshark-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const SRC = parseIpv6('fe80::d7:31ff:febe:cdc4');

  function tshark(messages: NdMessage[], fields: string[]): string[][] {
    const packets = messages.map((m) => ipv6Packet(SRC, ALL_NODES, IPPROTO_ICMPV6, encodeNdMessage(m), ND_HOP_LIMIT));
    const file = join(dir, `nd-${messages.length}-${fields.length}.pcap`);
    writeFileSync(file, pcapFile(packets));
    const out = execFileSync('tshark', ['-n', '-r', file, '-T', 'fields', '-E', 'separator=|', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f])], {
      encoding: 'utf8',
    });
    return out.trimEnd().split('\n').map((l) => l.split('|'));
  }
  const flag = (s: string | undefined): boolean => s === '1' || s === 'True';

  it('RA: header fields and flags', () => {
    const [row] = tshark([fullRa], [
      'icmpv6.type', 'icmpv6.nd.ra.cur_hop_limit', 'icmpv6.nd.ra.flag.m', 'icmpv6.nd.ra.flag.o', 'icmpv6.nd.ra.flag.h',
      'icmpv6.nd.ra.flag.prf', 'icmpv6.nd.ra.flag.p', 'icmpv6.nd.ra.router_lifetime', 'icmpv6.nd.ra.reachable_time', 'icmpv6.nd.ra.retrans_timer',
    ]);
    expect(row).toBeDefined();
    const r = row!;
    expect(r[0]).toBe('134');
    expect(Number(r[1])).toBe(255);
    expect([flag(r[2]), flag(r[3]), flag(r[4])]).toEqual([true, true, true]);
    expect(Number(r[5])).toBe(RouterPreference.Low);
    expect(flag(r[6])).toBe(true);
    expect(r.slice(7).map(Number)).toEqual([0xffff, 0xffff_ffff, 1]);
  });

  it('RA: options (SLLA, MTU, PIO ×2, RIO ×3, RDNSS) in order', () => {
    const [row] = tshark([fullRa], [
      'icmpv6.opt.type', 'icmpv6.opt.src_linkaddr', 'icmpv6.opt.mtu', 'icmpv6.opt.prefix.length', 'icmpv6.opt.prefix.flag.l',
      'icmpv6.opt.prefix.flag.a', 'icmpv6.opt.prefix.flag.r', 'icmpv6.opt.prefix.valid_lifetime', 'icmpv6.opt.prefix.preferred_lifetime',
      'icmpv6.opt.prefix', 'icmpv6.opt.route_info.flag.route_preference', 'icmpv6.opt.route_lifetime', 'icmpv6.opt.rdnss.lifetime', 'icmpv6.opt.rdnss',
    ]);
    const r = row!;
    expect(r[0]).toBe('1,5,3,3,24,24,24,25,31');
    expect(r[1]).toBe('02:d7:31:be:cd:c4');
    expect(Number(r[2])).toBe(1460);
    // tshark lists the PIO prefix lengths, then the RIO ones, in one field.
    expect(r[3]).toBe('64,49,0,48,112');
    expect(r[4]!.split(',').map(flag)).toEqual([true, false]);
    expect(r[5]!.split(',').map(flag)).toEqual([true, false]);
    expect(r[6]!.split(',').map(flag)).toEqual([false, true]);
    expect(r[7]).toBe(`${INFINITE_LIFETIME},1`);
    expect(r[8]).toBe('0,1');
    // The /0 route carries no prefix octets, so tshark shows no prefix for it.
    expect(r[9]).toBe('2001:db8:100::,2001:db8:101:8000::,2001:db8:200::,2001:db8:300::1:0');
    expect(r[10]!.split(',').map(Number)).toEqual([RouterPreference.High, RouterPreference.Medium, RouterPreference.Low]);
    expect(r[11]).toBe(`1800,0,${INFINITE_LIFETIME}`);
    expect(Number(r[12])).toBe(600);
    expect(r[13]).toBe('2001:db8::53');
  });

  it('RS, NS and NA', () => {
    const rows = tshark([
      { type: Icmpv6Type.RouterSolicitation, options: [{ type: NdOptionType.SourceLinkLayerAddress, address: MAC }] },
      { type: Icmpv6Type.NeighborSolicitation, target: parseIpv6('2001:db8:100::1'), options: [{ type: NdOptionType.SourceLinkLayerAddress, address: MAC }] },
      {
        type: Icmpv6Type.NeighborAdvertisement, flags: { router: true, solicited: false, override: true }, target: parseIpv6('2001:db8:100::1'),
        options: [{ type: NdOptionType.TargetLinkLayerAddress, address: MAC }],
      },
    ], ['icmpv6.type', 'icmpv6.opt.src_linkaddr', 'icmpv6.nd.ns.target_address', 'icmpv6.nd.na.target_address',
      'icmpv6.nd.na.flag.r', 'icmpv6.nd.na.flag.s', 'icmpv6.nd.na.flag.o', 'icmpv6.opt.target_linkaddr']);
    expect(rows.map((r) => r[0])).toEqual(['133', '135', '136']);
    expect(rows[0]![1]).toBe('02:d7:31:be:cd:c4');
    expect(rows[1]![2]).toBe('2001:db8:100::1');
    const na = rows[2]!;
    expect(na[3]).toBe('2001:db8:100::1');
    expect([flag(na[4]), flag(na[5]), flag(na[6])]).toEqual([true, false, true]);
    expect(na[7]).toBe('02:d7:31:be:cd:c4');
  });
});
