/**
 * In-memory guest directories: a fixed list (guests from the HA config file) and the
 * composition of two directories where the first one wins (config over Redis).
 */
import type { GuestDirectory, GuestPolicy } from '../ports/guest-directory.js';
import type { SecurityAssociation } from '../security/mn-ha-auth.js';

/** Two guests in one list share an id or an SPI. */
export class GuestDirectoryConflictError extends Error {
  static override readonly name = 'GuestDirectoryConflictError';
  readonly code = 'ROAM6_ERR_GUEST_CONFLICT';
  constructor(message: string) {
    super(message);
    this.name = 'GuestDirectoryConflictError';
  }
}

type SpiEntry = { readonly guest: GuestPolicy; readonly sa: SecurityAssociation };

/** A fixed set of guests. Throws GuestDirectoryConflictError on a duplicate id or SPI (naming both guests). */
export class MemoryGuestDirectory implements GuestDirectory {
  private readonly ids = new Map<string, GuestPolicy>();
  private readonly spis = new Map<number, SpiEntry>();

  constructor(guests: Iterable<GuestPolicy>) {
    for (const guest of guests) {
      if (this.ids.has(guest.id)) throw new GuestDirectoryConflictError(`guest ${JSON.stringify(guest.id)} is defined twice`);
      this.ids.set(guest.id, guest);
      for (const sa of guest.sas) {
        const other = this.spis.get(sa.spi);
        if (other) {
          throw new GuestDirectoryConflictError(
            `SPI ${sa.spi} of guest ${JSON.stringify(guest.id)} is already used by guest ${JSON.stringify(other.guest.id)}`,
          );
        }
        this.spis.set(sa.spi, { guest, sa });
      }
    }
  }

  bySpi(spi: number): SpiEntry | undefined {
    return this.spis.get(spi);
  }

  byId(id: string): GuestPolicy | undefined {
    return this.ids.get(id);
  }

  all(): Iterable<GuestPolicy> {
    return this.ids.values();
  }
}

/**
 * `primary` (the config file) over `secondary` (Redis). A guest id defined in `primary` hides
 * the same id in `secondary` entirely (all its SPIs too), and an SPI found in `primary` wins.
 * Lookups stay synchronous; both sides may change underneath (the Redis directory reloads).
 */
export class CompositeGuestDirectory implements GuestDirectory {
  constructor(
    private readonly primary: GuestDirectory,
    private readonly secondary: GuestDirectory,
  ) {}

  bySpi(spi: number): SpiEntry | undefined {
    const hit = this.primary.bySpi(spi);
    if (hit) return hit;
    const other = this.secondary.bySpi(spi);
    return other && !this.primary.byId(other.guest.id) ? other : undefined;
  }

  byId(id: string): GuestPolicy | undefined {
    return this.primary.byId(id) ?? this.secondary.byId(id);
  }

  *all(): Iterable<GuestPolicy> {
    yield* this.primary.all();
    for (const guest of this.secondary.all()) {
      if (!this.primary.byId(guest.id)) yield guest;
    }
  }
}
