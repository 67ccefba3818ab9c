/**
 * GuestLink: the guest's own L2 segment on a hypervisor host, built so that the guest sees the
 * same router on every host (docs/guest-link.md):
 *
 *   bridge r6g<hash>   MAC 02:<hash>, MTU 1460, alias "roam6 guest <id>", no automatic fe80::
 *     fe80::<EUI-64 of MAC>/64     the router's link-local address (RAs come from it)
 *     <MNP>::1/<len>               one per MNP, the on-link gateway address
 *     port: the guest's interface  (netns driver: host end of a veth; QEMU: a TAP)
 *
 * Every address is added with nodad: the same addresses exist on the source and destination
 * host during a move (on different links), and DAD would only delay them. The kernel answers
 * Neighbor Solicitations for them, with the Router flag set because forwarding is on.
 *
 * All methods are idempotent and act on the network namespace of the process. `ensure()`
 * adopts a bridge left by a previous run without disturbing its ports, so an agent restart
 * costs the guest nothing. Teardown finds bridges by name pattern and alias marker, never by
 * memory of a previous process.
 */
import {
  guestFromAlias, guestLinkIdentity, isGuestLinkName, mnpGatewayAddress, type GuestLinkIdentity,
} from '../../core/guest-link-identity.js';
import { formatIpv6, ipv6Equal, type Ipv6Address, type Ipv6Prefix } from '../../wire/ipv6.js';
import { formatMac, macEqual } from '../../wire/mac.js';
import { DEFAULT_TUNNEL_MTU } from './kernel-dataplane.js';
import { isNotFound, linkOperUp, readIpv6ConfSysctl, Rtnl, writeIpv6ConfSysctl, type AddressInfo, type LinkInfo } from './rtnl.js';

/**
 * Interface group (IFLA_GROUP) of a guest bridge released and waiting to be deleted
 * (`ip link show group 21046`). 0x5236 = "R6". The mark is what makes a deferred delete
 * crash-safe: a restarted agent finds the bridges by it. roam6 only ever deletes interfaces in
 * this group that are also its guest bridges (name, kind, alias), never by the group alone.
 */
export const GUEST_LINK_REMOVAL_GROUP = 0x5236;

/** An address the bridge must carry. */
interface BridgeAddress {
  readonly address: Ipv6Address;
  readonly prefixLen: number;
}

/** A guest link operation failed; `guest` names whose, `cause` holds the netlink/sysctl error. */
export class GuestLinkError extends Error {
  static override readonly name = 'GuestLinkError';
  readonly code = 'ROAM6_ERR_GUEST_LINK';
  constructor(message: string, readonly guest: string | null, cause?: unknown) {
    super(cause === undefined ? message : `${message}: ${describeCause(cause)}`, cause === undefined ? undefined : { cause });
    this.name = 'GuestLinkError';
  }
}

function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

export interface GuestLinkOptions {
  /** The guest id (its NAI); everything the guest sees is derived from it. */
  readonly guest: string;
  /** The guest's MNPs; each gets `<prefix>::1` on the bridge. At least one. */
  readonly prefixes: readonly Ipv6Prefix[];
  /** Link MTU of the bridge and its ports (default 1460, the tunnel's inner MTU). */
  readonly mtu?: number;
  /** A netlink socket to share (not closed by this object); by default the link opens its own. */
  readonly rtnl?: Rtnl;
}

/** A roam6 guest bridge found in this namespace. */
export interface GuestLinkRecord {
  readonly ifname: string;
  readonly index: number;
  /** From the alias; null when the alias was never written (a crash right after creation). */
  readonly guest: string | null;
  /** Released and waiting for deletion (in GUEST_LINK_REMOVAL_GROUP). */
  readonly markedForRemoval: boolean;
}

export class GuestLink {
  readonly identity: GuestLinkIdentity;
  readonly mtu: number;
  readonly #prefixes: readonly Ipv6Prefix[];
  readonly #ownsRtnl: boolean;
  #nl: Rtnl | null;
  /** The bridge's ifindex as ensure() found or made it (ifindexes are never reused in a namespace's life). */
  #index: number | null = null;

  private constructor(opts: GuestLinkOptions) {
    this.identity = guestLinkIdentity(opts.guest);
    this.mtu = opts.mtu ?? DEFAULT_TUNNEL_MTU;
    this.#prefixes = [...opts.prefixes];
    this.#ownsRtnl = opts.rtnl === undefined;
    this.#nl = opts.rtnl ?? null;
  }

