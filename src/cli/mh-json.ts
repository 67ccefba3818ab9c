/**
 * JSON view of Mobility Header messages for people and scripts (`roam6 mh decode|encode`).
 *
 * Flags by name, prefixes as addr/len, addresses in RFC 5952 text, lifetimes in units and
 * seconds, byte strings in hex, 64-bit timestamps as decimal strings plus a readable date.
 * `messageFromJson(messageToJson(m))` gives back `m`.
 */
import { formatIpv6, formatPrefix, tryParseIpv6, tryParsePrefix, type Ipv6Address, type Ipv6Prefix } from '../wire/ipv6.js';
import {
  BA_FLAG_BITS,
  BU_FLAG_BITS,
  BaStatus,
  MhOptionType,
  MhType,
  WireError,
  baFlags,
  buFlags,
  lifetimeSecFromUnits,
  optionName,
  unixMsFromNtp,
  unixMsFromPmipTimestamp,
  type BaFlagName,
  type BuFlagName,
  type DecodedMessage,
  type MobilityMessage,
  type MobilityOption,
  type UnknownMessage,
} from '../wire/mh/index.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const TYPE_NAMES: Record<number, string> = {
  [MhType.BindingRefreshRequest]: 'binding-refresh-request',
  [MhType.BindingUpdate]: 'binding-update',
  [MhType.BindingAck]: 'binding-ack',
  [MhType.BindingError]: 'binding-error',
};
const TYPE_CODES = Object.fromEntries(Object.entries(TYPE_NAMES).map(([k, v]) => [v, Number(k)]));

const OPTION_CODES: Record<string, number> = Object.fromEntries(
  Object.values(MhOptionType)
    .filter((v): v is number => typeof v === 'number')
    .map((code) => [optionName(code), code]),
);

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const lifetime = (units: number): JsonObject => ({ units, seconds: lifetimeSecFromUnits(units) });

function isoOrNull(ms: number): string | null {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : null;
}

function optionToJson(o: MobilityOption): JsonObject {
  if (o.type === 'unknown') return { type: optionName(o.code), code: o.code, data: hex(o.data) };
  const head: JsonObject = { type: optionName(o.type), code: o.type };
  switch (o.type) {
    case MhOptionType.BindingRefreshAdvice:
      return { ...head, interval: lifetime(o.intervalUnits) };
    case MhOptionType.AlternateCareOfAddress:
      return { ...head, address: formatIpv6(o.address) };
    case MhOptionType.NonceIndices:
      return { ...head, homeNonceIndex: o.homeNonceIndex, careOfNonceIndex: o.careOfNonceIndex };
    case MhOptionType.BindingAuthorizationData:
      return { ...head, authenticator: hex(o.authenticator) };
    case MhOptionType.MobileNetworkPrefix:
    case MhOptionType.HomeNetworkPrefix:
      return { ...head, prefix: formatPrefix(o.prefix) };
    case MhOptionType.MobileNodeIdentifier: {
      const text = new TextDecoder('utf-8', { fatal: false }).decode(o.identifier);
      return { ...head, subtype: o.subtype, identifier: text, identifierHex: hex(o.identifier) };
    }
    case MhOptionType.MobilityMessageAuthentication:
      return { ...head, subtype: o.subtype, spi: o.spi, authenticator: hex(o.authenticator) };
    case MhOptionType.MobilityMessageReplayProtection:
      return { ...head, timestamp: o.timestamp.toString(), time: isoOrNull(unixMsFromNtp(o.timestamp)) };
    case MhOptionType.HandoffIndicator:
      return { ...head, indicator: o.indicator };
    case MhOptionType.AccessTechnologyType:
      return { ...head, technology: o.technology };
    case MhOptionType.Timestamp:
      return { ...head, timestamp: o.timestamp.toString(), time: isoOrNull(unixMsFromPmipTimestamp(o.timestamp)) };
  }
}

function flagNames<T extends string>(bits: Record<T, number>, flags: Record<T, boolean>): string[] {
  return (Object.keys(bits) as T[]).filter((k) => flags[k]);
}

