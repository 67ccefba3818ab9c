/**
 * Golden vectors from protocol-notes §1.11 (verified there with scapy 2.5 and an independent
 * checksum implementation, decoded by tshark 4.0.17), byte for byte in both directions.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix, formatPrefix } from '../../../src/wire/ipv6.js';
import {
  MhOptionType,
  MhType,
  buFlags,
  baFlags,
  decodeMobilityHeader,
  encodeMobilityHeader,
  mhChecksum,
  verifyMhChecksum,
  type BindingUpdate,
  type BindingAck,
  type DecodedMessage,
} from '../../../src/wire/mh/index.js';
import { authOptionFor, mnHaAuthenticator, verifyMnHa } from '../../../src/security/mn-ha-auth.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const HA = parseIpv6('2001:db8:1::1');
const COA = parseIpv6('2001:db8:2::10');
const HOA = parseIpv6('2001:db8:1::10');

function decoded(bytes: Uint8Array): DecodedMessage {
  const r = decodeMobilityHeader(bytes);
  if (!r.ok) throw r.error;
  return r.value;
}

describe('protocol-notes §1.11 golden vectors', () => {
  it('BU, seq 0x1234, A|H|R, lifetime 0x100, one MNP /48, checksum with src = HoA (HAO present)', () => {
    const wire = hex('3b03050057a01234c40001000612003020010db8010000000000000000000000');
    const bu: BindingUpdate = {
      type: MhType.BindingUpdate,
      seq: 0x1234,
      flags: buFlags({ ack: true, home: true, router: true }),
      lifetimeUnits: 0x100,
      options: [{ type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:100::/48') }],
    };
    const ctx = { src: COA, dst: HA, homeAddressOption: HOA };
    expect(toHex(encodeMobilityHeader(bu, { checksum: ctx }))).toBe(toHex(wire));
    expect(decoded(wire)).toEqual(bu);
    expect(verifyMhChecksum(wire, ctx)).toBe(true);
    // Using the CoA instead of the HoA gives 0x579f, as the notes say.
    expect(mhChecksum(wire, { src: COA, dst: HA })).toBe(0x579f);
  });

  it('BU with two /64 MNPs (seq 1): PadN(4) between them keeps 8n+4', () => {
    const wire = hex(
      '3b06050033980001c40001000612004020010db8010000010000000000000000010200000612004020010db8010000020000000000000000',
    );
    const bu: BindingUpdate = {
      type: MhType.BindingUpdate,
      seq: 1,
      flags: buFlags({ ack: true, home: true, router: true }),
      lifetimeUnits: 0x100,
      options: [
        { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:100:1::/64') },
        { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:100:2::/64') },
      ],
    };
    expect(toHex(encodeMobilityHeader(bu, { checksum: { src: COA, dst: HA, homeAddressOption: HOA } }))).toBe(toHex(wire));
    const d = decoded(wire) as BindingUpdate;
    expect(d.options.map((o) => ('prefix' in o ? formatPrefix(o.prefix) : '?'))).toEqual([
      '2001:db8:100:1::/64',
      '2001:db8:100:2::/64',
    ]);
  });

  it('BA status 0, R, seq 0x1234, lifetime 0x100, checksum with dst = HoA (RH2)', () => {
    const wire = hex('3b0106004e6c00401234010001020000');
    const ba: BindingAck = {
      type: MhType.BindingAck,
      status: 0,
      flags: baFlags({ router: true }),
      seq: 0x1234,
      lifetimeUnits: 0x100,
      options: [],
    };
    const ctx = { src: HA, dst: COA, type2RoutingHeader: HOA };
    expect(toHex(encodeMobilityHeader(ba, { checksum: ctx }))).toBe(toHex(wire));
    expect(decoded(wire)).toEqual(ba);
    expect(verifyMhChecksum(wire, ctx)).toBe(true);
  });

  it('BU + MNP + MN-HA auth (HMAC-SHA1-96, key 00..0f, SPI 256): auth last, no trailing pad', () => {
    const wire = hex(
      '3b06050043da1234c40001000612003020010db8010000000000000000000000010300000009110100000100ca9ddfa4d07cb6cb982f36e3',
    );
    const sa = { spi: 256, algorithm: 'hmac-sha1-96' as const, key: hex('000102030405060708090a0b0c0d0e0f') };
    const bu: BindingUpdate = {
      type: MhType.BindingUpdate,
      seq: 0x1234,
      flags: buFlags({ ack: true, home: true, router: true }),
      lifetimeUnits: 0x100,
      options: [{ type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:100::/48') }, authOptionFor(sa)],
    };
    const out = encodeMobilityHeader(bu, {
      authenticate: (mh, covered) => mnHaAuthenticator(sa, COA, HOA, mh, covered),
      checksum: { src: COA, dst: HA, homeAddressOption: HOA },
    });
    expect(toHex(out)).toBe(toHex(wire));

    const d = decoded(wire) as BindingUpdate;
    const auth = d.options[1];
    expect(auth).toMatchObject({ type: MhOptionType.MobilityMessageAuthentication, subtype: 1, spi: 256, coveredLength: 44 });
    if (auth?.type !== MhOptionType.MobilityMessageAuthentication) throw new Error('no auth');
    expect(toHex(auth.authenticator)).toBe('ca9ddfa4d07cb6cb982f36e3');
    expect(verifyMnHa(sa, COA, HOA, wire, auth)).toBe(true);
    // Any change to the covered data, the addresses or the key breaks it.
    expect(verifyMnHa(sa, HOA, HOA, wire, auth)).toBe(false);
    expect(verifyMnHa({ ...sa, key: hex('ff0102030405060708090a0b0c0d0e0f') }, COA, HOA, wire, auth)).toBe(false);
    const tampered = wire.slice();
    tampered[7] = 0x35; // seq 0x1235
    const t = decoded(tampered) as BindingUpdate;
    expect(verifyMnHa(sa, COA, HOA, tampered, t.options[1] as typeof auth)).toBe(false);
    // The checksum is not covered: a different checksum value verifies the same.
    const recsum = wire.slice();
    recsum[4] = 0;
    recsum[5] = 0;
    expect(verifyMnHa(sa, COA, HOA, recsum, auth)).toBe(true);
  });
});

describe('layout rules', () => {
  it('BU with no options is 16 octets with PadN(2), Header Len 1', () => {
    const out = encodeMobilityHeader({ type: MhType.BindingUpdate, seq: 7, flags: buFlags(), lifetimeUnits: 0, options: [] });
    expect(toHex(out)).toBe('3b01050000000007000000000' + '1020000');
  });

  it('BRR without options is 8 octets, BE without options 24 octets, no padding', () => {
    expect(toHex(encodeMobilityHeader({ type: MhType.BindingRefreshRequest, options: [] }))).toBe('3b00000000000000');
    const be = encodeMobilityHeader({ type: MhType.BindingError, status: 2, homeAddress: HOA, options: [] });
    expect(be.length).toBe(24);
    expect(be[1]).toBe(2);
    expect(toHex(be.subarray(8))).toBe(toHex(HOA));
  });

  it('HMAC-SHA256-128 auth option also ends on an 8-octet boundary at 4n+1', () => {
    const sa = { spi: 300, algorithm: 'hmac-sha256-128' as const, key: new Uint8Array(32).fill(7) };
    const bu: BindingUpdate = {
      type: MhType.BindingUpdate,
      seq: 9,
      flags: buFlags({ ack: true, home: true, router: true, proxy: true }),
      lifetimeUnits: 100,
      options: [
        { type: MhOptionType.MobileNodeIdentifier, subtype: 1, identifier: new TextEncoder().encode('g1@roam6') },
        { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:100::/64') },
        authOptionFor(sa),
      ],
    };
    const out = encodeMobilityHeader(bu, { authenticate: (mh, c) => mnHaAuthenticator(sa, COA, COA, mh, c) });
    expect(out.length % 8).toBe(0);
    const d = decoded(out) as BindingUpdate;
    const auth = d.options[2];
    if (auth?.type !== MhOptionType.MobilityMessageAuthentication) throw new Error('no auth');
    expect(auth.coveredLength! % 4).toBe((1 + 7) % 4); // option at 4n+1, SPI ends 7 octets later
    expect(auth.coveredLength! - 7 + 2 + 5 + 16).toBe(out.length); // no trailing pad
    expect(verifyMnHa(sa, COA, COA, out, auth)).toBe(true);
  });

  it('rejects an auth option that is not last at encode time', () => {
    const sa = { spi: 256, algorithm: 'hmac-sha1-96' as const, key: new Uint8Array(16) };
    expect(() =>
      encodeMobilityHeader({
        type: MhType.BindingUpdate,
        seq: 1,
        flags: buFlags(),
        lifetimeUnits: 1,
        options: [authOptionFor(sa), { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8::/64') }],
      }),
    ).toThrow(/must be the last option/);
  });
});
