/**
 * Mobility Header checksum (RFC 6275 §6.1.1): the 16-bit one's complement of the one's
 * complement sum over the IPv6 pseudo-header (RFC 8200 §8.1) and the whole MH, with the
 * checksum field taken as zero.
 *
 * PURE. Pseudo-header rules when mobility extension headers are present:
 * - a Home Address destination option: the pseudo-header source is the home address;
 * - a type 2 routing header: the pseudo-header destination is the final destination (the HoA).
 */
import { IPPROTO_MH } from './constants.js';

export interface ChecksumContext {
  /** IPv6 source address of the packet. */
  readonly src: Uint8Array;
  /** IPv6 destination address of the packet. */
  readonly dst: Uint8Array;
  /** The Home Address option's address, when the packet carries one (replaces src). */
  readonly homeAddressOption?: Uint8Array;
  /** The type 2 routing header's home address, when the packet carries one (replaces dst). */
  readonly type2RoutingHeader?: Uint8Array;
}

const CHECKSUM_OFFSET = 4;

function sum16(bytes: Uint8Array, from: number, to: number, acc: number, skipAt = -1): number {
  let s = acc;
  let i = from;
  for (; i + 1 < to; i += 2) {
    if (i === skipAt) continue;
    s += (bytes[i]! << 8) | bytes[i + 1]!;
  }
  if (i < to) s += bytes[i]! << 8;
  return s;
}

function fold(s: number): number {
  let x = s;
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000);
  return x;
}

/** The checksum value to put in the MH, computed with the checksum field taken as zero. */
export function mhChecksum(mh: Uint8Array, ctx: ChecksumContext): number {
  const src = ctx.homeAddressOption ?? ctx.src;
  const dst = ctx.type2RoutingHeader ?? ctx.dst;
  let s = sum16(src, 0, 16, 0);
  s = sum16(dst, 0, 16, s);
  s += Math.floor(mh.length / 0x10000) + (mh.length & 0xffff); // upper-layer length, 32 bits
  s += IPPROTO_MH;
  s = sum16(mh, 0, mh.length, s, CHECKSUM_OFFSET);
  const c = ~fold(s) & 0xffff;
  return c;
}

/** Fill the checksum field of an encoded MH in place. */
export function writeMhChecksum(mh: Uint8Array, ctx: ChecksumContext): void {
  const c = mhChecksum(mh, ctx);
  mh[CHECKSUM_OFFSET] = c >> 8;
  mh[CHECKSUM_OFFSET + 1] = c & 0xff;
}

/** True when the MH's checksum field is correct for this pseudo-header. */
export function verifyMhChecksum(mh: Uint8Array, ctx: ChecksumContext): boolean {
  if (mh.length < 6) return false;
  return ((mh[CHECKSUM_OFFSET]! << 8) | mh[CHECKSUM_OFFSET + 1]!) === mhChecksum(mh, ctx);
}
