/**
 * ICMPv6 Neighbor Discovery codec (RFC 4861 §4): Router Solicitation, Router Advertisement,
 * Neighbor Solicitation and Neighbor Advertisement, with the options a router on a guest
 * link sends or must recognise:
 *   Source / Target Link-Layer Address, Prefix Information, MTU   RFC 4861 §4.6
 *   Route Information                                             RFC 4191 §2.3
 *   Recursive DNS Server                                          RFC 8106 §5.1
 * Unknown options are kept as bytes (and must be ignored by the protocol, RFC 4861 §4.6).
 *
 * PURE. `decodeNdMessage` never throws: it returns a WireError naming the reason and the byte
 * offset from the start of the ICMPv6 header. `encodeNdMessage` throws WireError('unencodable')
 * for a value no peer could read (a field out of range, a prefix longer than 128 bits, ...).
 *
 * The ICMPv6 checksum is left zero: on a raw IPPROTO_ICMPV6 socket the kernel always fills it
 * on send and verifies it on receive, dropping bad packets (RFC 3542 §3.1; offset 2, fixed).
 * The checks that need the IPv6 header (hop limit 255, source and destination rules) are in
 * `ndReceptionProblem()`, for callers that know those fields.
 */
import { decodeFail, decodeOk, WireError, type DecodeResult } from './errors.js';
import {
  ipv6FromBytes, isLinkLocal, isMulticast, isUnspecified, maskIpv6, parseIpv6,
  type Ipv6Address, type Ipv6Prefix,
} from './ipv6.js';

/** IPv6 Next Header value of ICMPv6 (RFC 4443). */
export const IPPROTO_ICMPV6 = 58;
/** Hop limit every ND message is sent with; receivers drop anything else (RFC 4861 §6.1, §7.1). */
export const ND_HOP_LIMIT = 255;
/** Where the kernel writes the ICMPv6 checksum. */
export const ICMPV6_CHECKSUM_OFFSET = 2;
/** A lifetime of all ones means "infinity" (RFC 4861 §4.6.2, RFC 4191 §2.3, RFC 8106 §5.1). */
export const INFINITE_LIFETIME = 0xffff_ffff;

/** ff02::1, all nodes on the link. */
export const ALL_NODES: Ipv6Address = parseIpv6('ff02::1');
/** ff02::2, all routers on the link. */
export const ALL_ROUTERS: Ipv6Address = parseIpv6('ff02::2');

/** ICMPv6 types of Neighbor Discovery (RFC 4861 §4). */
export enum Icmpv6Type {
  /** RFC 4861 §4.1, ND_ROUTER_SOLICIT */
  RouterSolicitation = 133,
  /** RFC 4861 §4.2, ND_ROUTER_ADVERT */
  RouterAdvertisement = 134,
  /** RFC 4861 §4.3, ND_NEIGHBOR_SOLICIT */
  NeighborSolicitation = 135,
  /** RFC 4861 §4.4, ND_NEIGHBOR_ADVERT */
  NeighborAdvertisement = 136,
  /** RFC 4861 §4.5, ND_REDIRECT (recognised by type only; not decoded) */
  Redirect = 137,
}

/** IPv6 Neighbor Discovery Option Formats registry (the options this codec reads). */
export enum NdOptionType {
  /** RFC 4861 §4.6.1, ND_OPT_SOURCE_LINKADDR */
  SourceLinkLayerAddress = 1,
  /** RFC 4861 §4.6.1, ND_OPT_TARGET_LINKADDR */
  TargetLinkLayerAddress = 2,
  /** RFC 4861 §4.6.2, ND_OPT_PREFIX_INFORMATION */
  PrefixInformation = 3,
  /** RFC 4861 §4.6.4, ND_OPT_MTU */
  Mtu = 5,
  /** RFC 4191 §2.3, ND_OPT_ROUTE_INFO */
  RouteInformation = 24,
  /** RFC 8106 §5.1, ND_OPT_RDNSS */
  RecursiveDnsServer = 25,
}

