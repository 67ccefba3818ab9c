/** IFLA_LINKINFO payloads built and read by rtnl.ts (checked against the kernel in test/netns/guest-link.test.ts). */
import { describe, expect, it } from 'vitest';

import { encodeBridgeLinkInfo, encodeVethLinkInfo, linkKind } from '../../../src/platform/linux/rtnl.js';

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
