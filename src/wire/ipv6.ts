/**
 * IPv6 addresses and prefixes as plain bytes.
 *
 * PURE: no node:* imports, no I/O. An address is a 16-byte Uint8Array; text forms follow
 * RFC 4291 §2.2 on input and RFC 5952 (canonical, lower case, longest zero run compressed)
 * on output.
 */

/** A 16-byte IPv6 address. */
export type Ipv6Address = Uint8Array & { readonly __ipv6: unique symbol };

export interface Ipv6Prefix {
  /** Network address, host bits zero. */
  readonly addr: Ipv6Address;
  /** Prefix length, 0..128. */
  readonly len: number;
}

export const IPV6_ADDR_LEN = 16;

/** Wrap 16 bytes as an address (copies, so the caller's buffer may be reused). */
export function ipv6FromBytes(bytes: Uint8Array, offset = 0): Ipv6Address {
  if (bytes.length - offset < 16) throw new RangeError('need 16 bytes for an IPv6 address');
  return bytes.slice(offset, offset + 16) as Ipv6Address;
}

/** Parse text; returns null for anything that is not a valid IPv6 address. */
export function tryParseIpv6(text: string): Ipv6Address | null {
  let s = text.trim();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.length === 0 || s.length > 45) return null;

  const out = new Uint8Array(16);
  const groups: number[] = [];
  let tail: number[] = [];
  const halves = s.split('::');
  if (halves.length > 2) return null;

  const parseHalf = (half: string, allowV4: boolean): number[] | null => {
    if (half === '') return [];
    const parts = half.split(':');
    const words: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowV4 && i === parts.length - 1 && p.includes('.')) {
        const octets = p.split('.');
        if (octets.length !== 4) return null;
        const b: number[] = [];
        for (const o of octets) {
          if (!/^\d{1,3}$/.test(o)) return null;
          const v = Number(o);
          if (v > 255) return null;
          b.push(v);
        }
        words.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
      words.push(parseInt(p, 16));
    }
    return words;
  };

  if (halves.length === 2) {
    const head = parseHalf(halves[0]!, false);
    const rest = parseHalf(halves[1]!, true);
    if (!head || !rest) return null;
    if (head.length + rest.length > 7) return null;
    groups.push(...head);
    tail = rest;
  } else {
    const all = parseHalf(s, true);
    if (!all || all.length !== 8) return null;
    groups.push(...all);
  }
  const words = [...groups, ...new Array<number>(8 - groups.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    out[i * 2] = words[i]! >> 8;
    out[i * 2 + 1] = words[i]! & 0xff;
  }
  return out as Ipv6Address;
}

export function parseIpv6(text: string): Ipv6Address {
  const a = tryParseIpv6(text);
  if (!a) throw new TypeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  return a;
}

/** RFC 5952 canonical text form. */
export function formatIpv6(addr: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((addr[i * 2]! << 8) | addr[i * 2 + 1]!);
  // Longest run of zero words (length ≥ 2); first one wins on a tie.
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (x: number) => x.toString(16);
  if (bestStart < 0) return w.map(hex).join(':');
  const left = w.slice(0, bestStart).map(hex).join(':');
  const right = w.slice(bestStart + bestLen).map(hex).join(':');
  // join() yields a flat string; a template literal would leave a rope that a long-lived
  // binding keeps (about 100 bytes more per address in the binding cache).
  return [left, right].join('::');
}

export function ipv6Equal(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Zero the host bits beyond `len`. */
export function maskIpv6(addr: Uint8Array, len: number): Ipv6Address {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    out[i] = addr[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out as Ipv6Address;
}

export function prefixContains(prefix: Ipv6Prefix, addr: Uint8Array): boolean {
  const full = prefix.len >> 3;
  for (let i = 0; i < full; i++) if (prefix.addr[i] !== addr[i]) return false;
  const rem = prefix.len & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (prefix.addr[full]! & mask) === (addr[full]! & mask);
}

/** True when `inner` lies entirely within `outer`. */
export function prefixCovers(outer: Ipv6Prefix, inner: Ipv6Prefix): boolean {
  return inner.len >= outer.len && prefixContains(outer, inner.addr);
}

/** Parse "addr/len"; returns null on bad text or host bits set. */
export function tryParsePrefix(text: string, opts: { allowHostBits?: boolean } = {}): Ipv6Prefix | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const addr = tryParseIpv6(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!addr || !/^\d{1,3}$/.test(lenText)) return null;
  const len = Number(lenText);
  if (len > 128) return null;
  const masked = maskIpv6(addr, len);
  if (!opts.allowHostBits && !ipv6Equal(masked, addr)) return null;
  return { addr: masked, len };
}

export function parsePrefix(text: string, opts: { allowHostBits?: boolean } = {}): Ipv6Prefix {
  const p = tryParsePrefix(text, opts);
  if (!p) throw new TypeError(`not an IPv6 prefix (addr/len, host bits zero): ${JSON.stringify(text)}`);
  return p;
}

export function formatPrefix(p: Ipv6Prefix): string {
  return [formatIpv6(p.addr), p.len].join('/');
}

export function prefixEqual(a: Ipv6Prefix, b: Ipv6Prefix): boolean {
  return a.len === b.len && ipv6Equal(a.addr, b.addr);
}

export function isUnspecified(a: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== 0) return false;
  return true;
}

export function isMulticast(a: Uint8Array): boolean {
  return a[0] === 0xff;
}

export function isLinkLocal(a: Uint8Array): boolean {
  return a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
}

/** Unicast, routable, not loopback/unspecified/multicast/link-local: usable as a CoA (RFC 6275 §6.1.7). */
export function isRoutableUnicast(a: Uint8Array): boolean {
  if (isUnspecified(a) || isMulticast(a) || isLinkLocal(a)) return false;
  let loop = a[15] === 1;
  for (let i = 0; i < 15 && loop; i++) if (a[i] !== 0) loop = false;
  return !loop;
}