/** The 2-bit preference of RFC 4191 §2.1 (Default Router Preference, Route Preference). */
export enum RouterPreference {
  Medium = 0b00,
  High = 0b01,
  /** Receivers treat it as Medium (RA) or ignore the route (RIO), RFC 4191 §2.1, §3.1. */
  Reserved = 0b10,
  Low = 0b11,
}

// ---------------------------------------------------------------------------------------------
// Values

export interface LinkLayerAddressOption {
  readonly type: NdOptionType.SourceLinkLayerAddress | NdOptionType.TargetLinkLayerAddress;
  /** The option body: 6 octets on Ethernet; other media may carry trailing padding. */
  readonly address: Uint8Array;
}

export interface PrefixInformationOption {
  readonly type: NdOptionType.PrefixInformation;
  /** Host bits beyond the length are zero (the receiver ignores them, RFC 4861 §4.6.2). */
  readonly prefix: Ipv6Prefix;
  /** L: the prefix is on-link. */
  readonly onLink: boolean;
  /** A: usable for stateless address autoconfiguration (RFC 4862). */
  readonly autonomous: boolean;
  /** R: the prefix field holds the router's full address (RFC 6275 §7.2). */
  readonly routerAddress: boolean;
  readonly validLifetimeSec: number;
  readonly preferredLifetimeSec: number;
}

export interface MtuOption {
  readonly type: NdOptionType.Mtu;
  readonly mtu: number;
}

export interface RouteInformationOption {
  readonly type: NdOptionType.RouteInformation;
  readonly prefix: Ipv6Prefix;
  readonly preference: RouterPreference;
  readonly lifetimeSec: number;
}

export interface RecursiveDnsServerOption {
  readonly type: NdOptionType.RecursiveDnsServer;
  readonly lifetimeSec: number;
  /** At least one. */
  readonly servers: readonly Ipv6Address[];
}

/** An option type this codec does not read; kept as bytes. */
export interface UnknownNdOption {
  readonly type: 'unknown';
  /** The option type octet. */
  readonly code: number;
  /** The option body (after Type and Length), including any padding. */
  readonly data: Uint8Array;
}

export type KnownNdOption =
  | LinkLayerAddressOption
  | PrefixInformationOption
  | MtuOption
  | RouteInformationOption
  | RecursiveDnsServerOption;

export type NdOption = KnownNdOption | UnknownNdOption;

export interface RouterSolicitation {
  readonly type: Icmpv6Type.RouterSolicitation;
  readonly options: readonly NdOption[];
}

export interface RaFlags {
  /** M: addresses are available via DHCPv6. */
  readonly managed: boolean;
  /** O: other configuration is available via DHCPv6. */
  readonly otherConfig: boolean;
  /** H: the router is a Mobile IPv6 home agent (RFC 6275 §7.1). */
  readonly homeAgent: boolean;
}

export interface RouterAdvertisement {
  readonly type: Icmpv6Type.RouterAdvertisement;
  /** Default hop limit for hosts; 0 = unspecified. */
  readonly curHopLimit: number;
  readonly flags: RaFlags;
  /** Default Router Preference (RFC 4191 §2.2). */
  readonly preference: RouterPreference;
  /** Flag-octet bits outside M O H Prf (e.g. RFC 4389 P), kept for round trips. */
  readonly otherFlagBits?: number;
  /** 0: not a default router. */
  readonly routerLifetimeSec: number;
  /** 0: unspecified. */
  readonly reachableTimeMs: number;
  /** 0: unspecified. */
  readonly retransTimerMs: number;
  readonly options: readonly NdOption[];
}

export interface NeighborSolicitation {
  readonly type: Icmpv6Type.NeighborSolicitation;
  readonly target: Ipv6Address;
  readonly options: readonly NdOption[];
}

export interface NaFlags {
  /** R: the sender is a router. */
  readonly router: boolean;
  /** S: sent in response to a Neighbor Solicitation. */
  readonly solicited: boolean;
  /** O: override an existing cache entry's link-layer address. */
  readonly override: boolean;
}

export interface NeighborAdvertisement {
  readonly type: Icmpv6Type.NeighborAdvertisement;
  readonly flags: NaFlags;
  readonly target: Ipv6Address;
  readonly options: readonly NdOption[];
}

