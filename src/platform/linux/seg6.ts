/**
 * Encoders and decoders for the lightweight-tunnel (lwtunnel) attributes that the kernel's
 * seg6 and seg6local route encapsulations take in RTA_ENCAP.
 *
 * PURE: bytes in, bytes out; no I/O. Layouts follow the kernel uapi headers
 * (include/uapi/linux/lwtunnel.h, seg6.h, seg6_iptunnel.h, seg6_local.h). Netlink attribute
 * headers and the integer fields the kernel reads with nla_get_u32 / as `int` are in HOST
 * byte order; addresses and the SRH tag are in network order. Every layout here was checked
 * byte for byte against what iproute2 6.1 installs on kernel 6.18 (see
 * test/unit/platform/seg6.test.ts and docs/dataplane.md).
 */
import { IPV6_ADDR_LEN, ipv6FromBytes, type Ipv6Address } from '../../wire/ipv6.js';

/** include/uapi/linux/lwtunnel.h `enum lwtunnel_encap_types`: LWTUNNEL_ENCAP_SEG6. */
export const LWTUNNEL_ENCAP_SEG6 = 5;
/** include/uapi/linux/lwtunnel.h: LWTUNNEL_ENCAP_SEG6_LOCAL. */
export const LWTUNNEL_ENCAP_SEG6_LOCAL = 7;

/** seg6_iptunnel.h: SEG6_IPTUNNEL_SRH, payload `struct seg6_iptunnel_encap`. */
export const SEG6_IPTUNNEL_SRH = 1;

/** seg6_iptunnel.h `SEG6_IPTUN_MODE_*` (the `int mode` of struct seg6_iptunnel_encap). */
export enum Seg6TunnelMode {
  /** SEG6_IPTUN_MODE_INLINE: insert an SRH into the packet (not supported by encodeSeg6Encap). */
  Inline = 0,
  /** SEG6_IPTUN_MODE_ENCAP: outer IPv6 header plus an SRH. */
  Encap = 1,
  /** SEG6_IPTUN_MODE_L2ENCAP */
  L2Encap = 2,
  /** SEG6_IPTUN_MODE_ENCAP_RED: reduced encapsulation; with one segment there is no SRH,
   *  which yields plain RFC 2473 IPv6-in-IPv6 (next header 41). */
  EncapRed = 3,
  /** SEG6_IPTUN_MODE_L2ENCAP_RED */
  L2EncapRed = 4,
}

/** seg6_local.h `SEG6_LOCAL_*` attribute types. */
export enum Seg6LocalAttr {
  Action = 1,
  Srh = 2,
  Table = 3,
  Nh4 = 4,
  Nh6 = 5,
  Iif = 6,
  Oif = 7,
  Bpf = 8,
  VrfTable = 9,
  Counters = 10,
  Flavors = 11,
}

/** seg6_local.h `SEG6_LOCAL_ACTION_*` (the subset we use, plus neighbours for decoding). */
export enum Seg6LocalAction {
  End = 1,
  EndX = 2,
  EndT = 3,
  EndDX2 = 4,
  /** Decapsulate and forward the inner IPv6 packet (to nh6, or by a route lookup when nh6 is ::). */
  EndDX6 = 5,
  EndDX4 = 6,
  /** Decapsulate and look the inner destination up in a given table. */
  EndDT6 = 7,
  EndDT4 = 8,
}

/** seg6.h: IPV6_SRCRT_TYPE_4, the Segment Routing Header routing type. */
export const IPV6_SRCRT_TYPE_4 = 4;

/** An encap seg6 route: `encap seg6 mode <mode> segs <s1,s2,...>`. */
export interface Seg6Encap {
  readonly mode: Seg6TunnelMode;
  /** Segments in travel order, as iproute2 takes them (`segs` list). At least one. */
  readonly segments: readonly Ipv6Address[];
}

/** A seg6local behaviour: the two decapsulation actions the data plane uses. */
export type Seg6LocalBehavior =
  | { readonly action: Seg6LocalAction.EndDX6; readonly nh6: Ipv6Address }
  | { readonly action: Seg6LocalAction.EndDT6; readonly table: number };

const HOST_LE: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const NLA_HDRLEN = 4;
const NLA_TYPE_MASK = 0x3fff;

const align4 = (n: number): number => (n + 3) & ~3;

/** One netlink attribute (struct nlattr, host order) with its payload, padded to 4 bytes. */
export function encodeNlAttr(type: number, payload: Uint8Array): Uint8Array {
  const len = NLA_HDRLEN + payload.length;
  if (len > 0xffff) throw new RangeError(`netlink attribute ${type} too long (${len} bytes)`);
  const out = new Uint8Array(align4(len));
  const dv = new DataView(out.buffer);
  dv.setUint16(0, len, HOST_LE);
  dv.setUint16(2, type, HOST_LE);
  out.set(payload, NLA_HDRLEN);
  return out;
}

/** A host-order u32 (nla_get_u32 / C `int`). */
export function encodeHostU32(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`not a u32: ${value}`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, HOST_LE);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

/**
 * The Segment Routing Header that goes after `int mode` (struct ipv6_sr_hdr, RFC 8754 §2).
 * Like iproute2's parse_srh() for the encap modes: segments_left = first_segment = n-1 and
 * the segment list is stored in reverse (segments[0] is the final segment).
 */
