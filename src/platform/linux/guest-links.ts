/**
 * LinuxGuestLinks: the host agent's GuestLinkPort on Linux. One GuestLink (bridge) and one
 * RaSender per guest held here, sharing one rtnetlink socket.
 *
 * Which interface is the guest's own (a QEMU TAP, a Xen vif, the netns driver's veth end) is
 * the hypervisor driver's knowledge, passed in as `guestInterface`.
 *
 * Deferred delete (`deferRemoval`): deleting a bridge holds the kernel's RTNL lock for one RCU
 * barrier (~20 ms) and takes ~40 ms, during which every other link change on the machine
 * waits. With it, `remove()` only takes the bridge down and marks it
 * (GuestLink.markForRemoval); a reaper deletes marked bridges one at a time once this host's
 * guest links have been quiet for `idleMs`, or sooner when too many wait. `ensure()` of a
 * guest whose bridge waits takes it back. The mark is in the kernel, so `start()` after a
 * crash finds and deletes what the last process left (docs/guest-link.md).
 */
import type { Clock } from '../../ports/clock.js';
import type { GuestPolicy } from '../../ports/guest-directory.js';
import type { GuestLinkPort } from '../../ports/host.js';
import { silentLogger, type Logger } from '../../ports/log.js';
import { prefixEqual, type Ipv6Prefix } from '../../wire/ipv6.js';
import { KeyedQueue } from '../../core/keyed-queue.js';
import { systemClock } from '../system-clock.js';
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
  /** Delete released bridges later, in the background (see above). Default: at once, in `remove()`. */
  readonly deferRemoval?: DeferredRemovalOptions;
}

export interface DeferredRemovalOptions {
  /** Delete once no guest link was built, attached, announced or removed for this long (default 1000 ms). */
  readonly idleMs?: number;
  /** Delete while busy too when more bridges than this wait (default 1024; each holds ~60 KiB of kernel memory). */
  readonly maxPending?: number;
  /** Delete while busy too when the oldest has waited this long (default 600 s). */
  readonly maxWaitMs?: number;
}

const DEFERRED_DEFAULTS: Required<DeferredRemovalOptions> = { idleMs: 1000, maxPending: 1024, maxWaitMs: 600_000 };

interface Held {
  link: GuestLink;
  readonly ra: RaSender;
  prefixes: readonly Ipv6Prefix[];
}

export class LinuxGuestLinks implements GuestLinkPort {
  readonly #opts: LinuxGuestLinksOptions;
  readonly #log: Logger;
  readonly #guests = new Map<string, Held>();
  readonly #clock: Clock;
  readonly #defer: Required<DeferredRemovalOptions> | null;
  /** Guests whose bridge is marked for removal, oldest first, with when it was marked. */
  readonly #pending = new Map<string, number>();
  /** Per guest: ensure, remove and the reaper's delete of one guest's bridge never interleave. */
  readonly #queue = new KeyedQueue();
  #lastActivity = 0;
  #reapTimer: (() => void) | null = null;
  #reaping: Promise<void> | null = null;
  #closed = false;
  #reaped = 0;
  #nl: Rtnl | null = null;

  constructor(opts: LinuxGuestLinksOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger;
    this.#clock = opts.clock ?? systemClock;
    this.#defer = opts.deferRemoval ? { ...DEFERRED_DEFAULTS, ...opts.deferRemoval } : null;
  }

