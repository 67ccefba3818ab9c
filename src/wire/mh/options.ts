/**
 * The Mobility Option registry as one table (RFC 6275 §6.2, RFC 3963 §4.3, RFC 4283 §3,
 * RFC 4285 §5–6, RFC 5213 §8). The table drives length checks, duplicate rules, alignment
 * padding, the "must come last" rule, and dispatch to each option's reader and writer —
 * UMIP's `mh_opts_dup_ok[]` + `mh_opt_len_chk()` and BIRD babel's `tlv_data[]` in one place.
 *
 * PURE. Readers get the option body (after Type and Length) and return the option or a
 * short reason string; the codec turns that into a WireError with the offset.
 */
import { ipv6FromBytes, type Ipv6Prefix } from '../ipv6.js';
import { MhOptionType } from './constants.js';
import type { KnownMobilityOption } from './messages.js';

/** Alignment requirement "xn+y" for the option's Type octet, from the start of the MH. */
export interface Alignment {
  readonly x: number;
  readonly y: number;
}

export interface OptionSpec<O extends KnownMobilityOption = KnownMobilityOption> {
  /** Name for logs and JSON. */
  readonly name: string;
  /** Allowed body length (the Length field): exact, or a [min, max] range. */
  readonly length: number | readonly [number, number];
  readonly align: Alignment | null;
  /** May appear more than once in one message. */
  readonly repeatable: boolean;
  /** Must be the last option (authentication data). */
  readonly mustBeLast: boolean;
  /** Read a body of `body.length` octets; `mhOffset` is where the option's Type octet sits. */
  readonly decode: (body: Uint8Array, view: DataView, mhOffset: number) => O | string;
  /** Body length for this value. */
  readonly bodyLength: (o: O) => number;
  /** Write the body at `at`. */
  readonly encode: (o: O, out: Uint8Array, view: DataView, at: number) => void;
}

type OptionOf<T extends MhOptionType> = Extract<KnownMobilityOption, { type: T }>;
type SpecTable = { readonly [T in Exclude<MhOptionType, MhOptionType.Pad1 | MhOptionType.PadN>]: OptionSpec<OptionOf<T>> };

/** Body of the Mobile Network Prefix and Home Network Prefix options: Reserved, Length, Prefix. */
function decodePrefixBody(body: Uint8Array): Ipv6Prefix | string {
  const len = body[1]!;
  if (len > 128) return `prefix length ${len} > 128`;
  // The address is kept as sent; host bits beyond the length are policy (BA 141), not syntax.
  return { addr: ipv6FromBytes(body, 2), len };
}

function encodePrefixBody(prefix: Ipv6Prefix, out: Uint8Array, at: number): void {
  out[at] = 0; // Reserved
  out[at + 1] = prefix.len;
  out.set(prefix.addr, at + 2);
}

const PREFIX_LAYOUT = { length: 18, align: { x: 8, y: 4 }, repeatable: true, mustBeLast: false } as const;