export function encodeSrh(segments: readonly Ipv6Address[]): Uint8Array {
  const n = segments.length;
  if (n < 1 || n > 127) throw new RangeError(`SRH needs 1..127 segments, got ${n}`);
  const out = new Uint8Array(8 + n * IPV6_ADDR_LEN);
  out[0] = 0; // nexthdr: filled in by the kernel
  out[1] = (n * IPV6_ADDR_LEN) >> 3; // hdrlen: 8-octet units after the first 8
  out[2] = IPV6_SRCRT_TYPE_4;
  out[3] = n - 1; // segments_left
  out[4] = n - 1; // first_segment (last_entry)
  // out[5] flags = 0, out[6..7] tag = 0
  segments.forEach((seg, i) => {
    if (seg.length !== IPV6_ADDR_LEN) throw new RangeError('segment is not a 16-byte address');
    out.set(seg, 8 + (n - 1 - i) * IPV6_ADDR_LEN);
  });
  return out;
}

/**
 * RTA_ENCAP payload for RTA_ENCAP_TYPE = LWTUNNEL_ENCAP_SEG6:
 * nlattr SEG6_IPTUNNEL_SRH { int mode; struct ipv6_sr_hdr srh }.
 * For `{ mode: EncapRed, segments: [coa] }` this is exactly 32 bytes:
 * `20000100 03000000 00020400 00000000 <coa>` on a little-endian host.
 */
export function encodeSeg6Encap(encap: Seg6Encap): Uint8Array {
  if (encap.mode === Seg6TunnelMode.Inline) {
    throw new RangeError('seg6 inline mode is not supported by this encoder (needs an extra SRH slot)');
  }
  return encodeNlAttr(SEG6_IPTUNNEL_SRH, concat([encodeHostU32(encap.mode), encodeSrh(encap.segments)]));
}

/**
 * RTA_ENCAP payload for RTA_ENCAP_TYPE = LWTUNNEL_ENCAP_SEG6_LOCAL:
 * End.DX6 → SEG6_LOCAL_ACTION(u32 5) + SEG6_LOCAL_NH6(16 bytes; :: = route on the inner dst);
 * End.DT6 → SEG6_LOCAL_ACTION(u32 7) + SEG6_LOCAL_TABLE(u32).
 */
export function encodeSeg6LocalEncap(behavior: Seg6LocalBehavior): Uint8Array {
  const action = encodeNlAttr(Seg6LocalAttr.Action, encodeHostU32(behavior.action));
  switch (behavior.action) {
    case Seg6LocalAction.EndDX6:
      if (behavior.nh6.length !== IPV6_ADDR_LEN) throw new RangeError('nh6 is not a 16-byte address');
      return concat([action, encodeNlAttr(Seg6LocalAttr.Nh6, behavior.nh6)]);
    case Seg6LocalAction.EndDT6:
      return concat([action, encodeNlAttr(Seg6LocalAttr.Table, encodeHostU32(behavior.table))]);
  }
}

/** Walk a stream of netlink attributes; returns null when the stream is malformed. */
export function decodeNlAttrs(bytes: Uint8Array): Map<number, Uint8Array> | null {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<number, Uint8Array>();
  let off = 0;
  while (off + NLA_HDRLEN <= bytes.length) {
    const len = dv.getUint16(off, HOST_LE);
    const type = dv.getUint16(off + 2, HOST_LE) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > bytes.length) return null;
    out.set(type, bytes.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return off >= bytes.length ? out : null;
}

function readHostU32(b: Uint8Array): number | null {
  if (b.length < 4) return null;
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, HOST_LE);
}

/** Decode an RTA_ENCAP seg6 payload (as the kernel dumps it). Null when it is not one. */
export function decodeSeg6Encap(bytes: Uint8Array): Seg6Encap | null {
  const srhAttr = decodeNlAttrs(bytes)?.get(SEG6_IPTUNNEL_SRH);
  if (!srhAttr || srhAttr.length < 4 + 8) return null;
  const mode = readHostU32(srhAttr);
  const srh = srhAttr.subarray(4);
  const hdrBytes = ((srh[1]! + 1) << 3);
  const n = (srh[4]! + 1);
  if (mode === null || srh[2] !== IPV6_SRCRT_TYPE_4 || srh.length < hdrBytes || 8 + n * 16 > hdrBytes) return null;
  const segments: Ipv6Address[] = [];
  for (let i = n - 1; i >= 0; i--) segments.push(ipv6FromBytes(srh, 8 + i * IPV6_ADDR_LEN));
  return { mode: mode as Seg6TunnelMode, segments };
}

/** Decode an RTA_ENCAP seg6local payload for the two behaviours we install. */
export function decodeSeg6LocalEncap(bytes: Uint8Array): Seg6LocalBehavior | null {
  const attrs = decodeNlAttrs(bytes);
  const actionBytes = attrs?.get(Seg6LocalAttr.Action);
  if (!attrs || !actionBytes) return null;
  const action = readHostU32(actionBytes);
  if (action === Seg6LocalAction.EndDX6) {
    const nh6 = attrs.get(Seg6LocalAttr.Nh6);
    return nh6 && nh6.length === IPV6_ADDR_LEN ? { action, nh6: ipv6FromBytes(nh6) } : null;
  }
  if (action === Seg6LocalAction.EndDT6) {
    const tableBytes = attrs.get(Seg6LocalAttr.Table);
    const table = tableBytes ? readHostU32(tableBytes) : null;
    return table === null ? null : { action, table };
  }
  return null;
}
