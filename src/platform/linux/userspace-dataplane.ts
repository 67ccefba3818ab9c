/**
 * The userspace HA data plane: RFC 2473 IPv6-in-IPv6 between the HA and each host CoA, with the
 * packet loop in C on its own thread (native/src/forwarder.c, docs/dataplane.md "Userspace
 * backend").
 *
 *  - The kernel routes the served MNPs (the `homeAggregates`, or else each bound prefix) to a
 *    TUN device. The forwarder reads each inner packet, finds the binding by longest-prefix
 *    match on the destination and sends the packet on a protocol-41 raw socket bound to the HA
 *    address; the kernel prepends the outer header.
 *  - Tunnelled packets to the HA address arrive on that raw socket at the inner header. The
 *    forwarder applies the RFC 3963 §9 ingress checks (inner source inside a binding's MNPs,
 *    outer source = that binding's CoA) and writes the survivors to the TUN; the kernel forwards
 *    them.
 *  - Inner packets above `tunnelMtu` are answered with ICMPv6 Packet Too Big from the HA address
 *    (rate-limited), so PMTU discovery works end to end.
 *  - Per-binding counters, ingress drop counters, and hold/release buffers for handovers.
 *
 * Everything this backend installs hangs off its TUN device, which the kernel deletes with its
 * last fd: a crash leaves nothing behind. Only `net.ipv6.conf.all.forwarding=1` outlives it.
 */
import { KeyedQueue } from '../../core/keyed-queue.js';
import type {
  BindingCounters, DataplaneStats, HaDataplanePort, HandoverHold, TunnelBinding,
} from '../../ports/dataplane.js';
import { DataplaneError } from '../../ports/dataplane.js';
import {
  formatIpv6, formatPrefix, isRoutableUnicast, maskIpv6, prefixContains, type Ipv6Address, type Ipv6Prefix,
} from '../../wire/ipv6.js';
import {
  FORWARDER_COUNTERS, FORWARDER_STATS, FORWARDER_SYSCALLS, loadNative, SystemError, type NativeBinding,
  type NativeForwarder,
} from './native.js';
import { IPPROTO_ICMPV6, IPPROTO_IPV6 } from './raw-socket.js';
import { isNotFound, RT_TABLE_MAIN, RTPROT_ROAM6, Rtnl, writeSysctl } from './rtnl.js';

/** Default TUN device name. */
export const USERSPACE_TUN = 'roam6-u0';
/** Default inner MTU: 1500-byte paths minus the 40-byte outer header. */
export const DEFAULT_USERSPACE_TUNNEL_MTU = 1460;

/** A data-plane operation failed. Same code as the kernel backend's error. */
export class UserspaceDataplaneError extends DataplaneError {
  override name = 'UserspaceDataplaneError';
}

export interface UserspaceHaDataplaneOptions {
  /** The HA address: tunnel endpoint and outer source of every encapsulation. */
  readonly haAddress: Ipv6Address;
  /** TUN device name (default `roam6-u0`). */
  readonly tunName?: string;
  /** Largest inner packet sent into the tunnel (default 1460); bigger ones get a Packet Too Big. */
  readonly tunnelMtu?: number;
  /**
   * Aggregates the HA is home for (e.g. 2001:db8:100::/40): each is routed to the TUN once, and
   * a packet for a prefix without a binding is dropped and counted (dropsNoBinding). Without
   * aggregates each bound prefix gets its own route, installed by upsert().
   */
  readonly homeAggregates?: readonly Ipv6Prefix[];
  /** Packet Too Big rate limit: tokens per second (default 100) and bucket depth (default 10). */
  readonly ptbPerSecond?: number;
  readonly ptbBurst?: number;
  /** Bytes all hold buffers together may use (default 64 MiB). */
  readonly maxHeldBytes?: number;
  /** Packets per read/send batch in the forwarding thread (default 64). */
  readonly batch?: number;
  /** SO_RCVBUF / SO_SNDBUF of the protocol-41 socket (default 4 MiB, capped by net.core.[rw]mem_max). */
  readonly socketBufferSize?: number;
}

export interface HoldOptions extends HandoverHold {
  /** Packets buffered at most; later ones are dropped and counted (holdDropped, dropsHoldOverflow). */
  readonly maxPackets: number;
  /** The hold ends by itself this long after hold() if release() has not come. */
  readonly maxMs: number;
  /**
   * What happens to the buffer when maxMs runs out: 'flush' (default) sends it, in order, to the
   * binding's CoA at that moment, exactly as release() would; 'drop' discards it (counted).
   */
  readonly onExpiry?: 'flush' | 'drop';
}

