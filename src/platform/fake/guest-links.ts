/** A GuestLinkPort that records what the agent asked for, for unit tests and `dataplane: none`. */
import type { GuestPolicy } from '../../ports/guest-directory.js';
import type { GuestLinkPort } from '../../ports/host.js';

export class FakeGuestLinks implements GuestLinkPort {
  readonly links = new Map<string, { attached: boolean; announced: number }>();
  /** Guests whose interface "is here" (attach succeeds). */
  readonly present = new Set<string>();

  async ensure(guest: GuestPolicy): Promise<string> {
    if (!this.links.has(guest.id)) this.links.set(guest.id, { attached: false, announced: 0 });
    return `fake-${guest.id}`;
  }

  /** Every attach call, with the wait the agent asked for. */
  readonly attachCalls: { guest: string; waitUpMs: number | undefined }[] = [];
  /** When set, an attach that waits for the link (waitUpMs > 0) resolves only after this does: a link slow to come up. */
  linkUp: Promise<void> | null = null;

  async attach(guest: string, opts: { readonly waitUpMs?: number } = {}): Promise<boolean> {
    this.attachCalls.push({ guest, waitUpMs: opts.waitUpMs });
    if (this.linkUp && (opts.waitUpMs ?? 0) > 0) await this.linkUp;
    const l = this.links.get(guest);
    if (!l || !this.present.has(guest)) return false;
    l.attached = true;
    return true;
  }

  async announce(guest: string): Promise<void> {
    const l = this.links.get(guest);
    if (l) l.announced++;
  }

  async remove(guest: string): Promise<void> {
    this.links.delete(guest);
  }
}
