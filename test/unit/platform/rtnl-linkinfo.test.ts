/** IFLA_LINKINFO payloads built and read by rtnl.ts (checked against the kernel in test/netns/guest-link.test.ts). */
import { describe, expect, it } from 'vitest';

import { encodeBridgeLinkInfo, encodeVethLinkInfo, linkKind, linkNameOf } from '../../../src/platform/linux/rtnl.js';
import { encodeNlAttr } from '../../../src/platform/linux/seg6.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('IFLA_LINKINFO', () => {
  it('bridge: IFLA_INFO_KIND "bridge", IFLA_INFO_DATA { IFLA_BR_MCAST_SNOOPING u8 0 }', () => {
    // host byte order (little endian here): len 11 type 1 "bridge\0" pad; len 12 type 2 { len 5 type 23, 00, pad }
    expect(hex(encodeBridgeLinkInfo())).toBe('0b000100' + '62726964676500' + '00' + '0c000200' + '0500170000000000');
  });

  it('linkKind reads the kind back, and tolerates garbage', () => {
    expect(linkKind(encodeBridgeLinkInfo())).toBe('bridge');
    expect(linkKind(encodeVethLinkInfo('peer0', 1460))).toBe('veth');
    expect(linkKind(new Uint8Array(0))).toBeNull();
    expect(linkKind(Uint8Array.of(0xff, 0xff, 1, 0))).toBeNull();
    expect(linkKind(Uint8Array.of(2, 0, 1, 0))).toBeNull();
  });
});

describe('RTM_NEWLINK payload: the name (watchNewLinks)', () => {
  const ifinfomsg = new Uint8Array(16);
  const attr = (type: number, text: string) => encodeNlAttr(type, Uint8Array.from(Buffer.from(`${text}\0`, 'latin1')));

  it('finds IFLA_IFNAME (3) after the ifinfomsg, among other attributes', () => {
    const mtu = encodeNlAttr(4, Uint8Array.of(0xb4, 0x05, 0, 0));
    expect(linkNameOf(Buffer.concat([ifinfomsg, mtu, attr(3, 'r6p0123456789')]))).toBe('r6p0123456789');
    expect(linkNameOf(Buffer.concat([ifinfomsg, attr(3, 'eth0'), attr(20, 'an alias')]))).toBe('eth0');
  });

  it('null without a name, and for cut or garbled attributes', () => {
    expect(linkNameOf(ifinfomsg)).toBeNull();
    expect(linkNameOf(Buffer.concat([ifinfomsg, attr(20, 'alias only')]))).toBeNull();
    expect(linkNameOf(Buffer.concat([ifinfomsg, Uint8Array.of(40, 0, 3, 0, 0x65)]))).toBeNull(); // length past the end
    expect(linkNameOf(Buffer.concat([ifinfomsg, Uint8Array.of(2, 0, 3, 0)]))).toBeNull(); // length < 4
  });
});