export interface UserspaceBindingCounters extends BindingCounters {
  /** Packets in the hold buffer now. */
  readonly held: number;
  /** Packets dropped by the hold buffer (full, expired with 'drop', or removed while held). */
  readonly holdDropped: number;
  /** Packets sent because their hold expired ('flush'). */
  readonly holdExpired: number;
  readonly holding: boolean;
}

export interface UserspaceDataplaneStats extends DataplaneStats {
  readonly backend: 'userspace';
  readonly prefixes: number;
  /** Packets/bytes encapsulated (HA → hosts) and decapsulated (hosts → HA), all bindings. */
  readonly txPackets: number;
  readonly txBytes: number;
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** Kernel noise out of the TUN (multicast, link-local), dropped silently. */
  readonly dropsFiltered: number;
  readonly dropsMalformed: number;
  /** Inner packets above tunnelMtu (each answered by a Packet Too Big, rate permitting). */
  readonly dropsTooBig: number;
  readonly ptbSent: number;
  /** Packets lost to a failed send or TUN write. */
  readonly sendErrors: number;
  readonly heldPackets: number;
  readonly heldBytes: number;
  readonly holdExpired: number;
  /**
   * Ingress UDP/TCP checksums that an offloading sender left unfinished (veth, virtio) and the
   * forwarder completed before writing the packet to the TUN.
   */
  readonly checksumsCompleted: number;
  /** Locked batch phases of the forwarding thread; packets / batches is the batching achieved. */
  readonly batches: number;
  /** Batches that found the table locked by a change from JS, and the total wait (ns). */
  readonly lockWaits: number;
  readonly lockWaitNs: number;
  /** The forwarding thread is running. */
  readonly running: boolean;
  /** Why the forwarding thread stopped ("read EBADFD"), or null. */
  readonly error: string | null;
}

interface Installed {
  readonly id: number;
  readonly coa: Ipv6Address;
  readonly prefixes: readonly Ipv6Prefix[];
}

type StatName = (typeof FORWARDER_STATS)[number];
type CounterName = (typeof FORWARDER_COUNTERS)[number];

const keyOf = (p: Ipv6Prefix): string => formatPrefix(p);

function normalise(prefixes: readonly Ipv6Prefix[]): Ipv6Prefix[] {
  const seen = new Map<string, Ipv6Prefix>();
  for (const p of prefixes) {
    if (!Number.isInteger(p.len) || p.len < 0 || p.len > 128) throw new RangeError(`bad prefix length ${p.len}`);
    const m = { addr: maskIpv6(p.addr, p.len), len: p.len };
    seen.set(keyOf(m), m);
  }
  return [...seen.values()];
}

/** The forwarder's table format: 16 address bytes and the length, per prefix. */
export function encodePrefixes(prefixes: readonly Ipv6Prefix[]): Uint8Array {
  const out = new Uint8Array(17 * prefixes.length);
  prefixes.forEach((p, i) => {
    out.set(p.addr, 17 * i);
    out[17 * i + 16] = p.len;
  });
  return out;
}

function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) throw new RangeError(`tunnel MTU ${mtu} outside 1280..65535`);
  return mtu;
}

/**
 * HaDataplanePort on the native forwarder. Runs in the HA's namespace. Operations for one guest
 * are serialised; different guests proceed concurrently.
 */
export class UserspaceHaDataplane implements HaDataplanePort {
  readonly haAddress: Ipv6Address;
  readonly tunName: string;
  readonly tunnelMtu: number;
  private readonly tunMtu: number;
  private readonly aggregates: readonly Ipv6Prefix[];
  private readonly opts: UserspaceHaDataplaneOptions;
  private readonly queue = new KeyedQueue();
  private readonly bindings = new Map<string, Installed>();
  /** Which guest owns each prefix (a prefix moves to whoever registered it last). */
  private readonly owners = new Map<string, string>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly statsBuf: Float64Array;
  private readonly countersBuf: Float64Array;
  private native: NativeBinding | null = null;
  private forwarder: NativeForwarder | null = null;
  private nl: Rtnl | null = null;
  private tunIndex = 0;

