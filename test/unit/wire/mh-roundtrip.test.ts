/** Round-trip tables with edge values, and every malformed-input reason. */
import { describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix } from '../../../src/wire/ipv6.js';
import {
  MhOptionType,
  MhType,
  baFlags,
  buFlags,
  decodeMobilityHeader,
  encodeMobilityHeader,
  seqGreater,
  seqNext,
  lifetimeUnitsFromSec,
  lifetimeSecFromUnits,
  ntpFromUnixMs,
  unixMsFromNtp,
  pmipTimestampFromUnixMs,
  unixMsFromPmipTimestamp,
  type MobilityMessage,
  type MobilityOption,
  type WireErrorReason,
} from '../../../src/wire/mh/index.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const A1 = parseIpv6('2001:db8:a::2');
const ALL_OPTIONS: MobilityOption[] = [
  { type: MhOptionType.MobileNodeIdentifier, subtype: 1, identifier: new TextEncoder().encode('guest-1@example.net') },
  { type: MhOptionType.BindingRefreshAdvice, intervalUnits: 0xffff },
  { type: MhOptionType.AlternateCareOfAddress, address: A1 },
  { type: MhOptionType.NonceIndices, homeNonceIndex: 0, careOfNonceIndex: 0xffff },
  { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('::/0') },
  { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/128') },
  { type: MhOptionType.HomeNetworkPrefix, prefix: parsePrefix('2001:db8:100::/56') },
  { type: MhOptionType.HandoffIndicator, indicator: 5 },
  { type: MhOptionType.AccessTechnologyType, technology: 1 },
  { type: MhOptionType.MobilityMessageReplayProtection, timestamp: 0xffffffffffffffffn },
  { type: MhOptionType.Timestamp, timestamp: (1_700_000_000n << 16n) | 0x8000n },
  { type: 'unknown', code: 200, data: hex('deadbeef') },
  { type: 'unknown', code: 201, data: new Uint8Array(0) },
];

const MESSAGES: [string, MobilityMessage][] = [
  ['BU all flags, seq 0xffff, max lifetime', {
    type: MhType.BindingUpdate, seq: 0xffff, lifetimeUnits: 0xffff, options: [],
    flags: buFlags({ ack: true, home: true, linkLocal: true, key: true, map: true, router: true, proxy: true }),
  }],
  ['BU no flags, seq 0, dereg', { type: MhType.BindingUpdate, seq: 0, lifetimeUnits: 0, flags: buFlags(), options: [] }],
  ['BU with F/T/B/reserved bits kept', {
    type: MhType.BindingUpdate, seq: 1, lifetimeUnits: 1, flags: buFlags({ home: true }), otherFlagBits: 0x01ff, options: [],
  }],
  ['BU every option type', { type: MhType.BindingUpdate, seq: 42, lifetimeUnits: 100, flags: buFlags({ ack: true }), options: ALL_OPTIONS }],
  ['BA all flags, status 255', {
    type: MhType.BindingAck, status: 255, seq: 0x8000, lifetimeUnits: 0xffff, flags: baFlags({ key: true, router: true, proxy: true }),
    options: [{ type: MhOptionType.BindingRefreshAdvice, intervalUnits: 1 }],
  }],
  ['BA with reserved flag bits', { type: MhType.BindingAck, status: 135, seq: 7, lifetimeUnits: 0, flags: baFlags(), otherFlagBits: 0x1f, options: [] }],
  ['BA with BAD last', {
    type: MhType.BindingAck, status: 0, seq: 7, lifetimeUnits: 3, flags: baFlags(),
    options: [{ type: MhOptionType.BindingAuthorizationData, authenticator: hex('00112233445566778899aabb') }],
  }],
  ['BRR with options', { type: MhType.BindingRefreshRequest, options: ALL_OPTIONS.slice(0, 3) }],
  ['BE status 2', { type: MhType.BindingError, status: 2, homeAddress: A1, options: [] }],
  ['BE with MN-ID', { type: MhType.BindingError, status: 1, homeAddress: A1, options: ALL_OPTIONS.slice(0, 1) }],
];

describe('round trips', () => {
  it.each(MESSAGES)('%s: decode(encode(m)) = m and encode(decode(b)) = b', (_name, msg) => {
    const bytes = encodeMobilityHeader(msg);
    expect(bytes.length % 8).toBe(0);
    const r = decodeMobilityHeader(bytes);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toEqual(msg);
    expect(Buffer.from(encodeMobilityHeader(r.value)).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
  });

  it('keeps an unknown message type as bytes, and re-encodes it exactly', () => {
    const wire = hex('3b010c00000001000000000000000000'); // HA Switch (12), 16 octets
    const r = decodeMobilityHeader(wire);
    expect(r.ok && r.value.type === 'unknown' && r.value.code === 12).toBe(true);
    if (r.ok) expect(Buffer.from(encodeMobilityHeader(r.value)).equals(Buffer.from(wire))).toBe(true);
  });

  it('accepts non-canonical but valid padding (scapy autopad: Pad1 + auth at 4n+1 + trailing PadN)', () => {
    // BU fixed part (12), MNP 12..32, Pad1 at 32, auth at 33 (4n+1, 19 octets) to 52, PadN(4) to 56
    const wire = hex(
      '3b06050000001234c4000100' + '0612003020010db8010000000000000000000000' + '00' +
        '09110100000100' + '00'.repeat(12) + '01020000',
    );
    expect(wire.length).toBe(56);
    const r = decodeMobilityHeader(wire);
    expect(r.ok).toBe(true);
  });
});

/** A BU (seq 1, no flags) with these option octets, Pad1-filled to a multiple of 8. */
function bu(optionsHex: string): string {
  const body = '0001' + '0000' + '0000' + optionsHex;
  const total = Math.ceil((6 + body.length / 2) / 8) * 8;
  const pad = '00'.repeat(total - 6 - body.length / 2);
  return '3b' + (total / 8 - 1).toString(16).padStart(2, '0') + '05' + '00' + '0000' + body + pad;
}

describe('malformed input gives a typed WireError, never an exception', () => {
  const cases: [string, string, WireErrorReason][] = [
    ['empty', '', 'truncated'],
    ['6 octets', '3b0005000000', 'truncated'],
    ['wrong payload proto', '3a00000000000000', 'bad-payload-proto'],
    ['not a multiple of 8', '3b0000000000000000', 'not-multiple-of-8'],
    ['header length larger than the data', '3b01050000000000', 'truncated'],
    ['trailing bytes beyond header length', '3b000000000000000000000000000000', 'length-mismatch'],
    ['BU too short for its fixed part', '3b00050000000000', 'too-short-for-type'],
    ['BE too short for its fixed part', '3b01070000000000 0000000000000000', 'too-short-for-type'],
    ['option runs past the end', '3b01050000000001000000000108 0000', 'bad-option-length'],
    ['option header split at the end', '3b0105000000000100000000000006', 'not-multiple-of-8'],
    ['lone option type at the end', '3b01050000000001000000000000 0006', 'bad-option-length'],
    ['MNP with length 17', bu('0611003020010db8010000000000000000000000'), 'bad-option-length'],
    ['MNP misaligned (at 8n+5)', bu('00' + '0612003020010db8010000000000000000000000'), 'bad-alignment'],
    ['MNP prefix length 129', '3b03050000000001000000000612008120010db8010000000000000000000000', 'bad-field'],
    ['duplicate MN-ID', bu('0803016162' + '0803016162'), 'duplicate-option'],
    ['option after the auth option', '3b0305000000000100000000' + '0000000000' + '090701000001000102' + '0803016162' + '00', 'auth-not-last'],
    ['BRA with length 4', '3b01000000000000 0204000000000000', 'bad-option-length'],
  ];
  it.each(cases)('%s → %s', (_name, h, reason) => {
    const r = decodeMobilityHeader(hex(h));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.reason).toBe(reason);
      expect(r.error.message).toContain(reason);
    }
  });

  it('verifies the checksum when a pseudo-header is given', () => {
    const bu = encodeMobilityHeader(MESSAGES[0]![1], { checksum: { src: A1, dst: A1 } });
    expect(decodeMobilityHeader(bu, { checksum: { src: A1, dst: A1 } }).ok).toBe(true);
    const r = decodeMobilityHeader(bu, { checksum: { src: parseIpv6('2001:db8::1'), dst: A1 } });
    expect(!r.ok && r.error.reason).toBe('bad-checksum');
  });
});

