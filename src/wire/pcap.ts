/**
 * Minimal pcap writer for raw IPv6 packets (LINKTYPE_IPV6 = 229), for operators' captures and
 * the tshark cross-check. PURE: returns bytes; the caller writes the file.
 */
import { IPPROTO_MH } from './mh/constants.js';

const LINKTYPE_IPV6 = 229;

/** Wrap an upper-layer payload in a fixed IPv6 header (no extension headers). */
export function ipv6Packet(src: Uint8Array, dst: Uint8Array, nextHeader: number, payload: Uint8Array, hopLimit = 64): Uint8Array {
  const out = new Uint8Array(40 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x60000000);
  view.setUint16(4, payload.length);
  out[6] = nextHeader;
  out[7] = hopLimit;
  out.set(src, 8);
  out.set(dst, 24);
  out.set(payload, 40);
  return out;
}

export function mhPacket(src: Uint8Array, dst: Uint8Array, mh: Uint8Array): Uint8Array {
  return ipv6Packet(src, dst, IPPROTO_MH, mh);
}

/** A pcap file (microsecond timestamps) holding the given packets, one per second. */
export function pcapFile(packets: readonly Uint8Array[], startSec = 1_700_000_000): Uint8Array {
  const size = 24 + packets.reduce((n, p) => n + 16 + p.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, 65535, true);
  view.setUint32(20, LINKTYPE_IPV6, true);
  let off = 24;
  packets.forEach((p, i) => {
    view.setUint32(off, startSec + i, true);
    view.setUint32(off + 8, p.length, true);
    view.setUint32(off + 12, p.length, true);
    out.set(p, off + 16);
    off += 16 + p.length;
  });
  return out;
}