  constructor(opts: UserspaceHaDataplaneOptions) {
    if (!isRoutableUnicast(opts.haAddress)) throw new RangeError(`HA address ${formatIpv6(opts.haAddress)} is not routable unicast`);
    this.opts = opts;
    this.haAddress = opts.haAddress;
    this.tunName = opts.tunName ?? USERSPACE_TUN;
    this.tunnelMtu = checkMtu(opts.tunnelMtu ?? DEFAULT_USERSPACE_TUNNEL_MTU);
    this.tunMtu = Math.max(1500, this.tunnelMtu);
    this.aggregates = normalise(opts.homeAggregates ?? []);
    for (const a of this.aggregates) {
      if (a.len === 0) throw new RangeError('refusing to route ::/0 into the tunnel');
      if (prefixContains(a, this.haAddress)) throw new RangeError(`aggregate ${keyOf(a)} contains the HA address`);
    }
    this.statsBuf = new Float64Array(FORWARDER_STATS.length);
    this.countersBuf = new Float64Array(FORWARDER_COUNTERS.length);
  }

  /** Create the TUN, open the sockets, start the forwarding thread and route the aggregates. Idempotent. */
  async start(): Promise<void> {
    if (this.forwarder) return;
    const native = (this.native ??= loadNative());
    const nl = this.rtnl();
    let tunFd = -1;
    let rawFd = -1;
    let icmpFd = -1;
    try {
      await writeSysctl('net.ipv6.conf.all.forwarding', '1');
      ({ fd: tunFd } = native.tunOpen(this.tunName, 'tun'));
      const link = await nl.linkByName(this.tunName);
      if (!link) throw new UserspaceDataplaneError(`TUN ${this.tunName} missing after creation`, null);
      // No link-local address: the kernel then sends no RS and no redirects out of the TUN.
      await nl.updateLink(link.index, { mtu: this.tunMtu, ipv6AddrGenMode: 'none' }, this.tunName);
      await nl.setLinkUp(link.index);
      this.tunIndex = link.index;
      const buffers = this.opts.socketBufferSize ?? 4 << 20;
      rawFd = native.rawOpen(IPPROTO_IPV6, { bindAddress: this.haAddress, recvBufferSize: buffers, sendBufferSize: buffers });
      // Send-only: the empty filter passes no ICMPv6 type up to this socket.
      icmpFd = native.rawOpen(IPPROTO_ICMPV6, { bindAddress: this.haAddress, icmp6Filter: [] });
      this.forwarder = new native.Forwarder({
        tunFd, rawFd, icmpFd, mtu: this.tunnelMtu, tunMtu: this.tunMtu,
        ptbPerSecond: this.opts.ptbPerSecond, ptbBurst: this.opts.ptbBurst,
        maxHeldBytes: this.opts.maxHeldBytes, batch: this.opts.batch,
      });
      tunFd = rawFd = icmpFd = -1; // the forwarder owns them now
      for (const agg of this.aggregates) await nl.replaceRoute(this.route(agg));
    } catch (err) {
      for (const fd of [tunFd, rawFd, icmpFd]) if (fd >= 0) native.close(fd);
      this.forwarder?.close();
      this.forwarder = null;
      throw err instanceof UserspaceDataplaneError ? err : new UserspaceDataplaneError('HA data plane start failed', null, err);
    }
  }

  /** Install or move a binding; a CoA change takes effect with the next packet. */
  upsert(binding: TunnelBinding): Promise<void> {
    return this.queue.run(binding.guest, () => this.doUpsert(binding));
  }

  remove(guest: string): Promise<void> {
    return this.queue.run(guest, async () => {
      const cur = this.bindings.get(guest);
      if (!cur) return;
      const fwd = this.fwd(guest);
      const owned = cur.prefixes.filter((p) => this.owners.get(keyOf(p)) === guest);
      fwd.remove(cur.id);
      for (const p of owned) this.owners.delete(keyOf(p));
      this.bindings.delete(guest);
      this.freeIds.push(cur.id);
      try {
        await this.uninstallRoutes(owned);
      } catch (err) {
        throw new UserspaceDataplaneError(`removing routes of ${guest}`, guest, err);
      }
    });
  }

  async counters(guest: string): Promise<UserspaceBindingCounters | null> {
    const cur = this.bindings.get(guest);
    if (!cur || !this.forwarder || !this.forwarder.counters(cur.id, this.countersBuf)) return null;
    const c = (name: CounterName): number => this.countersBuf[FORWARDER_COUNTERS.indexOf(name)] ?? 0;
    return {
      txPackets: c('txPackets'), txBytes: c('txBytes'), rxPackets: c('rxPackets'), rxBytes: c('rxBytes'),
      rxDropped: c('rxDropped'), held: c('held'), holdDropped: c('holdDropped'), holdExpired: c('holdExpired'),
      holding: c('holding') === 1,
    };
  }

