/**
 * The router a guest sees on its link, derived from the guest id alone, so that every host
 * builds exactly the same one and a guest that moves never notices a new router:
 *
 *   digest   = SHA-256(UTF-8 guest id)
 *   MAC      = 02:d0:d1:d2:d3:d4          (d = digest octets; locally administered, unicast)
 *   LL       = fe80::/64 + modified EUI-64 of the MAC (RFC 4291 App. A)
 *   ifname   = "r6g" + d0..d4 in hex       (13 characters; IFNAMSIZ allows 15)
 *   alias    = "roam6 guest <id>"          (IFLA_IFALIAS; marks the bridge as ours)
 *   gateway  = <MNP>::1 per MNP             (the on-link address of the router)
 *
 * Why it matters (machine-notes §8): with a different gateway MAC on the destination host the
 * guest kept sending to the old MAC and lost 41.7 s of traffic to NUD; with the same MAC it
 * lost nothing. The interface name shows the MAC's last five octets, for operators.
 *
 * PURE.
 */
import { maskIpv6, type Ipv6Address, type Ipv6Prefix } from '../wire/ipv6.js';
import { modifiedEui64, type MacAddress } from '../wire/mac.js';
import { sha256 } from './sha256.js';

/** Every guest bridge name starts with this; see `isGuestLinkName`. */
export const GUEST_LINK_IFNAME_PREFIX = 'r6g';
/** IFLA_IFALIAS of every guest bridge starts with this. */
export const GUEST_LINK_ALIAS_PREFIX = 'roam6 guest ';
/** IFALIASZ is 256 including the terminating NUL. */
const MAX_ALIAS_BYTES = 255;
/** Octets of the digest used for the MAC (after the fixed 02) and the interface name. */
const DIGEST_OCTETS = 5;
const IFNAME_PATTERN = new RegExp(`^${GUEST_LINK_IFNAME_PREFIX}[0-9a-f]{${2 * DIGEST_OCTETS}}$`);
/** First MAC octet: locally administered (0x02), unicast (0x01 clear). */
const MAC_FIRST_OCTET = 0x02;

export interface GuestLinkIdentity {
  readonly guest: string;
  /** Name of the guest's bridge on every host, e.g. `r6g3fa91c07d2`. */
  readonly ifname: string;
  /** The gateway MAC the guest sees, e.g. 02:3f:a9:1c:07:d2. */
  readonly mac: MacAddress;
  /** The gateway's link-local address: fe80:: + modified EUI-64 of `mac`. */
  readonly linkLocal: Ipv6Address;
  /** IFLA_IFALIAS of the bridge: "roam6 guest <id>" (the id is cut short past 255 octets). */
  readonly alias: string;
}

/** Derive the guest link identity. Same id → same identity, on every host and every run. */
export function guestLinkIdentity(guest: string): GuestLinkIdentity {
  if (guest.length === 0) throw new TypeError('guest id must not be empty');
  const digest = sha256(new TextEncoder().encode(guest)).subarray(0, DIGEST_OCTETS);
  const mac = Uint8Array.of(MAC_FIRST_OCTET, ...digest) as MacAddress;
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  return { guest, ifname: `${GUEST_LINK_IFNAME_PREFIX}${hex}`, mac, linkLocal: linkLocalFromMac(mac), alias: guestLinkAlias(guest) };
}

/** fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4862 §5.3, RFC 2464 §5). */
export function linkLocalFromMac(mac: Uint8Array): Ipv6Address {
  const addr = new Uint8Array(16);
  addr[0] = 0xfe;
  addr[1] = 0x80;
  addr.set(modifiedEui64(mac), 8);
  return addr as Ipv6Address;
}

/**
 * The router's address in an MNP: the prefix with interface identifier ::1. The guest must not
 * use it (SLAAC and DHCPv6 never pick it). Throws RangeError for a prefix longer than /127.
 */
export function mnpGatewayAddress(mnp: Ipv6Prefix): Ipv6Address {
  if (mnp.len > 127) throw new RangeError(`MNP /${mnp.len} has no room for a gateway address`);
  const addr = maskIpv6(mnp.addr, mnp.len);
  addr[15] = addr[15]! | 1;
  return addr;
}

/** True for names `guestLinkIdentity` produces (used to find leftovers after a crash). */
export function isGuestLinkName(name: string): boolean {
  return IFNAME_PATTERN.test(name);
}

/** The alias marker for a guest: "roam6 guest <id>", cut on a character boundary to 255 octets. */
export function guestLinkAlias(guest: string): string {
  const full = `${GUEST_LINK_ALIAS_PREFIX}${guest}`;
  const encoder = new TextEncoder();
  if (encoder.encode(full).length <= MAX_ALIAS_BYTES) return full;
  const ellipsis = '…';
  let cut = '';
  for (const ch of full) {
    if (encoder.encode(cut + ch + ellipsis).length > MAX_ALIAS_BYTES) break;
    cut += ch;
  }
  return cut + ellipsis;
}

/** The guest id an alias names (possibly cut short), or null when the alias is not ours. */
export function guestFromAlias(alias: string | null | undefined): string | null {
  if (!alias?.startsWith(GUEST_LINK_ALIAS_PREFIX)) return null;
  const id = alias.slice(GUEST_LINK_ALIAS_PREFIX.length);
  return id.length > 0 ? id : null;
}

/** Prefix of the host-side end of a lab guest's veth (netns driver) and of QEMU TAPs. */
export const GUEST_PORT_IFNAME_PREFIX = 'r6v';

/**
 * The name of the guest's own interface on a host — the netns driver's veth end or the QEMU
 * driver's TAP — `r6v` + the same five digest octets as the bridge, so an operator can pair them.
 */
export function guestPortName(guest: string): string {
  return `${GUEST_PORT_IFNAME_PREFIX}${guestLinkIdentity(guest).ifname.slice(GUEST_LINK_IFNAME_PREFIX.length)}`;
}