describe('sequence numbers (RFC 6275 §9.5.1) and lifetimes', () => {
  it('compares modulo 2^16 with the RFC example (last = 15)', () => {
    for (const s of [0, 15, 32783, 65535]) expect(seqGreater(s, 15)).toBe(false);
    for (const s of [16, 32782]) expect(seqGreater(s, 15)).toBe(true);
    expect(seqGreater(0, 0xffff)).toBe(true);
    expect(seqGreater(0x7fff, 0)).toBe(true);
    expect(seqGreater(0x8000, 0)).toBe(false);
    expect(seqNext(0xffff)).toBe(0);
  });
  it('converts lifetimes in 4-second units, clamped', () => {
    expect(lifetimeUnitsFromSec(400)).toBe(100);
    expect(lifetimeUnitsFromSec(3)).toBe(0);
    expect(lifetimeUnitsFromSec(1e9)).toBe(0xffff);
    expect(lifetimeUnitsFromSec(-1)).toBe(0);
    expect(lifetimeSecFromUnits(0xffff)).toBe(262140);
  });
  it('keeps NTP (1900) and PMIPv6 (1970) timestamps apart', () => {
    const ms = 1_700_000_000_500;
    expect(Math.abs(unixMsFromNtp(ntpFromUnixMs(ms)) - ms)).toBeLessThan(1);
    expect(ntpFromUnixMs(0) >> 32n).toBe(2_208_988_800n);
    expect(pmipTimestampFromUnixMs(ms)).toBe((1_700_000_000n << 16n) | 0x8000n);
    expect(unixMsFromPmipTimestamp(pmipTimestampFromUnixMs(ms))).toBe(ms);
  });
});