  async stats(): Promise<UserspaceDataplaneStats> {
    if (this.forwarder) this.forwarder.stats(this.statsBuf);
    else this.statsBuf.fill(0);
    const s = (name: StatName): number => this.statsBuf[FORWARDER_STATS.indexOf(name)] ?? 0;
    const errno = s('errno');
    const syscall = FORWARDER_SYSCALLS[s('errSyscall')] ?? 'forwarder';
    return {
      backend: 'userspace',
      bindings: s('bindings'), prefixes: s('prefixes'),
      dropsNoBinding: s('dropsNoBinding'), dropsIngress: s('dropsIngress'), dropsHoldOverflow: s('dropsHold'),
      txPackets: s('txPackets'), txBytes: s('txBytes'), rxPackets: s('rxPackets'), rxBytes: s('rxBytes'),
      dropsFiltered: s('dropsFiltered'), dropsMalformed: s('dropsMalformed'), dropsTooBig: s('dropsTooBig'),
      ptbSent: s('ptbSent'), sendErrors: s('sendErrors'), heldPackets: s('heldPackets'), heldBytes: s('heldBytes'),
      holdExpired: s('holdExpired'), checksumsCompleted: s('checksumsCompleted'), batches: s('batches'),
      lockWaits: s('lockWaits'), lockWaitNs: s('lockWaitNs'),
      running: s('running') === 1,
      error: errno === 0 ? null : SystemError.fromErrno(syscall, errno).message,
    };
  }

  /**
   * Buffer the guest's HA → host packets instead of sending them (e.g. while it migrates), bounded
   * by `opts`. Calling it again while held updates the bounds and restarts the timer. Returns
   * false when the guest has no binding here.
   */
  hold(guest: string, opts: HoldOptions): Promise<boolean> {
    return this.queue.run(guest, async () => {
      const cur = this.bindings.get(guest);
      if (!cur) return false;
      return this.fwd(guest).hold(cur.id, opts.maxPackets, opts.maxMs, opts.onExpiry === 'drop', opts.nextCoa ?? null);
    });
  }

  /**
   * End the hold: every buffered packet goes, in order, to the binding's current CoA (so call it
   * after upsert() with the new CoA), before any later packet. Returns how many were buffered; 0
   * when not held or unknown. Queued behind earlier operations for the same guest.
   */
  release(guest: string): Promise<number> {
    return this.queue.run(guest, async () => {
      const cur = this.bindings.get(guest);
      if (!cur) return 0;
      return this.fwd(guest).release(cur.id) ?? 0;
    });
  }

  /**
   * Stop the forwarding thread and close the TUN (the kernel deletes it and every route through
   * it), then make sure no roam6 route through it is left. Held packets are dropped.
   */
  async stop(): Promise<void> {
    await this.queue.idle();
    const fwd = this.forwarder;
    this.forwarder = null;
    try {
      fwd?.close();
      const nl = this.rtnl();
      // Normally gone with the device; a leftover link of ours (never expected) goes too.
      for (const agg of this.aggregates) await this.deleteRoute(nl, agg);
      await nl.deleteLink(this.tunName);
    } catch (err) {
      throw new UserspaceDataplaneError('HA data plane stop failed', null, err);
    } finally {
      this.bindings.clear();
      this.owners.clear();
      this.freeIds.length = 0;
      this.nextId = 0;
      this.nl?.close();
      this.nl = null;
    }
  }

  private rtnl(): Rtnl {
    this.nl ??= Rtnl.open();
    return this.nl;
  }

  private fwd(guest: string | null): NativeForwarder {
    if (!this.forwarder) throw new UserspaceDataplaneError('HA data plane not started', guest);
    return this.forwarder;
  }

  private route(p: Ipv6Prefix): { dst: Ipv6Prefix; table: number; oif: number } {
    // No MTU metric: the kernel would honour it for forwarded packets too and send the Packet
    // Too Big itself. Without one, packets up to the TUN MTU reach the forwarder, which answers
    // the oversize ones (also the HA's own, which then learns the path MTU like any sender).
    return { dst: p, table: RT_TABLE_MAIN, oif: this.tunIndex };
  }