  /**
   * Build the guest's bridge, or adopt and repair the one already there (after an agent
   * restart): MAC, MTU, alias, addresses (extra ones removed), up. Also turns on IPv6
   * forwarding for the namespace. Throws GuestLinkError.
   */
  static async ensure(opts: GuestLinkOptions): Promise<GuestLink> {
    if (opts.prefixes.length === 0) throw new GuestLinkError(`guest ${opts.guest} has no MNP`, opts.guest);
    const mtu = opts.mtu ?? DEFAULT_TUNNEL_MTU;
    if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) {
      throw new GuestLinkError(`guest link MTU ${mtu} for guest ${opts.guest}: IPv6 needs 1280..65535`, opts.guest);
    }
    const link = new GuestLink(opts);
    try {
      await link.#ensure();
    } catch (err) {
      link.close();
      throw err instanceof GuestLinkError ? err : new GuestLinkError(`building ${link.ifname} for guest ${opts.guest}`, opts.guest, err);
    }
    return link;
  }

  /** The bridge's name. */
  get ifname(): string {
    return this.identity.ifname;
  }

  get prefixes(): readonly Ipv6Prefix[] {
    return this.#prefixes;
  }

  /** `<MNP>::1` for every MNP, the addresses the guest may use as its gateway besides the fe80::. */
  get gatewayAddresses(): readonly Ipv6Address[] {
    return this.#prefixes.map(mnpGatewayAddress);
  }

  /**
   * Make `ifname` (the guest's interface: veth host end or TAP) a port of the bridge: IPv6 off
   * on it (a port must not speak for itself on the guest link), MTU, master, up. Idempotent.
   *
   * With `waitUpMs` (the guest runs here now), then wait up to that long until the bridge can
   * transmit: the guest is reachable only from then on. Until the kernel's linkwatch work has run for the new port and then for the
   * bridge, the bridge has no carrier and drops every packet sent on it, Neighbor Solicitations
   * included; that work needs the RTNL lock and comes late on a host busy with netlink (100 ms
   * and more in bench:handover). Registering before it pulls the guest's traffic here and the
   * HA releases the packets it held; the host's NS for the guest is dropped and retried only
   * after the 1 s RetransTimer, and about a second of traffic to the guest is lost. Resolves
   * true when the bridge is up, false when it was not within `waitUpMs` (the guest's side may
   * be down, e.g. a Xen vif before the domain runs: the caller goes on anyway).
   */
  async attach(ifname: string, waitUpMs = 0): Promise<boolean> {
    const what = `attaching ${ifname} to ${this.ifname}`;
    try {
      const nl = this.#rtnl();
      // Indexes by ioctl, not RTM_GETLINK: this runs while the guest is cut off, and a lookup
      // over rtnetlink waits for RTNL like any change does.
      let bridge = this.#index ?? (await this.#bridge(nl)).index;
      const port = await nl.indexOf(ifname);
      if (port === null) throw new GuestLinkError(`${what}: no interface ${ifname}`, this.identity.guest);
      if (port === bridge) throw new GuestLinkError(`${what}: that is the bridge itself`, this.identity.guest);
      await writeIpv6ConfSysctl(ifname, 'disable_ipv6', '1');
      try {
        await nl.updateLink(port, { mtu: this.mtu, master: bridge, up: true }, ifname);
      } catch (err) {
        // The bridge was replaced behind our back (deleted and built again): look it up once more.
        const now = await nl.indexOf(this.ifname);
        if (now === null || now === bridge) throw err;
        this.#index = bridge = now;
        await nl.updateLink(port, { mtu: this.mtu, master: bridge, up: true }, ifname);
      }
      // Without a wait, no lookup either (it would queue on RTNL): "up" is not known, say so.
      return waitUpMs > 0 ? await waitForOperUp(nl, this.ifname, waitUpMs) : true;
    } catch (err) {
      throw this.#wrap(what, err);
    }
  }

  /** Release `ifname` from the bridge. False when it is gone or not a port of this bridge. */
  async detach(ifname: string): Promise<boolean> {
    const what = `detaching ${ifname} from ${this.ifname}`;
    try {
      const nl = this.#rtnl();
      const [bridge, port] = await Promise.all([nl.linkByName(this.ifname), nl.linkByName(ifname)]);
      if (!bridge || !port || port.master !== bridge.index) return false;
      await nl.updateLink(port.index, { master: 0 }, ifname);
      return true;
    } catch (err) {
      throw this.#wrap(what, err);
    }
  }

  /** The names of the bridge's ports. */
  async ports(): Promise<string[]> {
    try {
      const nl = this.#rtnl();
      const bridge = await this.#bridge(nl);
      return (await nl.listLinks()).filter((l) => l.master === bridge.index).map((l) => l.name);
    } catch (err) {
      throw this.#wrap(`listing the ports of ${this.ifname}`, err);
    }
  }

  /**
   * Delete the bridge (its ports are released, not deleted) and close the netlink socket if
   * this object opened it. Idempotent. Returns false when there was no bridge.
   */
  async destroy(): Promise<boolean> {
    try {
      return await removeGuestBridge(this.#rtnl(), this.ifname, this.identity.guest);
    } catch (err) {
      throw this.#wrap(`removing ${this.ifname}`, err);
    } finally {
      this.close();
    }
  }

  /**
   * `GuestLink.markForRemoval` for this bridge, by the index ensure() found (no lookup). False
   * when it is gone.
   */
  async markForRemoval(): Promise<boolean> {
    if (this.#index === null) return GuestLink.markForRemoval(this.identity.guest, this.#rtnl());
    try {
      await this.#rtnl().updateLink(this.#index, { group: GUEST_LINK_REMOVAL_GROUP }, this.ifname);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.#wrap(`marking ${this.ifname} for removal`, err);
    }
  }

  /** Release the netlink socket (if owned) and leave the kernel state as it is. */
  close(): void {
    if (this.#ownsRtnl) this.#nl?.close();
    this.#nl = null;
  }

  /**
   * Delete the bridge of `guest` without an object for it (e.g. after a restart). Idempotent;
   * false when there was none. Refuses to delete an interface that is not a roam6 guest bridge.
   */
  static async remove(guest: string, rtnl?: Rtnl): Promise<boolean> {
    const { ifname } = guestLinkIdentity(guest);
    return withRtnl(rtnl, (nl) => removeGuestBridge(nl, ifname, guest), `removing ${ifname} of guest ${guest}`);
  }

  /** Every roam6 guest bridge in this namespace (ours by name pattern, kind and alias marker). */
  static async list(rtnl?: Rtnl): Promise<GuestLinkRecord[]> {
    return withRtnl(rtnl, async (nl) => (await nl.listLinks()).filter(isGuestBridge).map((l) => ({
      ifname: l.name, index: l.index, guest: guestFromAlias(l.alias), markedForRemoval: l.group === GUEST_LINK_REMOVAL_GROUP,
    })), 'listing guest bridges');
  }

  /**
   * Release the bridge of `guest` for a later delete: put it in GUEST_LINK_REMOVAL_GROUP, one
   * cheap request (the delete is not: docs/guest-link.md, "Deferred delete"). It stays up with
   * its addresses until deleted; taking it down here would cost two walks of the namespace's
   * whole IPv6 routing table (nine routes per guest), and the delete does those anyway. False
   * when there is no bridge. `ensure()` of the same guest takes a marked bridge back.
   */
  static async markForRemoval(guest: string, rtnl?: Rtnl): Promise<boolean> {
    const { ifname } = guestLinkIdentity(guest);
    return withRtnl(rtnl, async (nl) => {
      const link = await nl.linkByName(ifname);
      if (!link) return false;
      refuseForeign(link, guest);
      await nl.updateLink(link.index, { group: GUEST_LINK_REMOVAL_GROUP }, ifname);
      return true;
    }, `marking ${ifname} of guest ${guest} for removal`);
  }

  /**
   * Delete the bridge of `guest` if it is still marked for removal. False when it is gone or
   * was taken back by `ensure()` meanwhile.
   */
  static async removeMarked(guest: string, rtnl?: Rtnl): Promise<boolean> {
    const { ifname } = guestLinkIdentity(guest);
    return withRtnl(rtnl, async (nl) => {
      const link = await nl.linkByName(ifname);
      if (!link || link.group !== GUEST_LINK_REMOVAL_GROUP) return false;
      refuseForeign(link, guest);
      return nl.deleteLinkIndex(link.index, ifname);
    }, `removing ${ifname} of guest ${guest}`);
  }

  /**
   * Remove every roam6 guest bridge except those of the `keep` guests: the leftovers of a
   * crashed or stopped agent. Returns the names removed.
   */
  static async removeLeftovers(keep: Iterable<string>, rtnl?: Rtnl): Promise<string[]> {
    const keepNames = new Set(Array.from(keep, (g) => guestLinkIdentity(g).ifname));
    return withRtnl(rtnl, async (nl) => {
      const removed: string[] = [];
      for (const rec of await GuestLink.list(nl)) {
        if (keepNames.has(rec.ifname)) continue;
        try {
          if (await nl.deleteLinkIndex(rec.index, rec.ifname)) removed.push(rec.ifname);
        } catch (err) {
          throw new GuestLinkError(`removing leftover guest bridge ${rec.ifname}`, rec.guest, err);
        }
      }
      return removed;
    }, 'removing leftover guest bridges');
  }

  // ---- internals ----------------------------------------------------------------------

  async #ensure(): Promise<void> {
    const nl = this.#rtnl();
    const { ifname, mac, alias } = this.identity;
    await ensureForwarding();
    let link = await this.#adoptable(nl);
    const created = link === null;
    if (!link) link = await this.#create(nl);
    this.#index = link.index;
    // One request. An MTU set this way counts as set by the user, so the bridge keeps it
    // whatever its ports say (a fresh bridge would follow them, and jump to 1500 when empty).
    // addr_gen_mode none must be in place before the link first comes up.
    // A bridge marked for removal (GUEST_LINK_REMOVAL_GROUP) is taken back here.
    await nl.updateLink(link.index, {
      ...(created || link.mtu !== this.mtu ? { mtu: this.mtu } : {}),
      ...(link.address && macEqual(link.address, mac) ? {} : { address: mac }),
      ...(link.alias === alias ? {} : { alias }),
      ...(link.group === 0 ? {} : { group: 0 }),
      ipv6AddrGenMode: 'none',
    }, ifname);
    await this.#configureIpv6(ifname, created);
    // A bridge made just now has no address yet (addr_gen_mode none before it first came up):
    // no need to dump this namespace's addresses (thousands, on a busy host) to find extras.
    await this.#syncAddresses(nl, link.index, created);
    if (!link.up) await nl.setLinkUp(link.index);
  }

  /** The existing bridge if it is ours to adopt, null if there is none; throws if the name is taken. */
  async #adoptable(nl: Rtnl): Promise<LinkInfo | null> {
    // Usually there is none: ask by ioctl first, which does not wait for RTNL.
    if ((await nl.indexOf(this.ifname)) === null) return null;
    const link = await nl.linkByName(this.ifname);
    if (!link) return null;
    if (!isGuestBridge(link) || (link.alias !== null && link.alias !== this.identity.alias)) {
      throw new GuestLinkError(
        `interface ${this.ifname} exists but is not roam6's bridge for guest ${this.identity.guest} ` +
        `(kind ${link.kind ?? 'none'}, alias ${JSON.stringify(link.alias)})`, this.identity.guest);
    }
    return link;
  }

  async #create(nl: Rtnl): Promise<LinkInfo> {
    const link = (await nl.createBridge(this.ifname, this.identity.mac)) ?? (await nl.linkByName(this.ifname));
    if (!link) throw new GuestLinkError(`bridge ${this.ifname} vanished right after creation`, this.identity.guest);
    return link;
  }

  /**
   * Per-bridge IPv6 settings. accept_ra 0: an RA sent by the guest must never configure the host.
   * `forwarding` is read first and written only when it differs: a new bridge inherits 1 from
   * `all` (ensureForwarding), and a write takes RTNL by trylock, spinning while another holds
   * it (rtnl.ts, sysctl).
   */
  async #configureIpv6(ifname: string, fresh: boolean): Promise<void> {
    await ensureIpv6Conf(ifname, 'forwarding', '1');
    // A new link has the namespace's default accept_ra (1 unless changed): just write it.
    if (fresh) await writeIpv6ConfSysctl(ifname, 'accept_ra', '0');
    else await ensureIpv6Conf(ifname, 'accept_ra', '0');
  }

  /** Add the link-local and gateway addresses (nodad), and remove any other address (`fresh`: there is none). */
  async #syncAddresses(nl: Rtnl, index: number, fresh: boolean): Promise<void> {
    const want = this.#wantedAddresses();
    const have = fresh ? [] : await nl.listAddresses(index);
    const isWanted = (a: AddressInfo): boolean => want.some((w) => w.prefixLen === a.prefixLen && ipv6Equal(w.address, a.address));
    for (const a of have.filter((x) => !isWanted(x))) await nl.deleteAddress(index, a.address, a.prefixLen);
    for (const w of want) await nl.addAddress(index, w.address, w.prefixLen);
  }

  #wantedAddresses(): BridgeAddress[] {
    return [
      { address: this.identity.linkLocal, prefixLen: 64 },
      ...this.#prefixes.map((p) => ({ address: mnpGatewayAddress(p), prefixLen: p.len })),
    ];
  }

  async #bridge(nl: Rtnl): Promise<LinkInfo> {
    const bridge = await nl.linkByName(this.ifname);
    if (!bridge) throw new GuestLinkError(`bridge ${this.ifname} of guest ${this.identity.guest} does not exist`, this.identity.guest);
    return bridge;
  }

  #rtnl(): Rtnl {
    this.#nl ??= Rtnl.open();
    return this.#nl;
  }

  #wrap(what: string, err: unknown): GuestLinkError {
    return err instanceof GuestLinkError ? err : new GuestLinkError(`${what} (guest ${this.identity.guest})`, this.identity.guest, err);
  }

  /** For logs: "r6g3fa91c07d2 02:3f:a9:1c:07:d2 fe80::3f:a9ff:fe1c:7d2". */
  toString(): string {
    return `${this.ifname} ${formatMac(this.identity.mac)} ${formatIpv6(this.identity.linkLocal)}`;
  }
}