export type NdMessage = RouterSolicitation | RouterAdvertisement | NeighborSolicitation | NeighborAdvertisement;

// ---------------------------------------------------------------------------------------------
// Layout constants

/** Octets before the options: the 4-octet ICMPv6 header plus the type's fixed part. */
const FIXED_LEN: Readonly<Record<NdMessage['type'], number>> = {
  [Icmpv6Type.RouterSolicitation]: 8,
  [Icmpv6Type.RouterAdvertisement]: 16,
  [Icmpv6Type.NeighborSolicitation]: 24,
  [Icmpv6Type.NeighborAdvertisement]: 24,
};

const RA_FLAG = { managed: 0x80, otherConfig: 0x40, homeAgent: 0x20 } as const;
const PRF_SHIFT = 3;
const PRF_MASK = 0b11 << PRF_SHIFT;
const RA_KNOWN_BITS = RA_FLAG.managed | RA_FLAG.otherConfig | RA_FLAG.homeAgent | PRF_MASK;
const NA_FLAG = { router: 0x80, solicited: 0x40, override: 0x20 } as const;
const PIO_FLAG = { onLink: 0x80, autonomous: 0x40, routerAddress: 0x20 } as const;

/** Options are sized in units of 8 octets (RFC 4861 §4.6). */
const OPTION_UNIT = 8;
const MAX_OPTION_UNITS = 255;

// ---------------------------------------------------------------------------------------------
// Option table

interface NdOptionSpec<O extends KnownNdOption> {
  readonly name: string;
  /** Allowed Length field (in 8-octet units): exact, or [min, max]. */
  readonly units: number | readonly [number, number];
  /**
   * Read the body (the octets after Type and Length; `view` covers the same octets). A string
   * names what is wrong with it.
   */
  readonly decode: (body: Uint8Array, view: DataView, type: number) => O | string;
  /** Body octets this value needs, before padding to a multiple of 8 (with Type and Length). */
  readonly bodyLength: (o: O) => number;
  /** Write the body at `at`; `out` is zero-filled, so padding needs no writing. */
  readonly encode: (o: O, out: Uint8Array, view: DataView, at: number) => void;
}

/** The option value of a type (both link-layer address options share one shape). */
type OptionOf<T extends NdOptionType> = T extends LinkLayerAddressOption['type'] ? LinkLayerAddressOption
  : Extract<KnownNdOption, { type: T }>;
type SpecTable = { readonly [T in NdOptionType]: NdOptionSpec<OptionOf<T>> };

const LINK_LAYER_ADDRESS_SPEC = {
  units: [1, MAX_OPTION_UNITS],
  decode: (body: Uint8Array, _v: DataView, type: number): LinkLayerAddressOption => ({
    type: type as LinkLayerAddressOption['type'],
    address: body.slice(),
  }),
  bodyLength: (o: LinkLayerAddressOption) => o.address.length,
  encode: (o: LinkLayerAddressOption, out: Uint8Array, _v: DataView, at: number) => out.set(o.address, at),
} as const;

/** Route Information: Length 1 carries no prefix octets, 2 carries 8, 3 carries 16 (RFC 4191 §2.3). */
const rioPrefixOctets = (len: number): number => (len === 0 ? 0 : len <= 64 ? 8 : 16);