  private async deleteRoute(nl: Rtnl, p: Ipv6Prefix): Promise<void> {
    await nl.deleteRoute({ dst: p, table: RT_TABLE_MAIN, protocol: RTPROT_ROAM6 }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  private async installRoutes(prefixes: readonly Ipv6Prefix[]): Promise<void> {
    if (this.aggregates.length > 0 || prefixes.length === 0) return;
    const nl = this.rtnl();
    await Promise.all(prefixes.map((p) => nl.replaceRoute(this.route(p))));
  }

  private async uninstallRoutes(prefixes: readonly Ipv6Prefix[]): Promise<void> {
    if (this.aggregates.length > 0 || prefixes.length === 0 || !this.forwarder) return;
    const nl = this.rtnl();
    await Promise.all(prefixes.map((p) => this.deleteRoute(nl, p)));
  }

  private check(guest: string, coa: Ipv6Address, prefixes: readonly Ipv6Prefix[]): void {
    if (!isRoutableUnicast(coa)) throw new UserspaceDataplaneError(`CoA ${formatIpv6(coa)} is not routable unicast`, guest);
    for (const p of prefixes) {
      if (p.len === 0) throw new UserspaceDataplaneError('refusing to tunnel ::/0', guest);
      const hit = [this.haAddress, coa].find((a) => prefixContains(p, a));
      if (hit) throw new UserspaceDataplaneError(`prefix ${keyOf(p)} contains tunnel endpoint ${formatIpv6(hit)}`, guest);
    }
    // The outer packet to the CoA would be routed into the TUN and encapsulated again.
    const agg = this.aggregates.find((a) => prefixContains(a, coa));
    if (agg) throw new UserspaceDataplaneError(`CoA ${formatIpv6(coa)} lies inside the tunnelled aggregate ${keyOf(agg)}`, guest);
  }

  private async doUpsert(binding: TunnelBinding): Promise<void> {
    const { guest, coa } = binding;
    const fwd = this.fwd(guest);
    const prefixes = normalise(binding.prefixes);
    this.check(guest, coa, prefixes);
    const prev = this.bindings.get(guest);
    const id = prev?.id ?? this.freeIds.pop() ?? this.nextId++;
    const had = new Set((prev?.prefixes ?? []).map(keyOf));
    const added = prefixes.filter((p) => !had.has(keyOf(p)));
    const keep = new Set(prefixes.map(keyOf));
    const dropped = (prev?.prefixes ?? []).filter((p) => !keep.has(keyOf(p)) && this.owners.get(keyOf(p)) === guest);

    try {
      fwd.set(id, coa, encodePrefixes(prefixes));
    } catch (err) {
      if (!prev) this.freeIds.push(id);
      throw new UserspaceDataplaneError(`installing binding ${guest} → ${formatIpv6(coa)}`, guest, err);
    }
    // Prefixes taken from other bindings leave their records (the forwarder moved them already).
    for (const p of prefixes) {
      const other = this.owners.get(keyOf(p));
      if (other !== undefined && other !== guest) this.dropFromBinding(other, keyOf(p));
      this.owners.set(keyOf(p), guest);
    }
    for (const p of dropped) this.owners.delete(keyOf(p));
    this.bindings.set(guest, { id, coa, prefixes });
    try {
      await this.installRoutes(added);
    } catch (err) {
      await this.rollback(guest, prev, added);
      throw new UserspaceDataplaneError(`routing the prefixes of ${guest} to ${this.tunName}`, guest, err);
    }
    await this.uninstallRoutes(dropped).catch(() => { /* a stray route leads to "no binding" drops only */ });
  }

  /** Best effort: put the previous binding back (or remove the new one) and its routes. */
  private async rollback(guest: string, prev: Installed | undefined, added: readonly Ipv6Prefix[]): Promise<void> {
    const cur = this.bindings.get(guest);
    if (!cur || !this.forwarder) return;
    try {
      if (prev) {
        this.forwarder.set(cur.id, prev.coa, encodePrefixes(prev.prefixes));
        this.bindings.set(guest, prev);
        for (const p of prev.prefixes) this.owners.set(keyOf(p), guest);
      } else {
        this.forwarder.remove(cur.id);
        this.bindings.delete(guest);
        this.freeIds.push(cur.id);
      }
      const back = new Set((prev?.prefixes ?? []).map(keyOf));
      for (const p of added) if (!back.has(keyOf(p)) && this.owners.get(keyOf(p)) === guest) this.owners.delete(keyOf(p));
      await this.uninstallRoutes(added.filter((p) => !back.has(keyOf(p))));
    } catch { /* the original error is what the caller needs */ }
  }

  private dropFromBinding(guest: string, key: string): void {
    const b = this.bindings.get(guest);
    if (b) this.bindings.set(guest, { id: b.id, coa: b.coa, prefixes: b.prefixes.filter((q) => keyOf(q) !== key) });
  }
}
