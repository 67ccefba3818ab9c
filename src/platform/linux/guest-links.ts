/**
 * LinuxGuestLinks: the host agent's GuestLinkPort on Linux. One GuestLink (bridge) and one
 * RaSender per guest held here, sharing one rtnetlink socket.
 *
 * Which interface is the guest's own (a QEMU TAP, a Xen vif, the netns driver's veth end) is
 * the hypervisor driver's knowledge, passed in as `guestInterface`.
 */
import type { Clock } from '../../ports/clock.js';
import type { GuestPolicy } from '../../ports/guest-directory.js';
import type { GuestLinkPort } from '../../ports/host.js';
import { silentLogger, type Logger } from '../../ports/log.js';
import { prefixEqual, type Ipv6Prefix } from '../../wire/ipv6.js';
import { GuestLink, GuestLinkError } from './guest-link.js';
import { RaSender, type NdSocketFactory, type RaSenderOptions } from './ra-sender.js';
import { Rtnl } from './rtnl.js';

/** RaSender settings that are the same for every guest on a host. */
export type SharedRaOptions = Omit<RaSenderOptions, 'identity' | 'prefixes' | 'ifname' | 'mtu' | 'clock' | 'log' | 'openSocket'>;

export interface LinuxGuestLinksOptions {
  /** The guest's own interface on this host, or null when it is not (yet) here. */
  readonly guestInterface: (guest: string) => string | null | Promise<string | null>;
  /** Guest link MTU (default 1460, the tunnel's inner MTU). */
  readonly mtu?: number;
  readonly ra?: SharedRaOptions;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** For tests: how RaSenders open their ICMPv6 socket. */
  readonly openSocket?: NdSocketFactory;
}

interface Held {
  link: GuestLink;
  readonly ra: RaSender;
  prefixes: readonly Ipv6Prefix[];
}

export class LinuxGuestLinks implements GuestLinkPort {
  readonly #opts: LinuxGuestLinksOptions;
  readonly #log: Logger;
  readonly #guests = new Map<string, Held>();
  #nl: Rtnl | null = null;

  constructor(opts: LinuxGuestLinksOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger;
  }

  /** Build or adopt the guest's bridge and start (or update) its Router Advertisements. */
  async ensure(guest: GuestPolicy): Promise<string> {
    const link = await GuestLink.ensure({
      guest: guest.id, prefixes: guest.mnps, rtnl: this.#rtnl(), ...(this.#opts.mtu !== undefined ? { mtu: this.#opts.mtu } : {}),
    });
    const held = this.#guests.get(guest.id);
    if (held) {
      if (!samePrefixes(held.prefixes, guest.mnps)) held.ra.setPrefixes(guest.mnps);
      held.prefixes = [...guest.mnps];
      held.link = link;
      return link.ifname;
    }
    const ra = RaSender.start({
      ...this.#opts.ra,
      identity: link.identity,
      prefixes: guest.mnps,
      mtu: link.mtu,
      log: this.#log,
      ...(this.#opts.clock ? { clock: this.#opts.clock } : {}),
      ...(this.#opts.openSocket ? { openSocket: this.#opts.openSocket } : {}),
    });
    this.#guests.set(guest.id, { link, ra, prefixes: [...guest.mnps] });
    this.#log.info({ guest: guest.id, link: String(link) }, 'guest link ready');
    return link.ifname;
  }

  /**
   * Enslave the guest's own interface if the hypervisor driver says it is here; with
   * `waitUpMs`, wait until the bridge can transmit (GuestLink.attach).
   */
  async attach(guest: string, opts: { readonly waitUpMs?: number } = {}): Promise<boolean> {
    const held = this.#guests.get(guest);
    if (!held) return false;
    const ifname = await this.#opts.guestInterface(guest);
    if (ifname === null) return false;
    const waitUpMs = opts.waitUpMs ?? 0;
    const t0 = performance.now();
    const up = await held.link.attach(ifname, waitUpMs);
    if (waitUpMs > 0) {
      const waitedMs = Math.round(performance.now() - t0);
      if (!up) this.#log.warn({ guest, ifname, bridge: held.link.ifname, waitedMs }, 'guest link still not up after attaching the guest interface; going on');
      else if (waitedMs >= 10) this.#log.info({ guest, ifname, bridge: held.link.ifname, waitedMs }, 'waited for the guest link to come up');
    }
    return true;
  }

  /** RA + unsolicited NAs now and for the next 1.5 s. Throws GuestLinkError for an unknown guest. */
  async announce(guest: string): Promise<void> {
    const held = this.#guests.get(guest);
    if (!held) throw new GuestLinkError(`announce: no guest link for ${guest} on this host`, guest);
    const outcome = held.ra.announce();
    if (outcome !== 'sent') this.#log.debug({ guest, outcome }, 'first announcement round not sent; later rounds will retry');
  }

  /** Stop advertising and delete the bridge (also one left by an earlier run). Idempotent. */
  async remove(guest: string): Promise<void> {
    const held = this.#guests.get(guest);
    this.#guests.delete(guest);
    held?.ra.stop();
    if (held) await held.link.destroy();
    else await GuestLink.remove(guest, this.#rtnl());
  }

  /** At start: delete every guest bridge here that does not belong to one of `keep`. */
  async removeLeftovers(keep: Iterable<string>): Promise<string[]> {
    return GuestLink.removeLeftovers(keep, this.#rtnl());
  }

  /** Stop every RaSender and close sockets; bridges stay, so the guests keep working. */
  close(): void {
    for (const held of this.#guests.values()) {
      held.ra.stop();
      held.link.close();
    }
    this.#guests.clear();
    this.#nl?.close();
    this.#nl = null;
  }

  #rtnl(): Rtnl {
    this.#nl ??= Rtnl.open();
    return this.#nl;
  }
}

function samePrefixes(a: readonly Ipv6Prefix[], b: readonly Ipv6Prefix[]): boolean {
  return a.length === b.length && a.every((p, i) => prefixEqual(p, b[i]!));
}