export const ND_OPTION_SPECS: SpecTable = {
  [NdOptionType.SourceLinkLayerAddress]: { name: 'sourceLinkLayerAddress', ...LINK_LAYER_ADDRESS_SPEC },
  [NdOptionType.TargetLinkLayerAddress]: { name: 'targetLinkLayerAddress', ...LINK_LAYER_ADDRESS_SPEC },
  [NdOptionType.PrefixInformation]: {
    name: 'prefixInformation',
    units: 4,
    decode: (body, view) => {
      const len = body[0]!;
      if (len > 128) return `prefix length ${len} > 128`;
      const flags = body[1]!;
      return {
        type: NdOptionType.PrefixInformation,
        prefix: { addr: maskIpv6(body.subarray(14, 30), len), len },
        onLink: (flags & PIO_FLAG.onLink) !== 0,
        autonomous: (flags & PIO_FLAG.autonomous) !== 0,
        routerAddress: (flags & PIO_FLAG.routerAddress) !== 0,
        validLifetimeSec: view.getUint32(2),
        preferredLifetimeSec: view.getUint32(6),
      };
    },
    bodyLength: () => 30,
    encode: (o, out, view, at) => {
      out[at] = checkPrefixLength(o.prefix.len, 'prefix information');
      out[at + 1] = (o.onLink ? PIO_FLAG.onLink : 0) | (o.autonomous ? PIO_FLAG.autonomous : 0)
        | (o.routerAddress ? PIO_FLAG.routerAddress : 0);
      view.setUint32(at + 2, checkUint32(o.validLifetimeSec, 'valid lifetime'));
      view.setUint32(at + 6, checkUint32(o.preferredLifetimeSec, 'preferred lifetime'));
      // Reserved2 (4 octets) stays zero.
      out.set(maskIpv6(o.prefix.addr, o.prefix.len), at + 14);
    },
  },
  [NdOptionType.Mtu]: {
    name: 'mtu',
    units: 1,
    decode: (body, view) => ({ type: NdOptionType.Mtu, mtu: view.getUint32(2) }),
    bodyLength: () => 6,
    encode: (o, _out, view, at) => view.setUint32(at + 2, checkUint32(o.mtu, 'MTU')),
  },
  [NdOptionType.RouteInformation]: {
    name: 'routeInformation',
    units: [1, 3],
    decode: (body, view) => {
      const len = body[0]!;
      if (len > 128) return `prefix length ${len} > 128`;
      const carried = body.length - 6;
      if (carried < rioPrefixOctets(len)) return `prefix length ${len} needs option length ${(rioPrefixOctets(len) + 8) / 8}`;
      const addr = new Uint8Array(16);
      addr.set(body.subarray(6, 6 + Math.min(carried, 16)));
      return {
        type: NdOptionType.RouteInformation,
        prefix: { addr: maskIpv6(addr, len), len },
        preference: ((body[1]! & PRF_MASK) >> PRF_SHIFT) as RouterPreference,
        lifetimeSec: view.getUint32(2),
      };
    },
    bodyLength: (o) => 6 + rioPrefixOctets(o.prefix.len),
    encode: (o, out, view, at) => {
      out[at] = checkPrefixLength(o.prefix.len, 'route information');
      out[at + 1] = (checkPreference(o.preference) << PRF_SHIFT) & PRF_MASK;
      view.setUint32(at + 2, checkUint32(o.lifetimeSec, 'route lifetime'));
      out.set(maskIpv6(o.prefix.addr, o.prefix.len).subarray(0, rioPrefixOctets(o.prefix.len)), at + 6);
    },
  },
  [NdOptionType.RecursiveDnsServer]: {
    name: 'recursiveDnsServer',
    units: [3, MAX_OPTION_UNITS],
    decode: (body, view) => {
      // Length is 1 + 2n: the fixed part is one unit, each address two (RFC 8106 §5.1).
      if ((body.length - 6) % 16 !== 0) return `length ${(body.length + 2) / 8} is not 1 + 2n`;
      const servers: Ipv6Address[] = [];
      for (let at = 6; at < body.length; at += 16) servers.push(ipv6FromBytes(body, at));
      return { type: NdOptionType.RecursiveDnsServer, lifetimeSec: view.getUint32(2), servers };
    },
    bodyLength: (o) => 6 + 16 * o.servers.length,
    encode: (o, out, view, at) => {
      if (o.servers.length === 0) throw new WireError('unencodable', 'recursive DNS server option without an address');
      view.setUint32(at + 2, checkUint32(o.lifetimeSec, 'RDNSS lifetime'));
      o.servers.forEach((s, i) => out.set(s, at + 6 + 16 * i));
    },
  },
};

function specOf(type: number): NdOptionSpec<KnownNdOption> | undefined {
  // Each entry is keyed by its own type, so the widening is sound.
  return (ND_OPTION_SPECS as unknown as Partial<Record<number, NdOptionSpec<KnownNdOption>>>)[type];
}

