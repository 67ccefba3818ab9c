/** Guests for unit tests: an in-memory directory and deterministic keys. */
import { parsePrefix } from '../../src/wire/ipv6.js';
import type { GuestDirectory, GuestPolicy } from '../../src/ports/guest-directory.js';
import type { SecurityAssociation } from '../../src/security/mn-ha-auth.js';

export function testGuest(n: number, opts: Partial<GuestPolicy> = {}): GuestPolicy {
  const sa: SecurityAssociation = { spi: 1000 + n, algorithm: 'hmac-sha1-96', key: Uint8Array.from({ length: 16 }, (_, i) => (i * 7 + n) & 0xff) };
  const hi = (n >> 16) & 0xff;
  const mid = n & 0xffff;
  return {
    id: `g${n}@roam6.test`,
    mnps: [parsePrefix(`2001:db8:${(0x100 + hi).toString(16)}:${mid.toString(16)}::/64`)],
    sas: [sa],
    mobileRouter: true,
    ...opts,
  };
}

export class TestGuestDirectory implements GuestDirectory {
  private readonly ids = new Map<string, GuestPolicy>();
  private readonly spis = new Map<number, { guest: GuestPolicy; sa: SecurityAssociation }>();
  constructor(guests: Iterable<GuestPolicy> = []) {
    for (const g of guests) this.add(g);
  }
  add(g: GuestPolicy): void {
    this.ids.set(g.id, g);
    for (const sa of g.sas) this.spis.set(sa.spi, { guest: g, sa });
  }
  bySpi(spi: number) {
    return this.spis.get(spi);
  }
  byId(id: string) {
    return this.ids.get(id);
  }
  all() {
    return this.ids.values();
  }
}
