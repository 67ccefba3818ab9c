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
import { linkOperUp, readSysctl, Rtnl, writeIpv6ConfSysctl, writeSysctl, type AddressInfo, type LinkInfo } from './rtnl.js';


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
}

export class GuestLink {
  readonly identity: GuestLinkIdentity;
  readonly mtu: number;
  readonly #prefixes: readonly Ipv6Prefix[];
  readonly #ownsRtnl: boolean;
  #nl: Rtnl | null;

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
      const bridge = await this.#bridge(nl);
      const port = await nl.linkByName(ifname);
      if (!port) throw new GuestLinkError(`${what}: no interface ${ifname}`, this.identity.guest);
      if (port.index === bridge.index) throw new GuestLinkError(`${what}: that is the bridge itself`, this.identity.guest);
      await writeIpv6ConfSysctl(ifname, 'disable_ipv6', '1');
      await nl.updateLink(port.index, { mtu: this.mtu, master: bridge.index }, ifname);
      if (!port.up) await nl.setLinkUp(port.index);
      return await waitForOperUp(nl, this.ifname, waitUpMs);
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
      ifname: l.name, index: l.index, guest: guestFromAlias(l.alias),
    })), 'listing guest bridges');
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
    // One request. An MTU set this way counts as set by the user, so the bridge keeps it
    // whatever its ports say (a fresh bridge would follow them, and jump to 1500 when empty).
    // addr_gen_mode none must be in place before the link first comes up.
    await nl.updateLink(link.index, {
      ...(created || link.mtu !== this.mtu ? { mtu: this.mtu } : {}),
      ...(link.address && macEqual(link.address, mac) ? {} : { address: mac }),
      ...(link.alias === alias ? {} : { alias }),
      ipv6AddrGenMode: 'none',
    }, ifname);
    await this.#configureIpv6(ifname);
    await this.#syncAddresses(nl, link.index);
    if (!link.up) await nl.setLinkUp(link.index);
  }

  /** The existing bridge if it is ours to adopt, null if there is none; throws if the name is taken. */
  async #adoptable(nl: Rtnl): Promise<LinkInfo | null> {
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
    await nl.createBridge(this.ifname, this.identity.mac);
    const link = await nl.linkByName(this.ifname);
    if (!link) throw new GuestLinkError(`bridge ${this.ifname} vanished right after creation`, this.identity.guest);
    return link;
  }

  /** Per-bridge IPv6 settings. accept_ra 0: an RA sent by the guest must never configure the host. */
  async #configureIpv6(ifname: string): Promise<void> {
    await writeIpv6ConfSysctl(ifname, 'forwarding', '1');
    await writeIpv6ConfSysctl(ifname, 'accept_ra', '0');
  }

  /** Add the link-local and gateway addresses (nodad), and remove any other address. */
  async #syncAddresses(nl: Rtnl, index: number): Promise<void> {
    const want = this.#wantedAddresses();
    const have = await nl.listAddresses(index);
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
  const key = 'net.ipv6.conf.all.forwarding';
  if ((await readSysctl(key).catch(() => '')) !== '1') await writeSysctl(key, '1');
}

/** Ours: a bridge with a guest-link name whose alias is our marker, or unset (crash before the alias). */
function isGuestBridge(l: LinkInfo): boolean {
  return l.kind === 'bridge' && isGuestLinkName(l.name) && (l.alias === null || guestFromAlias(l.alias) !== null);
}

/** Delete the bridge `ifname` if it is a roam6 guest bridge; refuse to touch anything else. */
async function removeGuestBridge(nl: Rtnl, ifname: string, guest: string): Promise<boolean> {
  const link = await nl.linkByName(ifname);
  if (!link) return false;
  if (!isGuestBridge(link)) {
    throw new GuestLinkError(`refusing to delete ${ifname}: not a roam6 guest bridge (kind ${link.kind ?? 'none'}, ` +
      `alias ${JSON.stringify(link.alias)})`, guest);
  }
  return nl.deleteLinkIndex(link.index, ifname);
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