/**
 * Poll `ifname` until it can transmit (linkOperUp), every `pollMs`, for at most `timeoutMs`.
 * True when it is; false on timeout or when the link is gone.
 */
export async function waitForOperUp(
  nl: Pick<Rtnl, 'linkByName'>,
  ifname: string,
  timeoutMs: number,
  opts: { pollMs?: number; now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<boolean> {
  const now = opts.now ?? (() => performance.now());
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const end = now() + timeoutMs;
  for (;;) {
    const l = await nl.linkByName(ifname);
    if (!l) return false;
    if (linkOperUp(l)) return true;
    if (now() >= end) return false;
    await sleep(opts.pollMs ?? 2);
  }
}

/**
 * net.ipv6.conf.all.forwarding=1: routers answer NS with R=1 and join ff02::2, and the data
 * plane forwards. Written only when off, because every write of 1 also purges RA-learnt default
 * routes on interfaces with accept_ra != 2 (rt6_purge_dflt_routers; docs/guest-link.md).
 */
async function ensureForwarding(): Promise<void> {
  // Checked at most once a second: cheap, but once per guest link adds up on a busy host.
  const now = Date.now();
  if (now - forwardingSeenOnAt < 1000) return;
  if ((await readIpv6ConfSysctl('all', 'forwarding').catch(() => '')) !== '1') await writeIpv6ConfSysctl('all', 'forwarding', '1');
  forwardingSeenOnAt = now;
}
let forwardingSeenOnAt = Number.NEGATIVE_INFINITY;

/** Write `net.ipv6.conf.<ifname>.<key>` unless it already holds `value`. */
async function ensureIpv6Conf(ifname: string, key: string, value: string): Promise<void> {
  if ((await readIpv6ConfSysctl(ifname, key).catch(() => '')) === value) return;
  await writeIpv6ConfSysctl(ifname, key, value);
}

/** Ours: a bridge with a guest-link name whose alias is our marker, or unset (crash before the alias). */
function isGuestBridge(l: LinkInfo): boolean {
  return l.kind === 'bridge' && isGuestLinkName(l.name) && (l.alias === null || guestFromAlias(l.alias) !== null);
}

/** Delete the bridge `ifname` if it is a roam6 guest bridge; refuse to touch anything else. */
async function removeGuestBridge(nl: Rtnl, ifname: string, guest: string): Promise<boolean> {
  const link = await nl.linkByName(ifname);
  if (!link) return false;
  refuseForeign(link, guest);
  return nl.deleteLinkIndex(link.index, ifname);
}

function refuseForeign(link: LinkInfo, guest: string): void {
  if (!isGuestBridge(link)) {
    throw new GuestLinkError(`refusing to delete ${link.name}: not a roam6 guest bridge (kind ${link.kind ?? 'none'}, ` +
      `alias ${JSON.stringify(link.alias)})`, guest);
  }
}

/** Run `fn` on the given socket, or on a fresh one closed afterwards; errors become GuestLinkError. */
async function withRtnl<T>(rtnl: Rtnl | undefined, fn: (nl: Rtnl) => Promise<T>, what: string): Promise<T> {
  const nl = rtnl ?? Rtnl.open();
  try {
    return await fn(nl);
  } catch (err) {
    throw err instanceof GuestLinkError ? err : new GuestLinkError(what, null, err);
  } finally {
    if (!rtnl) nl.close();
  }
}