/** The JSON view of a decoded message. `bytes` adds length and checksum fields. */
export function messageToJson(m: DecodedMessage, bytes?: Uint8Array): JsonObject {
  const code = m.type === 'unknown' ? m.code : m.type;
  const head: JsonObject = { type: TYPE_NAMES[code] ?? `unknown(${code})`, typeCode: code };
  if (bytes) {
    head.length = bytes.length;
    head.checksum = `0x${(((bytes[4] ?? 0) << 8) | (bytes[5] ?? 0)).toString(16).padStart(4, '0')}`;
  }
  if (m.type === 'unknown') return { ...head, data: hex(m.data) };
  const options = m.options.map(optionToJson);
  switch (m.type) {
    case MhType.BindingRefreshRequest:
      return { ...head, options };
    case MhType.BindingUpdate:
      return {
        ...head,
        seq: m.seq,
        flags: flagNames(BU_FLAG_BITS, m.flags),
        ...(m.otherFlagBits ? { otherFlagBits: m.otherFlagBits } : {}),
        lifetime: lifetime(m.lifetimeUnits),
        options,
      };
    case MhType.BindingAck:
      return {
        ...head,
        status: m.status,
        statusName: BaStatus[m.status] ?? (m.status < 128 ? 'Accepted' : 'Rejected'),
        flags: flagNames(BA_FLAG_BITS, m.flags),
        ...(m.otherFlagBits ? { otherFlagBits: m.otherFlagBits } : {}),
        seq: m.seq,
        lifetime: lifetime(m.lifetimeUnits),
        options,
      };
    case MhType.BindingError:
      return { ...head, status: m.status, homeAddress: formatIpv6(m.homeAddress), options };
  }
}

// ---------------------------------------------------------------------------------------------
// JSON → message, with errors that name the field.

function bad(path: string, problem: string): never {
  throw new WireError('bad-input', `${path}: ${problem}`);
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(path, 'expected an object');
  return v as Record<string, unknown>;
}

function uint(v: unknown, path: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) bad(path, `expected an integer 0..${max}`);
  return v;
}

function units(v: unknown, path: string): number {
  if (typeof v === 'number') return uint(v, path, 0xffff);
  const o = obj(v, path);
  if (o.units !== undefined) return uint(o.units, `${path}.units`, 0xffff);
  if (o.seconds !== undefined) {
    const s = uint(o.seconds, `${path}.seconds`, 0xffff * 4);
    if (s % 4 !== 0) bad(`${path}.seconds`, 'must be a multiple of 4');
    return s / 4;
  }
  return bad(path, 'expected {units} or {seconds}');
}

function addr(v: unknown, path: string): Ipv6Address {
  const a = typeof v === 'string' ? tryParseIpv6(v) : null;
  return a ?? bad(path, 'expected an IPv6 address');
}

function prefix(v: unknown, path: string): Ipv6Prefix {
  const p = typeof v === 'string' ? tryParsePrefix(v, { allowHostBits: true }) : null;
  if (!p || typeof v !== 'string') return bad(path, 'expected addr/len');
  // Keep the address as written: host bits are for the HA to judge, not the encoder.
  return { addr: addr(v.slice(0, v.indexOf('/')), path), len: p.len };
}

function bytesFromHex(v: unknown, path: string): Uint8Array {
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(v)) bad(path, 'expected hex octets');
  return Uint8Array.from(Buffer.from(v, 'hex'));
}

function u64(v: unknown, path: string): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d+$/.test(v)) {
    const b = BigInt(v);
    if (b < 2n ** 64n) return b;
  }
  return bad(path, 'expected a 64-bit unsigned integer (decimal string)');
}

function flagSet<T extends string>(v: unknown, path: string, names: readonly T[]): Partial<Record<T, boolean>> {
  if (v === undefined) return {};
  if (!Array.isArray(v)) bad(path, `expected an array of flag names (${names.join(', ')})`);
  const out: Partial<Record<T, boolean>> = {};
  for (const [i, f] of v.entries()) {
    if (typeof f !== 'string' || !(names as readonly string[]).includes(f)) bad(`${path}[${i}]`, `unknown flag ${JSON.stringify(f)}; known: ${names.join(', ')}`);
    out[f as T] = true;
  }
  return out;
}

