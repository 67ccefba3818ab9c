/**
 * lwtunnel seg6 / seg6local encoders. Every "kernel" vector below is the RTA_ENCAP payload that
 * kernel 6.18 dumps back (RTM_GETROUTE, via the `netlink` package) for a route installed by
 * iproute2 6.1, e.g. `ip -6 route add 2001:db8:100::/64 encap seg6 mode encap.red segs
 * 2001:db8:a::2 dev ha-c`. The encoder must produce exactly those bytes. Host byte order is
 * little-endian on the machines this runs on (x86-64); the test checks that first.
 */
import { describe, expect, it } from 'vitest';

import {
  decodeNlAttrs, decodeSeg6Encap, decodeSeg6LocalEncap, encodeNlAttr, encodeSeg6Encap, encodeSeg6LocalEncap, encodeSrh,
  LWTUNNEL_ENCAP_SEG6, LWTUNNEL_ENCAP_SEG6_LOCAL, Seg6LocalAction, Seg6TunnelMode,
} from '../../../src/platform/linux/seg6.js';
import { encodeVethLinkInfo, isNotFound, RtnlError, toRtnlError } from '../../../src/platform/linux/rtnl.js';
import { formatIpv6, parseIpv6 } from '../../../src/wire/ipv6.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const A = parseIpv6('2001:db8:a::2');
const B = parseIpv6('2001:db8:b::2');
const HA = parseIpv6('2001:db8:1::2');
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

describe.runIf(LITTLE_ENDIAN)('seg6 encap (LWTUNNEL_ENCAP_SEG6) against kernel dumps', () => {
  it('uses the uapi numbers (lwtunnel.h, seg6_iptunnel.h)', () => {
    expect(LWTUNNEL_ENCAP_SEG6).toBe(5);
    expect(LWTUNNEL_ENCAP_SEG6_LOCAL).toBe(7);
    expect([Seg6TunnelMode.Inline, Seg6TunnelMode.Encap, Seg6TunnelMode.L2Encap, Seg6TunnelMode.EncapRed,
      Seg6TunnelMode.L2EncapRed]).toEqual([0, 1, 2, 3, 4]);
    expect([Seg6LocalAction.EndDX6, Seg6LocalAction.EndDT6]).toEqual([5, 7]);
  });

  it.each([
    // `encap seg6 mode encap.red segs 2001:db8:a::2` — the HA→host tunnel route
    ['encap.red, 1 segment', Seg6TunnelMode.EncapRed, [A],
      '20000100' + '03000000' + '0002040000000000' + '20010db8000a00000000000000000002'],
    // `encap seg6 mode encap.red segs 2001:db8:1::2` — the host→HA reverse tunnel route
    ['encap.red, 1 segment (HA)', Seg6TunnelMode.EncapRed, [HA],
      '20000100' + '03000000' + '0002040000000000' + '20010db8000100000000000000000002'],
    // `encap seg6 mode encap segs 2001:db8:a::2`
    ['encap, 1 segment', Seg6TunnelMode.Encap, [A],
      '20000100' + '01000000' + '0002040000000000' + '20010db8000a00000000000000000002'],
    // `encap seg6 mode encap segs 2001:db8:a::2,2001:db8:b::2` — list stored in reverse
    ['encap, 2 segments', Seg6TunnelMode.Encap, [A, B],
      '30000100' + '01000000' + '0004040101000000' + '20010db8000b00000000000000000002' + '20010db8000a00000000000000000002'],
    ['encap.red, 2 segments', Seg6TunnelMode.EncapRed, [A, B],
      '30000100' + '03000000' + '0004040101000000' + '20010db8000b00000000000000000002' + '20010db8000a00000000000000000002'],
  ] as const)('%s', (_name, mode, segments, kernelHex) => {
    const encoded = encodeSeg6Encap({ mode, segments });
    expect(hex(encoded)).toBe(kernelHex);
    const back = decodeSeg6Encap(bytes(kernelHex));
    expect(back?.mode).toBe(mode);
    expect(back?.segments.map(formatIpv6)).toEqual(segments.map(formatIpv6));
  });

  it('SRH: hdrlen counts 8-octet units after the first 8; type 4; segments_left = first_segment = n-1', () => {
    const srh = encodeSrh([A, B, HA]);
    expect(srh.length).toBe(8 + 3 * 16);
    expect([...srh.subarray(0, 8)]).toEqual([0, 6, 4, 2, 2, 0, 0, 0]);
    expect(formatIpv6(srh.subarray(8, 24))).toBe('2001:db8:1::2');
    expect(formatIpv6(srh.subarray(40, 56))).toBe('2001:db8:a::2');
  });

  it('refuses inline mode and empty segment lists', () => {
    expect(() => encodeSeg6Encap({ mode: Seg6TunnelMode.Inline, segments: [A] })).toThrow(RangeError);
    expect(() => encodeSeg6Encap({ mode: Seg6TunnelMode.EncapRed, segments: [] })).toThrow(RangeError);
  });
});