  /**
   * With deferred removal: find the bridges a previous process marked for removal and did not
   * delete (a crash, a stop) and hand them to the reaper. Returns how many.
   */
  async start(): Promise<number> {
    if (!this.#defer) return 0;
    const marked = (await GuestLink.list(this.#rtnl())).filter((r) => r.markedForRemoval && r.guest !== null);
    const at = this.#clock.now();
    for (const r of marked) if (!this.#guests.has(r.guest!)) this.#pending.set(r.guest!, at);
    if (marked.length) this.#log.info({ bridges: marked.length }, 'guest bridges left marked for removal; deleting them in the background');
    this.#scheduleReap(0);
    return marked.length;
  }

  /** Bridges marked for removal and not deleted yet, and how many the reaper deleted. */
  get removals(): { pending: number; deleted: number } {
    return { pending: this.#pending.size, deleted: this.#reaped };
  }

  /** Build or adopt the guest's bridge and start (or update) its Router Advertisements. */
  async ensure(guest: GuestPolicy): Promise<string> {
    this.#touch();
    // Taking a marked bridge back is ensure()'s adopt path: it resets the group and brings it up.
    const link = await this.#queue.run(guest.id, async () => {
      this.#pending.delete(guest.id);
      return GuestLink.ensure({
        guest: guest.id, prefixes: guest.mnps, rtnl: this.#rtnl(), ...(this.#opts.mtu !== undefined ? { mtu: this.#opts.mtu } : {}),
      });
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
    this.#touch();
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
    this.#touch();
    const held = this.#guests.get(guest);
    if (!held) throw new GuestLinkError(`announce: no guest link for ${guest} on this host`, guest);
    const outcome = held.ra.announce();
    if (outcome !== 'sent') this.#log.debug({ guest, outcome }, 'first announcement round not sent; later rounds will retry');
  }

  /**
   * Stop advertising and delete the bridge (also one left by an earlier run), or with deferred
   * removal take it down and mark it for the reaper. Idempotent.
   */
  async remove(guest: string): Promise<void> {
    this.#touch();
    const held = this.#guests.get(guest);
    this.#guests.delete(guest);
    held?.ra.stop();
    await this.#queue.run(guest, async () => {
      if (!this.#defer) {
        if (held) await held.link.destroy();
        else await GuestLink.remove(guest, this.#rtnl());
        return;
      }
      const marked = held ? await held.link.markForRemoval() : await GuestLink.markForRemoval(guest, this.#rtnl());
      held?.link.close();
      if (marked) {
        if (!this.#pending.has(guest)) this.#pending.set(guest, this.#clock.now());
        this.#scheduleReap(this.#defer.idleMs);
      }
    });
  }

  /** Delete every bridge marked for removal now, whatever the reaper's timing. Returns how many. */
  async flushRemovals(): Promise<number> {
    let n = 0;
    for (const guest of [...this.#pending.keys()]) if (await this.#reapOne(guest)) n++;
    return n;
  }

  /** At start: delete every guest bridge here that does not belong to one of `keep`. */
  async removeLeftovers(keep: Iterable<string>): Promise<string[]> {
    return GuestLink.removeLeftovers(keep, this.#rtnl());
  }

  /**
   * Stop every RaSender and close sockets; bridges stay, so the guests keep working. Bridges
   * marked for removal stay marked: the next start() deletes them.
   */
  close(): void {
    this.#closed = true;
    this.#reapTimer?.();
    this.#reapTimer = null;
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

  #touch(): void {
    this.#lastActivity = this.#clock.now();
  }

  #scheduleReap(delayMs: number): void {
    if (!this.#defer || this.#closed || this.#reapTimer || this.#reaping || this.#pending.size === 0) return;
    this.#reapTimer = this.#clock.after(Math.max(0, delayMs), () => {
      this.#reapTimer = null;
      this.#reaping = this.#reapWhileDue().finally(() => {
        this.#reaping = null;
        if (this.#pending.size > 0) this.#scheduleReap(this.#defer!.idleMs);
      });
    });
  }

  /** Delete marked bridges one at a time while it is due: quiet for idleMs, or too many / too old waiting. */
  async #reapWhileDue(): Promise<void> {
    const d = this.#defer!;
    while (!this.#closed && this.#pending.size > 0) {
      const [guest, markedAt] = this.#pending.entries().next().value as [string, number];
      const now = this.#clock.now();
      const due = now - this.#lastActivity >= d.idleMs || this.#pending.size > d.maxPending || now - markedAt >= d.maxWaitMs;
      if (!due) return;
      const ok = await this.#reapOne(guest).then(() => true, (err: unknown) => {
        this.#log.warn({ guest, err: String(err) }, 'could not delete a released guest bridge; will retry');
        return false;
      });
      if (!ok) {
        // Behind the others, and not before the next quiet period.
        this.#pending.delete(guest);
        this.#pending.set(guest, now);
        return;
      }
      // One bridge at a time: let the host's own link changes in between.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Delete one marked bridge unless ensure() took it back first. True when deleted. */
  #reapOne(guest: string): Promise<boolean> {
    return this.#queue.run(guest, async () => {
      if (!this.#pending.has(guest)) return false;
      const deleted = await GuestLink.removeMarked(guest, this.#rtnl());
      this.#pending.delete(guest);
      if (deleted) this.#reaped++;
      return deleted;
    });
  }
}

function samePrefixes(a: readonly Ipv6Prefix[], b: readonly Ipv6Prefix[]): boolean {
  return a.length === b.length && a.every((p, i) => prefixEqual(p, b[i]!));
}