function optionFromJson(v: unknown, path: string): MobilityOption {
  const o = obj(v, path);
  const code = typeof o.code === 'number' ? o.code : typeof o.type === 'string' ? OPTION_CODES[o.type] : undefined;
  if (code === undefined) return bad(`${path}.type`, `unknown option; known: ${Object.keys(OPTION_CODES).join(', ')}`);
  switch (code) {
    case MhOptionType.BindingRefreshAdvice:
      return { type: code, intervalUnits: units(o.interval, `${path}.interval`) };
    case MhOptionType.AlternateCareOfAddress:
      return { type: code, address: addr(o.address, `${path}.address`) };
    case MhOptionType.NonceIndices:
      return { type: code, homeNonceIndex: uint(o.homeNonceIndex, `${path}.homeNonceIndex`, 0xffff), careOfNonceIndex: uint(o.careOfNonceIndex, `${path}.careOfNonceIndex`, 0xffff) };
    case MhOptionType.BindingAuthorizationData:
      return { type: code, authenticator: bytesFromHex(o.authenticator, `${path}.authenticator`) };
    case MhOptionType.MobileNetworkPrefix:
      return { type: code, prefix: prefix(o.prefix, `${path}.prefix`) };
    case MhOptionType.HomeNetworkPrefix:
      return { type: code, prefix: prefix(o.prefix, `${path}.prefix`) };
    case MhOptionType.MobileNodeIdentifier: {
      const identifier = typeof o.identifierHex === 'string'
        ? bytesFromHex(o.identifierHex, `${path}.identifierHex`)
        : typeof o.identifier === 'string' ? new TextEncoder().encode(o.identifier) : bad(`${path}.identifier`, 'expected a string');
      return { type: code, subtype: o.subtype === undefined ? 1 : uint(o.subtype, `${path}.subtype`, 255), identifier };
    }
    case MhOptionType.MobilityMessageAuthentication:
      return {
        type: code,
        subtype: o.subtype === undefined ? 1 : uint(o.subtype, `${path}.subtype`, 255),
        spi: uint(o.spi, `${path}.spi`, 0xffffffff),
        authenticator: bytesFromHex(o.authenticator, `${path}.authenticator`),
      };
    case MhOptionType.MobilityMessageReplayProtection:
      return { type: code, timestamp: u64(o.timestamp, `${path}.timestamp`) };
    case MhOptionType.Timestamp:
      return { type: code, timestamp: u64(o.timestamp, `${path}.timestamp`) };
    case MhOptionType.HandoffIndicator:
      return { type: code, indicator: uint(o.indicator, `${path}.indicator`, 255) };
    case MhOptionType.AccessTechnologyType:
      return { type: code, technology: uint(o.technology, `${path}.technology`, 255) };
    default:
      if (code === MhOptionType.Pad1 || code === MhOptionType.PadN) bad(`${path}.type`, 'padding is added by the encoder');
      return { type: 'unknown', code: uint(code, `${path}.code`, 255), data: bytesFromHex(o.data ?? '', `${path}.data`) };
  }
}

/** Parse the JSON view back into a message; throws WireError('bad-input') naming the field. */
export function messageFromJson(v: unknown): MobilityMessage | UnknownMessage {
  const o = obj(v, '$');
  const code = typeof o.typeCode === 'number' ? o.typeCode : typeof o.type === 'string' ? TYPE_CODES[o.type] : undefined;
  if (code === undefined) return bad('$.type', `expected one of ${Object.keys(TYPE_CODES).join(', ')}`);
  const options = o.options === undefined ? [] : Array.isArray(o.options) ? o.options.map((x, i) => optionFromJson(x, `$.options[${i}]`)) : bad('$.options', 'expected an array');
  switch (code) {
    case MhType.BindingRefreshRequest:
      return { type: code, options };
    case MhType.BindingUpdate:
      return {
        type: code,
        seq: uint(o.seq, '$.seq', 0xffff),
        flags: buFlags(flagSet(o.flags, '$.flags', Object.keys(BU_FLAG_BITS) as BuFlagName[])),
        ...(o.otherFlagBits !== undefined ? { otherFlagBits: uint(o.otherFlagBits, '$.otherFlagBits', 0xffff) } : {}),
        lifetimeUnits: units(o.lifetime ?? 0, '$.lifetime'),
        options,
      };
    case MhType.BindingAck:
      return {
        type: code,
        status: uint(o.status, '$.status', 255),
        flags: baFlags(flagSet(o.flags, '$.flags', Object.keys(BA_FLAG_BITS) as BaFlagName[])),
        ...(o.otherFlagBits !== undefined ? { otherFlagBits: uint(o.otherFlagBits, '$.otherFlagBits', 0xff) } : {}),
        seq: uint(o.seq, '$.seq', 0xffff),
        lifetimeUnits: units(o.lifetime ?? 0, '$.lifetime'),
        options,
      };
    case MhType.BindingError:
      return { type: code, status: uint(o.status, '$.status', 255), homeAddress: addr(o.homeAddress, '$.homeAddress'), options };
    default:
      return { type: 'unknown', code: uint(code, '$.typeCode', 255), data: bytesFromHex(o.data ?? '', '$.data') };
  }
}