/** One entry per known option type. Pad1/PadN are handled by the codec itself. */
export const OPTION_SPECS: SpecTable = {
  [MhOptionType.BindingRefreshAdvice]: {
    name: 'bindingRefreshAdvice',
    length: 2,
    align: { x: 2, y: 0 },
    repeatable: false,
    mustBeLast: false,
    decode: (_b, view, off) => ({ type: MhOptionType.BindingRefreshAdvice, intervalUnits: view.getUint16(off + 2) }),
    bodyLength: () => 2,
    encode: (o, _out, view, at) => view.setUint16(at, o.intervalUnits),
  },
  [MhOptionType.AlternateCareOfAddress]: {
    name: 'alternateCareOfAddress',
    length: 16,
    align: { x: 8, y: 6 },
    repeatable: false,
    mustBeLast: false,
    decode: (body) => ({ type: MhOptionType.AlternateCareOfAddress, address: ipv6FromBytes(body, 0) }),
    bodyLength: () => 16,
    encode: (o, out, _v, at) => out.set(o.address, at),
  },
  [MhOptionType.NonceIndices]: {
    name: 'nonceIndices',
    length: 4,
    align: { x: 2, y: 0 },
    repeatable: false,
    mustBeLast: false,
    decode: (_b, view, off) => ({
      type: MhOptionType.NonceIndices,
      homeNonceIndex: view.getUint16(off + 2),
      careOfNonceIndex: view.getUint16(off + 4),
    }),
    bodyLength: () => 4,
    encode: (o, _out, view, at) => {
      view.setUint16(at, o.homeNonceIndex);
      view.setUint16(at + 2, o.careOfNonceIndex);
    },
  },
  [MhOptionType.BindingAuthorizationData]: {
    name: 'bindingAuthorizationData',
    length: [1, 255],
    // RFC 6275 §6.2.7: no explicit alignment, but it is last and unpadded, so it sits at 8n+2
    // for a 12-octet authenticator. We check "last", not the offset.
    align: null,
    repeatable: false,
    mustBeLast: true,
    decode: (body) => ({ type: MhOptionType.BindingAuthorizationData, authenticator: body.slice() }),
    bodyLength: (o) => o.authenticator.length,
    encode: (o, out, _v, at) => out.set(o.authenticator, at),
  },
  [MhOptionType.MobileNetworkPrefix]: {
    name: 'mobileNetworkPrefix',
    ...PREFIX_LAYOUT,
    decode: (body) => {
      const prefix = decodePrefixBody(body);
      return typeof prefix === 'string' ? prefix : { type: MhOptionType.MobileNetworkPrefix, prefix };
    },
    bodyLength: () => 18,
    encode: (o, out, _v, at) => encodePrefixBody(o.prefix, out, at),
  },
  [MhOptionType.MobileNodeIdentifier]: {
    name: 'mobileNodeIdentifier',
    length: [2, 255],
    align: null,
    repeatable: false,
    mustBeLast: false,
    decode: (body) => ({ type: MhOptionType.MobileNodeIdentifier, subtype: body[0]!, identifier: body.slice(1) }),
    bodyLength: (o) => 1 + o.identifier.length,
    encode: (o, out, _v, at) => {
      out[at] = o.subtype;
      out.set(o.identifier, at + 1);
    },
  },
  [MhOptionType.MobilityMessageAuthentication]: {
    name: 'mobilityMessageAuthentication',
    // Subtype (1) + SPI (4) + at least one octet of authenticator.
    length: [6, 255],
    align: { x: 4, y: 1 },
    repeatable: false,
    mustBeLast: true,
    decode: (body, view, off) => ({
      type: MhOptionType.MobilityMessageAuthentication,
      subtype: body[0]!,
      spi: view.getUint32(off + 3),
      authenticator: body.slice(5),
      coveredLength: off + 7,
    }),
    bodyLength: (o) => 5 + o.authenticator.length,
    encode: (o, out, view, at) => {
      out[at] = o.subtype;
      view.setUint32(at + 1, o.spi >>> 0);
      out.set(o.authenticator, at + 5);
    },
  },
  [MhOptionType.MobilityMessageReplayProtection]: {
    name: 'mobilityMessageReplayProtection',
    length: 8,
    align: { x: 8, y: 2 },
    repeatable: false,
    mustBeLast: false,
    decode: (_b, view, off) => ({ type: MhOptionType.MobilityMessageReplayProtection, timestamp: view.getBigUint64(off + 2) }),
    bodyLength: () => 8,
    encode: (o, _out, view, at) => view.setBigUint64(at, BigInt.asUintN(64, o.timestamp)),
  },
  [MhOptionType.HomeNetworkPrefix]: {
    name: 'homeNetworkPrefix',
    ...PREFIX_LAYOUT,
    decode: (body) => {
      const prefix = decodePrefixBody(body);
      return typeof prefix === 'string' ? prefix : { type: MhOptionType.HomeNetworkPrefix, prefix };
    },
    bodyLength: () => 18,
    encode: (o, out, _v, at) => encodePrefixBody(o.prefix, out, at),
  },
  [MhOptionType.HandoffIndicator]: {
    name: 'handoffIndicator',
    length: 2,
    align: null,
    repeatable: false,
    mustBeLast: false,
    decode: (body) => ({ type: MhOptionType.HandoffIndicator, indicator: body[1]! }),
    bodyLength: () => 2,
    encode: (o, out, _v, at) => {
      out[at] = 0;
      out[at + 1] = o.indicator;
    },
  },
  [MhOptionType.AccessTechnologyType]: {
    name: 'accessTechnologyType',
    length: 2,
    align: null,
    repeatable: false,
    mustBeLast: false,
    decode: (body) => ({ type: MhOptionType.AccessTechnologyType, technology: body[1]! }),
    bodyLength: () => 2,
    encode: (o, out, _v, at) => {
      out[at] = 0;
      out[at + 1] = o.technology;
    },
  },
  [MhOptionType.Timestamp]: {
    name: 'timestamp',
    length: 8,
    align: { x: 8, y: 2 },
    repeatable: false,
    mustBeLast: false,
    decode: (_b, view, off) => ({ type: MhOptionType.Timestamp, timestamp: view.getBigUint64(off + 2) }),
    bodyLength: () => 8,
    encode: (o, _out, view, at) => view.setBigUint64(at, BigInt.asUintN(64, o.timestamp)),
  },
};

/** The spec for a type, or undefined for Pad1/PadN and unknown types. */
export function optionSpec(type: number): OptionSpec | undefined {
  return (OPTION_SPECS as Readonly<Record<number, OptionSpec | undefined>>)[type];
}

export function optionName(type: number): string {
  if (type === MhOptionType.Pad1) return 'pad1';
  if (type === MhOptionType.PadN) return 'padN';
  return optionSpec(type)?.name ?? `unknown(${type})`;
}

/** Padding needed before an option at `offset` to satisfy xn+y. */
export function alignmentPad(offset: number, align: Alignment | null): number {
  if (!align) return 0;
  return (((align.y - offset) % align.x) + align.x) % align.x;
}