function unitsAllowed(spec: NdOptionSpec<KnownNdOption>, units: number): boolean {
  return typeof spec.units === 'number' ? units === spec.units : units >= spec.units[0] && units <= spec.units[1];
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Decode one ND message, starting at the ICMPv6 header. Never throws. */
export function decodeNdMessage(bytes: Uint8Array): DecodeResult<NdMessage> {
  try {
    return decodeUnchecked(bytes);
  } catch (e) {
    // Safety net: every read is bounds-checked first; the unit tests fuzz this.
    return decodeFail('bad-field', `decoder fault: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function decodeUnchecked(bytes: Uint8Array): DecodeResult<NdMessage> {
  if (bytes.length < 4) return decodeFail('truncated', `${bytes.length} octets; an ICMPv6 header has 4`, 0);
  const type = bytes[0]!;
  const fixed = (FIXED_LEN as Partial<Record<number, number>>)[type];
  if (fixed === undefined) return decodeFail('bad-field', `ICMPv6 type ${type} is not a decoded Neighbor Discovery message`, 0);
  if (bytes[1] !== 0) return decodeFail('bad-field', `ICMPv6 code ${bytes[1]} for type ${type}; must be 0`, 1);
  if (bytes.length < fixed) return decodeFail('too-short-for-type', `type ${type} needs ${fixed} octets, got ${bytes.length}`, 0);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const opts = decodeOptions(bytes, fixed);
  if (!opts.ok) return opts;
  const options = opts.value;

  switch (type as NdMessage['type']) {
    case Icmpv6Type.RouterSolicitation:
      return decodeOk({ type: Icmpv6Type.RouterSolicitation, options });
    case Icmpv6Type.RouterAdvertisement:
      return decodeOk(decodeRouterAdvertisement(bytes, view, options));
    case Icmpv6Type.NeighborSolicitation:
    case Icmpv6Type.NeighborAdvertisement:
      return decodeNeighborMessage(bytes, type, options);
  }
}

function decodeRouterAdvertisement(bytes: Uint8Array, view: DataView, options: readonly NdOption[]): RouterAdvertisement {
  const octet = bytes[5]!;
  const other = octet & ~RA_KNOWN_BITS & 0xff;
  return {
    type: Icmpv6Type.RouterAdvertisement,
    curHopLimit: bytes[4]!,
    flags: {
      managed: (octet & RA_FLAG.managed) !== 0,
      otherConfig: (octet & RA_FLAG.otherConfig) !== 0,
      homeAgent: (octet & RA_FLAG.homeAgent) !== 0,
    },
    preference: ((octet & PRF_MASK) >> PRF_SHIFT) as RouterPreference,
    ...(other ? { otherFlagBits: other } : {}),
    routerLifetimeSec: view.getUint16(6),
    reachableTimeMs: view.getUint32(8),
    retransTimerMs: view.getUint32(12),
    options,
  };
}

function decodeNeighborMessage(bytes: Uint8Array, type: number, options: readonly NdOption[]): DecodeResult<NdMessage> {
  const target = ipv6FromBytes(bytes, 8);
  // RFC 4861 §7.1.1 / §7.1.2: the target must not be a multicast address.
  if (isMulticast(target)) return decodeFail('bad-field', 'target address is multicast', 8);
  if (type === Icmpv6Type.NeighborSolicitation) return decodeOk({ type: Icmpv6Type.NeighborSolicitation, target, options });
  const octet = bytes[4]!;
  return decodeOk({
    type: Icmpv6Type.NeighborAdvertisement,
    flags: {
      router: (octet & NA_FLAG.router) !== 0,
      solicited: (octet & NA_FLAG.solicited) !== 0,
      override: (octet & NA_FLAG.override) !== 0,
    },
    target,
    options,
  });
}

function decodeOptions(bytes: Uint8Array, start: number): DecodeResult<NdOption[]> {
  const options: NdOption[] = [];
  for (let off = start; off < bytes.length;) {
    if (bytes.length - off < 2) return decodeFail('truncated', `${bytes.length - off} octet(s) after the last option`, off);
    const type = bytes[off]!;
    const units = bytes[off + 1]!;
    // RFC 4861 §4.6: a zero Length makes the whole message invalid.
    if (units === 0) return decodeFail('bad-option-length', `option ${type} with length 0`, off);
    const next = off + units * OPTION_UNIT;
    if (next > bytes.length) return decodeFail('truncated', `option ${type} of ${units * OPTION_UNIT} octets runs past the message`, off);
    const decoded = decodeOption(bytes, off, next);
    if (!decoded.ok) return decoded;
    options.push(decoded.value);
    off = next;
  }
  return decodeOk(options);
}

function decodeOption(bytes: Uint8Array, off: number, next: number): DecodeResult<NdOption> {
  const type = bytes[off]!;
  const units = bytes[off + 1]!;
  const spec = specOf(type);
  if (!spec) return decodeOk({ type: 'unknown', code: type, data: bytes.slice(off + 2, next) });
  if (!unitsAllowed(spec, units)) return decodeFail('bad-option-length', `${spec.name} with length ${units}`, off);
  const body = bytes.subarray(off + 2, next);
  const decoded = spec.decode(body, new DataView(body.buffer, body.byteOffset, body.byteLength), type);
  return typeof decoded === 'string' ? decodeFail('bad-field', `${spec.name}: ${decoded}`, off) : decodeOk(decoded);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Encode one ND message (ICMPv6 header onwards, checksum zero). Throws WireError('unencodable'). */
export function encodeNdMessage(msg: NdMessage): Uint8Array {
  const fixed = FIXED_LEN[msg.type];
  const sizes = msg.options.map(optionSize);
  const out = new Uint8Array(fixed + sizes.reduce((a, b) => a + b, 0));
  const view = new DataView(out.buffer);
  out[0] = msg.type; // Code and Checksum stay zero.
  writeFixedPart(msg, out, view);
  let at = fixed;
  msg.options.forEach((o, i) => {
    writeOption(o, out, view, at, sizes[i]!);
    at += sizes[i]!;
  });
  return out;
}

function writeFixedPart(msg: NdMessage, out: Uint8Array, view: DataView): void {
  switch (msg.type) {
    case Icmpv6Type.RouterSolicitation:
      return; // Reserved stays zero.
    case Icmpv6Type.RouterAdvertisement:
      out[4] = checkUint(msg.curHopLimit, 8, 'cur hop limit');
      out[5] = raFlagOctet(msg);
      view.setUint16(6, checkUint(msg.routerLifetimeSec, 16, 'router lifetime'));
      view.setUint32(8, checkUint32(msg.reachableTimeMs, 'reachable time'));
      view.setUint32(12, checkUint32(msg.retransTimerMs, 'retrans timer'));
      return;
    case Icmpv6Type.NeighborSolicitation:
      out.set(checkTarget(msg.target), 8);
      return;
    case Icmpv6Type.NeighborAdvertisement:
      out[4] = (msg.flags.router ? NA_FLAG.router : 0) | (msg.flags.solicited ? NA_FLAG.solicited : 0)
        | (msg.flags.override ? NA_FLAG.override : 0);
      out.set(checkTarget(msg.target), 8);
      return;
  }
}

function raFlagOctet(ra: RouterAdvertisement): number {
  const other = ra.otherFlagBits ?? 0;
  if ((other & RA_KNOWN_BITS) !== 0 || other > 0xff || other < 0) {
    throw new WireError('unencodable', `otherFlagBits 0x${other.toString(16)} overlap M O H Prf or exceed an octet`);
  }
  return (ra.flags.managed ? RA_FLAG.managed : 0) | (ra.flags.otherConfig ? RA_FLAG.otherConfig : 0)
    | (ra.flags.homeAgent ? RA_FLAG.homeAgent : 0) | (checkPreference(ra.preference) << PRF_SHIFT) | other;
}

/** Total octets of an option on the wire: Type, Length, body, zero padding to 8. */
function optionSize(o: NdOption): number {
  const body = o.type === 'unknown' ? o.data.length : knownSpec(o).bodyLength(o);
  const size = Math.ceil((2 + body) / OPTION_UNIT) * OPTION_UNIT;
  if (size / OPTION_UNIT > MAX_OPTION_UNITS) {
    throw new WireError('unencodable', `option ${o.type === 'unknown' ? o.code : o.type} of ${size} octets exceeds ${MAX_OPTION_UNITS * 8}`);
  }
  return size;
}

function writeOption(o: NdOption, out: Uint8Array, view: DataView, at: number, size: number): void {
  out[at + 1] = size / OPTION_UNIT;
  if (o.type === 'unknown') {
    out[at] = checkUint(o.code, 8, 'option type');
    out.set(o.data, at + 2);
    return;
  }
  out[at] = o.type;
  knownSpec(o).encode(o, out, view, at + 2);
}

function knownSpec(o: KnownNdOption): NdOptionSpec<KnownNdOption> {
  const spec = specOf(o.type);
  if (!spec) throw new WireError('unencodable', `option type ${String(o.type)} has no encoder`);
  return spec;
}

function checkUint(v: number, bits: 8 | 16, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new WireError('unencodable', `${what} ${v} is not a ${bits}-bit unsigned integer`);
  return v;
}

function checkUint32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new WireError('unencodable', `${what} ${v} is not a 32-bit unsigned integer`);
  return v;
}

function checkPrefixLength(len: number, what: string): number {
  if (!Number.isInteger(len) || len < 0 || len > 128) throw new WireError('unencodable', `${what} prefix length ${len}`);
  return len;
}

function checkPreference(p: RouterPreference): number {
  if (!Number.isInteger(p) || p < 0 || p > 3) throw new WireError('unencodable', `preference ${String(p)} is not 2 bits`);
  return p;
}

function checkTarget(target: Uint8Array): Uint8Array {
  if (target.length !== 16) throw new WireError('unencodable', `target of ${target.length} octets`);
  if (isMulticast(target)) throw new WireError('unencodable', 'target address is multicast');
  return target;
}

// ---------------------------------------------------------------------------------------------
// Helpers for senders and receivers

/** The first option of this type, if any. */
export function findNdOption<T extends NdOptionType>(msg: NdMessage, type: T): OptionOf<T> | undefined {
  return msg.options.find((o): o is OptionOf<T> => o.type === type);
}

/** Solicited-node multicast address ff02::1:ffXX:XXXX of `addr` (RFC 4291 §2.7.1). */
export function solicitedNodeMulticast(addr: Uint8Array): Ipv6Address {
  const out = parseIpv6('ff02::1:ff00:0');
  out.set(addr.subarray(13, 16), 13);
  return out;
}

/** The IPv6 header fields ND validity depends on. `hopLimit` is optional: a raw socket may not report it. */
export interface NdIpHeader {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly hopLimit?: number;
}

/**
 * The validity checks of RFC 4861 §6.1.1, §6.1.2, §7.1.1 and §7.1.2 that need the IPv6
 * header (the rest are done by `decodeNdMessage`). Returns what is wrong, or null.
 */
export function ndReceptionProblem(msg: NdMessage, ip: NdIpHeader): string | null {
  if (ip.hopLimit !== undefined && ip.hopLimit !== ND_HOP_LIMIT) return `hop limit ${ip.hopLimit}, expected ${ND_HOP_LIMIT}`;
  const hasSlla = findNdOption(msg, NdOptionType.SourceLinkLayerAddress) !== undefined;
  switch (msg.type) {
    case Icmpv6Type.RouterSolicitation:
      return isUnspecified(ip.src) && hasSlla ? 'source link-layer address option from the unspecified address' : null;
    case Icmpv6Type.RouterAdvertisement:
      return isLinkLocal(ip.src) ? null : 'source address is not link-local';
    case Icmpv6Type.NeighborSolicitation:
      if (!isUnspecified(ip.src)) return null;
      if (hasSlla) return 'source link-layer address option from the unspecified address';
      return isSolicitedNodeMulticast(ip.dst) ? null : 'DAD probe not sent to a solicited-node multicast address';
    case Icmpv6Type.NeighborAdvertisement:
      return isMulticast(ip.dst) && msg.flags.solicited ? 'solicited flag set on a multicast advertisement' : null;
  }
}

function isSolicitedNodeMulticast(a: Uint8Array): boolean {
  const prefix = solicitedNodeMulticast(new Uint8Array(16));
  for (let i = 0; i < 13; i++) if (a[i] !== prefix[i]) return false;
  return true;
}
