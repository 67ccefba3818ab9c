/**
 * IEEE 802 MAC-48 addresses as bytes, and the modified EUI-64 interface identifier that
 * IPv6 derives from them (RFC 4291 §2.5.1 and Appendix A).
 *
 * PURE: no node:* imports, no I/O.
 */

/** A 6-octet MAC-48 address. */
export type MacAddress = Uint8Array & { readonly __mac: unique symbol };

export const MAC_ADDR_LEN = 6;

/** Bit 0x02 of the first octet: locally administered (the U/L bit). */
const LOCALLY_ADMINISTERED = 0x02;
/** Bit 0x01 of the first octet: group (multicast) address. */
const GROUP = 0x01;

/** Wrap 6 bytes as a MAC address (copies, so the caller's buffer may be reused). */
export function macFromBytes(bytes: Uint8Array, offset = 0): MacAddress {
  if (bytes.length - offset < MAC_ADDR_LEN) throw new RangeError('need 6 bytes for a MAC address');
  return bytes.slice(offset, offset + MAC_ADDR_LEN) as MacAddress;
}

/** Parse `02:00:5e:10:00:01` (also `-` separated, any case); null for anything else. */
export function tryParseMac(text: string): MacAddress | null {
  const parts = text.trim().split(/[:-]/);
  if (parts.length !== MAC_ADDR_LEN || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return null;
  return Uint8Array.from(parts, (p) => parseInt(p, 16)) as MacAddress;
}

export function parseMac(text: string): MacAddress {
  const mac = tryParseMac(text);
  if (!mac) throw new TypeError(`not a MAC address: ${JSON.stringify(text)}`);
  return mac;
}

/** Lower-case, colon-separated, as `ip link` prints it. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, MAC_ADDR_LEN), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === MAC_ADDR_LEN && b.length === MAC_ADDR_LEN && a.every((x, i) => x === b[i]);
}

/** Unicast and locally administered: safe to invent without an OUI (IEEE 802c "local"). */
export function isLocalUnicastMac(mac: Uint8Array): boolean {
  const first = mac[0] ?? 0;
  return (first & LOCALLY_ADMINISTERED) !== 0 && (first & GROUP) === 0;
}

/**
 * Modified EUI-64 interface identifier (RFC 4291 Appendix A): insert ff:fe in the middle
 * and invert the U/L bit. 02:11:22:33:44:55 → 0011:22ff:fe33:4455.
 */
export function modifiedEui64(mac: Uint8Array): Uint8Array {
  if (mac.length !== MAC_ADDR_LEN) throw new RangeError('need 6 bytes for a MAC address');
  return Uint8Array.of(mac[0]! ^ LOCALLY_ADMINISTERED, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!);
}