describe.runIf(LITTLE_ENDIAN)('seg6local encap (LWTUNNEL_ENCAP_SEG6_LOCAL) against kernel dumps', () => {
  it('End.DX6 nh6 :: (decap, then route on the inner destination)', () => {
    const kernel = '08000100' + '05000000' + '14000500' + '00000000000000000000000000000000';
    expect(hex(encodeSeg6LocalEncap({ action: Seg6LocalAction.EndDX6, nh6: parseIpv6('::') }))).toBe(kernel);
    expect(decodeSeg6LocalEncap(bytes(kernel))).toEqual({ action: Seg6LocalAction.EndDX6, nh6: parseIpv6('::') });
  });

  it('End.DX6 nh6 2001:db8:1::1', () => {
    const kernel = '08000100' + '05000000' + '14000500' + '20010db8000100000000000000000001';
    expect(hex(encodeSeg6LocalEncap({ action: Seg6LocalAction.EndDX6, nh6: parseIpv6('2001:db8:1::1') }))).toBe(kernel);
  });

  it('End.DT6 table 254 (main)', () => {
    const kernel = '08000100' + '07000000' + '08000300' + 'fe000000';
    expect(hex(encodeSeg6LocalEncap({ action: Seg6LocalAction.EndDT6, table: 254 }))).toBe(kernel);
    expect(decodeSeg6LocalEncap(bytes(kernel))).toEqual({ action: Seg6LocalAction.EndDT6, table: 254 });
  });
});

describe.runIf(LITTLE_ENDIAN)('netlink attribute framing', () => {
  it('pads to 4 bytes but records the unpadded length', () => {
    expect(hex(encodeNlAttr(3, new Uint8Array([1, 2, 3, 4, 5])))).toBe('0900030001020304050000' + '00');
    expect(hex(encodeNlAttr(1, new Uint8Array(0)))).toBe('04000100');
  });

  it('decodes a stream and rejects truncated or overlong attributes', () => {
    const two = new Uint8Array([...encodeNlAttr(1, new Uint8Array([9])), ...encodeNlAttr(2, new Uint8Array([7, 7]))]);
    const m = decodeNlAttrs(two);
    expect([...(m?.get(1) ?? [])]).toEqual([9]);
    expect([...(m?.get(2) ?? [])]).toEqual([7, 7]);
    expect(decodeNlAttrs(two.subarray(0, 10))).toBeNull(); // half an attribute header
    expect(decodeNlAttrs(two.subarray(0, 13))).toBeNull(); // attribute runs past the end
    expect(decodeNlAttrs(bytes('ff000100'))).toBeNull();
    expect(decodeSeg6Encap(bytes('0800010003000000'))).toBeNull();
    expect(decodeSeg6LocalEncap(bytes('0800010001000000'))).toBeNull();
  });

  it('veth IFLA_LINKINFO: kind "veth", data { VETH_INFO_PEER { ifinfomsg, IFLA_IFNAME } }', () => {
    const li = encodeVethLinkInfo('p1');
    expect(hex(li)).toBe(
      '0900' + '0100' + '7665746800' + '000000' + // IFLA_INFO_KIND "veth\0" + pad
      '2000' + '0200' + // IFLA_INFO_DATA, 32 bytes
      '1c00' + '0100' + '00'.repeat(16) + // VETH_INFO_PEER: 28 bytes = hdr + ifinfomsg +
      '0700' + '0300' + '703100' + '00', // IFLA_IFNAME "p1\0" + pad
    );
  });
});

describe('netlink errors keep errno and the request', () => {
  it('parses the netlink package\'s "Request rejected: CODE"', () => {
    const e = toRtnlError('RTM_NEWROUTE 2001:db8:100::/64 table 6101', new Error('Request rejected: EEXIST'));
    expect(e).toBeInstanceOf(RtnlError);
    expect([e.code, e.errno, e.op]).toEqual(['EEXIST', 17, 'RTM_NEWROUTE 2001:db8:100::/64 table 6101']);
    expect(e.message).toBe('RTM_NEWROUTE 2001:db8:100::/64 table 6101: EEXIST');
  });

  it('keeps ErrnoException fields, maps timeouts, and recognises "not there"', () => {
    const sys = Object.assign(new Error('send failed'), { code: 'ENOBUFS', errno: -105, syscall: 'sendmsg' });
    expect(toRtnlError('op', sys).errno).toBe(105);
    expect(toRtnlError('op', new Error('Timeout has been reached')).code).toBe('ETIMEDOUT');
    expect(isNotFound(toRtnlError('op', new Error('Request rejected: ESRCH')))).toBe(true);
    expect(isNotFound(toRtnlError('op', new Error('Request rejected: EPERM')))).toBe(false);
  });
});
