/**
 * The kernel data plane: RFC 2473 IPv6-in-IPv6 between the HA and each host CoA, built from
 * seg6 lightweight tunnels because this kernel has no ip6_tunnel (docs/dataplane.md).
 *
 *  - Encapsulation: one `encap seg6 mode encap.red segs <remote>` route per prefix. With one
 *    segment, reduced encapsulation adds a bare outer IPv6 header (next header 41, no SRH).
 *    The outer source is the namespace-wide `ip sr tunsrc`.
 *  - Decapsulation: `seg6local action End.DX6 nh6 ::` on our tunnel endpoint address in
 *    TABLE_DECAP, reached by a `to <endpoint> ipproto ipv6` rule placed before the `local` rule.
 *  - HA only: a PMTU "funnel" (a veth pair in the HA namespace) so that inner packets larger than
 *    the tunnel MTU get an ICMPv6 Packet Too Big sent to their real source, and an nft table that
 *    drops ICMPv6 redirects (the one-armed HA would send them into the tunnel) and clamps TCP MSS.
 *
 * Every route carries RTPROT_ROAM6 and lives in a roam6 table; rules use roam6 priorities; the
 * nft table is `ip6 roam6`. stop() removes exactly those, so a fresh process can clean up after a
 * crashed one. The kernel keeps no per-route counters: counters() reports zeros.
 */
import { spawn } from 'node:child_process';
import { KeyedQueue } from '../../core/keyed-queue.js';
import type {
  BindingCounters, DataplaneStats, HaDataplanePort, HostDataplanePort, TunnelBinding,
} from '../../ports/dataplane.js';
import { DataplaneError } from '../../ports/dataplane.js';
import {
  formatIpv6, formatPrefix, ipv6Equal, isRoutableUnicast, maskIpv6, parseIpv6, prefixContains,
  type Ipv6Address, type Ipv6Prefix,
} from '../../wire/ipv6.js';
import {
  IPPROTO_IPV6, ROAM6_RULE_PREFS, ROAM6_TABLES, RT_TABLE_LOCAL, RTPROT_ROAM6, RULE_PREF_DECAP,
  RULE_PREF_FUNNEL, RULE_PREF_LOCAL, RULE_PREF_MNP, Rtnl, Seg6Genl, TABLE_DECAP, TABLE_ENCAP,
  TABLE_FUNNEL, writeSysctl, type RouteSpec,
} from './rtnl.js';
import {
  LWTUNNEL_ENCAP_SEG6, LWTUNNEL_ENCAP_SEG6_LOCAL, Seg6LocalAction, Seg6TunnelMode, decodeSeg6Encap,
  encodeSeg6Encap, encodeSeg6LocalEncap,
} from './seg6.js';

/** Default inner MTU: 1500-byte paths minus the 40-byte outer header. */
export const DEFAULT_TUNNEL_MTU = 1460;
/** PMTU funnel veth pair on the HA: packets for an MNP leave by FUNNEL_IN and come back in on FUNNEL_OUT. */
export const FUNNEL_IN = 'roam6-fi';
export const FUNNEL_OUT = 'roam6-fo';
/** Link-local next hop on FUNNEL_OUT that the funnel routes point at. */
export const FUNNEL_GATEWAY: Ipv6Address = parseIpv6('fe80::2');
/** The nft table roam6 owns (family ip6). */
export const NFT_TABLE = 'roam6';

const UNSPECIFIED: Ipv6Address = parseIpv6('::');
const DEFAULT_ROUTE: Ipv6Prefix = { addr: UNSPECIFIED, len: 0 };

/** A data-plane operation failed; `cause` is the RtnlError (with errno/code and the request). */
export class KernelDataplaneError extends DataplaneError {
  override name = 'KernelDataplaneError';
}

export interface KernelHaDataplaneOptions {
  /** The HA address: tunnel endpoint (decapsulation) and outer source of every encapsulation. */
  readonly haAddress: Ipv6Address;
  /** Interface that holds haAddress / leads to the CoAs. Default: the interface holding haAddress. */
  readonly uplink?: string;
  /** Inner MTU of the tunnel (default 1460). TCP MSS is clamped to tunnelMtu - 60. */
  readonly tunnelMtu?: number;
  /** Install the PMTU funnel so oversize inner packets get a Packet Too Big (default true). */
  readonly pmtuFunnel?: boolean;
  /** Install the `ip6 roam6` nft table (redirect drop, MSS clamp); needs the `nft` binary (default true). */
  readonly nft?: boolean;
  /** Path of the nft binary (default "nft" on PATH). */
  readonly nftBinary?: string;
  /**
   * Aggregates the HA is home for (e.g. 2001:db8:100::/40). Each gets an `unreachable` route below
   * the per-binding routes, so traffic for a prefix without a binding is answered with ICMPv6
   * unreachable instead of bouncing between the HA and its upstream until the hop limit runs out.
   */
  readonly homeAggregates?: readonly Ipv6Prefix[];
}

interface InstalledBinding {
  readonly coa: Ipv6Address;
  readonly prefixes: readonly Ipv6Prefix[];
}

const keyOf = (p: Ipv6Prefix): string => formatPrefix(p);

/**
 * A tunnelled prefix must not be ::/0 and must not contain a tunnel endpoint: the outer packet
 * would match the prefix's own route and be encapsulated again (a loop inside the kernel).
 */
function checkTunnelled(prefixes: readonly Ipv6Prefix[], endpoints: readonly Ipv6Address[], guest: string): void {
  for (const p of prefixes) {
    if (p.len === 0) throw new KernelDataplaneError('refusing to tunnel ::/0', guest);
    const hit = endpoints.find((a) => prefixContains(p, a));
    if (hit) throw new KernelDataplaneError(`prefix ${keyOf(p)} contains tunnel endpoint ${formatIpv6(hit)}`, guest);
  }
}

function normalise(prefixes: readonly Ipv6Prefix[]): Ipv6Prefix[] {
  const seen = new Map<string, Ipv6Prefix>();
  for (const p of prefixes) {
    if (!Number.isInteger(p.len) || p.len < 0 || p.len > 128) throw new RangeError(`bad prefix length ${p.len}`);
    const m = { addr: maskIpv6(p.addr, p.len), len: p.len };
    seen.set(keyOf(m), m);
  }
  return [...seen.values()];
}


/** Run `nft -f -` with a script on stdin; rejects with stderr on failure. */
export function runNft(script: string, binary = 'nft'): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', (err) => reject(new KernelDataplaneError(`cannot run ${binary}`, null, err)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new KernelDataplaneError(`${binary} -f - exited ${code}: ${stderr.trim()}`, null));
    });
    child.stdin.end(script);
  });
}

/**
 * The `ip6 roam6` table, replaced atomically (create-if-missing, delete, define in one transaction).
 * output: ICMPv6 redirects are dropped (a one-armed HA would send them into the tunnel).
 * prerouting/forward: TCP SYNs (either direction) get MSS ≤ tunnelMtu - 60 (IPv6 40 + TCP 20).
 */
export function haNftScript(tunnelMtu: number): string {
  const mss = tunnelMtu - 60;
  const clamp = `tcp flags & (syn | rst) == syn tcp option maxseg size > ${mss} tcp option maxseg size set ${mss}`;
  return [
    `table ip6 ${NFT_TABLE}`,
    `delete table ip6 ${NFT_TABLE}`,
    `table ip6 ${NFT_TABLE} {`,
    '  chain output {',
    '    type filter hook output priority filter; policy accept;',
    '    icmpv6 type nd-redirect counter drop',
    '  }',
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    fib daddr type != local ${clamp}`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority mangle; policy accept;',
    `    ${clamp}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Removes the `ip6 roam6` table if present. */
export function nftTeardownScript(): string {
  return `table ip6 ${NFT_TABLE}\ndelete table ip6 ${NFT_TABLE}\n`;
}

// ---- shared endpoint setup ------------------------------------------------------------------

/** `seg6local End.DX6 nh6 ::` on `local`/128 in TABLE_DECAP, and the rules that reach it. */
async function ensureDecap(nl: Rtnl, local: Ipv6Address, remote: Ipv6Address | null, oif: number): Promise<void> {
  // Move `lookup local` from pref 0 to RULE_PREF_LOCAL: add the new one first so it never lapses.
  await nl.addRule({ priority: RULE_PREF_LOCAL, table: RT_TABLE_LOCAL });
  await nl.deleteRule({ priority: 0, table: RT_TABLE_LOCAL });
  await nl.replaceRoute({
    dst: { addr: local, len: 128 }, table: TABLE_DECAP, oif,
    encap: {
      type: LWTUNNEL_ENCAP_SEG6_LOCAL,
      data: encodeSeg6LocalEncap({ action: Seg6LocalAction.EndDX6, nh6: UNSPECIFIED }),
    },
  });
  const rule = {
    priority: RULE_PREF_DECAP, table: TABLE_DECAP, dst: { addr: local, len: 128 }, ipProto: IPPROTO_IPV6,
    ...(remote ? { src: { addr: remote, len: 128 } } : {}),
  };
  // A re-start with another endpoint replaces the old decap rule.
  for (const r of await nl.listRules()) {
    if (r.priority === RULE_PREF_DECAP && r.table === TABLE_DECAP && !sameRule(r, rule)) await nl.deleteRule(r);
  }
  await nl.addRule(rule);
}

function sameRule(a: { dst?: Ipv6Prefix; src?: Ipv6Prefix }, b: { dst?: Ipv6Prefix; src?: Ipv6Prefix }): boolean {
  const eq = (x?: Ipv6Prefix, y?: Ipv6Prefix): boolean =>
    (!x && !y) || (!!x && !!y && x.len === y.len && ipv6Equal(x.addr, y.addr));
  return eq(a.dst, b.dst) && eq(a.src, b.src);
}

/**
 * Remove every rule at a roam6 priority (restoring `lookup local` at pref 0 first) and flush the
 * roam6 tables. Works from a fresh process: nothing here depends on in-memory state. Returns the
 * tunnel endpoint addresses the decap rules named (to reset a tunnel source we set).
 */
async function teardownRoutingState(nl: Rtnl): Promise<Ipv6Address[]> {
  const rules = await nl.listRules();
  const endpoints = rules.flatMap((r) =>
    (r.priority === RULE_PREF_DECAP && r.table === TABLE_DECAP && r.dst?.len === 128 ? [r.dst.addr] : []));
  for (const r of rules) {
    if (r.priority !== RULE_PREF_LOCAL && ROAM6_RULE_PREFS.includes(r.priority) && ROAM6_TABLES.includes(r.table)) {
      await nl.deleteRule(r);
    }
  }
  const movedLocal = rules.some((r) => r.priority === RULE_PREF_LOCAL && r.table === RT_TABLE_LOCAL);
  if (movedLocal) {
    await nl.addRule({ priority: 0, table: RT_TABLE_LOCAL });
    while (await nl.deleteRule({ priority: RULE_PREF_LOCAL, table: RT_TABLE_LOCAL })) { /* all copies */ }
  }
  const routes = await nl.listRoutes();
  await Promise.all(routes.filter((r) => ROAM6_TABLES.includes(r.table)).map((r) =>
    nl.deleteRoute({ dst: r.dst, src: r.src ?? undefined, table: r.table, metric: r.metric ?? undefined })));
  return endpoints;
}

async function resolveUplink(nl: Rtnl, name: string | undefined, addr: Ipv6Address): Promise<number> {
  const link = name ? await nl.linkByName(name) : await nl.linkOfAddress(addr);
  if (!link) {
    throw new KernelDataplaneError(name ? `uplink ${name} not found` : `no interface holds ${formatIpv6(addr)}`, null);
  }
  return link.index;
}

/** Unset the namespace's seg6 tunnel source if it is one of ours (left alone otherwise). */
async function resetTunnelSource(genl: Seg6Genl, mine: readonly Ipv6Address[]): Promise<void> {
  const current = await genl.getTunnelSource();
  if (mine.some((a) => ipv6Equal(a, current))) await genl.setTunnelSource(UNSPECIFIED);
}

function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) throw new RangeError(`tunnel MTU ${mtu} out of 1280..65535`);
  return mtu;
}

// ---- HA ---------------------------------------------------------------------------------------

/**
 * HaDataplanePort on the kernel's seg6 lightweight tunnels. Must run inside the HA's network
 * namespace. One instance per namespace (the tunnel source is namespace-wide).
 */
export class KernelHaDataplane implements HaDataplanePort {
  private readonly haAddress: Ipv6Address;
  private readonly tunnelMtu: number;
  private readonly funnel: boolean;
  private readonly useNft: boolean;
  private readonly nftBinary: string;
  private readonly uplinkName: string | undefined;
  private readonly aggregates: readonly Ipv6Prefix[];
  private readonly queue = new KeyedQueue();
  private readonly bindings = new Map<string, InstalledBinding>();
  /** prefix key → guest that owns it. */
  private readonly owners = new Map<string, string>();
  /** Encap routes found at start() that no upsert has claimed yet (prefix key → prefix). */
  private readonly adopted = new Map<string, Ipv6Prefix>();
  private nl: Rtnl | null = null;
  private genl: Seg6Genl | null = null;
  private uplink = 0;
  private funnelIndex = 0;
  private started = false;

  constructor(opts: KernelHaDataplaneOptions) {
    if (!isRoutableUnicast(opts.haAddress)) throw new RangeError(`HA address ${formatIpv6(opts.haAddress)} is not routable unicast`);
    this.haAddress = opts.haAddress;
    this.tunnelMtu = checkMtu(opts.tunnelMtu ?? DEFAULT_TUNNEL_MTU);
    this.funnel = opts.pmtuFunnel ?? true;
    this.useNft = opts.nft ?? true;
    this.nftBinary = opts.nftBinary ?? 'nft';
    this.uplinkName = opts.uplink;
    this.aggregates = normalise(opts.homeAggregates ?? []);
  }

  /**
   * Set forwarding, the tunnel source, decapsulation, the PMTU funnel and the nft table.
   * Encap routes left by a previous process stay in place (traffic keeps flowing) and are
   * adopted: upsert() claims them, pruneUnclaimed() removes the rest.
   */
  async start(): Promise<void> {
    const nl = this.rtnl();
    try {
      await writeSysctl('net.ipv6.conf.all.forwarding', '1');
      this.uplink = await resolveUplink(nl, this.uplinkName, this.haAddress);
      this.genl ??= await Seg6Genl.open();
      await this.genl.setTunnelSource(this.haAddress);
      if (this.funnel) await this.ensureFunnel(nl);
      else await nl.addRule({ priority: RULE_PREF_MNP, table: TABLE_ENCAP });
      await ensureDecap(nl, this.haAddress, null, this.uplink);
      const mnpTable = this.funnel ? TABLE_FUNNEL : TABLE_ENCAP;
      for (const agg of this.aggregates) await nl.replaceRoute({ dst: agg, table: mnpTable, type: 'unreachable' });
      if (this.useNft) await runNft(haNftScript(this.tunnelMtu), this.nftBinary);
      await this.adoptExisting(nl);
      this.started = true;
    } catch (err) {
      throw err instanceof KernelDataplaneError ? err : new KernelDataplaneError('HA data plane start failed', null, err);
    }
  }

  /** Install or move a binding: the encap route(s) are replaced in place, so a CoA change is atomic. */
  upsert(binding: TunnelBinding): Promise<void> {
    return this.queue.run(binding.guest, () => this.doUpsert(binding));
  }

  remove(guest: string): Promise<void> {
    return this.queue.run(guest, async () => {
      const cur = this.bindings.get(guest);
      if (!cur) return;
      try {
        await Promise.all(cur.prefixes.map((p) => this.uninstallIfOwned(guest, p)));
      } catch (err) {
        throw new KernelDataplaneError(`removing binding of ${guest}`, guest, err);
      }
      this.bindings.delete(guest);
    });
  }

  /** The kernel keeps no per-route counters: zeros for a known guest, null otherwise. */
  async counters(guest: string): Promise<BindingCounters | null> {
    if (!this.bindings.has(guest)) return null;
    return { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0 };
  }

  async stats(): Promise<DataplaneStats> {
    return { backend: 'kernel', bindings: this.bindings.size, dropsNoBinding: 0, dropsIngress: 0, dropsHoldOverflow: 0 };
  }

  /** Remove routes left from a previous process that no upsert() has claimed. Returns how many. */
  async pruneUnclaimed(): Promise<number> {
    const nl = this.rtnl();
    const stale = [...this.adopted.values()];
    this.adopted.clear();
    await Promise.all(stale.map((p) => this.uninstallPrefix(nl, p)));
    return stale.length;
  }

  /**
   * Remove every route, rule, link and nft table roam6 installed in this namespace, including a
   * crashed predecessor's, and reset the tunnel source if it is still ours.
   */
  async stop(): Promise<void> {
    const nl = this.rtnl();
    try {
      if (this.useNft) await runNft(nftTeardownScript(), this.nftBinary);
      const endpoints = await teardownRoutingState(nl);
      await nl.deleteLink(FUNNEL_IN);
      this.genl ??= await Seg6Genl.open();
      await resetTunnelSource(this.genl, [this.haAddress, ...endpoints]);
    } catch (err) {
      throw err instanceof KernelDataplaneError ? err : new KernelDataplaneError('HA data plane stop failed', null, err);
    } finally {
      this.started = false;
      this.bindings.clear();
      this.owners.clear();
      this.adopted.clear();
      this.close();
    }
  }

  /** Close the netlink sockets without touching kernel state (what a crash would leave). */
  close(): void {
    this.nl?.close();
    this.genl?.close();
    this.nl = null;
    this.genl = null;
  }

  private rtnl(): Rtnl {
    this.nl ??= Rtnl.open();
    return this.nl;
  }

  private async ensureFunnel(nl: Rtnl): Promise<void> {
    if (!(await nl.linkByName(FUNNEL_IN))) {
      await nl.createVethPair(FUNNEL_IN, FUNNEL_OUT);
      // No DAD, so the link-locals the funnel's ND needs are usable the moment the links are up.
      for (const ifn of [FUNNEL_IN, FUNNEL_OUT]) await writeSysctl(`net.ipv6.conf.${ifn}.accept_dad`, '0');
    }
    const fin = await nl.linkByName(FUNNEL_IN);
    const fout = await nl.linkByName(FUNNEL_OUT);
    if (!fin || !fout) throw new KernelDataplaneError(`funnel veth ${FUNNEL_IN}/${FUNNEL_OUT} missing after creation`, null);
    await nl.setLinkUp(fin.index);
    await nl.setLinkUp(fout.index);
    await nl.addAddress(fout.index, FUNNEL_GATEWAY, 64);
    this.funnelIndex = fin.index;
    // No catch-all in TABLE_ENCAP: seg6 looks the OUTER destination (the CoA) up with the same
    // iif, so that lookup must fall through to main.
    await nl.addRule({ priority: RULE_PREF_FUNNEL, table: TABLE_ENCAP, iifname: FUNNEL_OUT });
    await nl.addRule({ priority: RULE_PREF_MNP, table: TABLE_FUNNEL });
  }

  private async adoptExisting(nl: Rtnl): Promise<void> {
    for (const r of await nl.listRoutes({ table: TABLE_ENCAP, protocol: RTPROT_ROAM6 })) {
      if (r.encapType !== LWTUNNEL_ENCAP_SEG6 || !r.encap || !decodeSeg6Encap(r.encap)) continue;
      const k = keyOf(r.dst);
      if (!this.owners.has(k)) this.adopted.set(k, r.dst);
    }
  }

  private async doUpsert(binding: TunnelBinding): Promise<void> {
    const { guest, coa } = binding;
    if (!this.started) throw new KernelDataplaneError('HA data plane not started', guest);
    if (!isRoutableUnicast(coa)) throw new KernelDataplaneError(`CoA ${formatIpv6(coa)} is not routable unicast`, guest);
    const prefixes = normalise(binding.prefixes);
    checkTunnelled(prefixes, [this.haAddress, coa], guest);
    const prev = this.bindings.get(guest);
    const nl = this.rtnl();
    const had = new Set((prev?.prefixes ?? []).map(keyOf));
    try {
      await Promise.all(prefixes.map((p) => this.installPrefix(nl, guest, p, coa, had.has(keyOf(p)))));
      const keep = new Set(prefixes.map(keyOf));
      await Promise.all((prev?.prefixes ?? []).filter((p) => !keep.has(keyOf(p))).map((p) => this.uninstallIfOwned(guest, p)));
    } catch (err) {
      await this.rollback(guest, prev, prefixes);
      throw new KernelDataplaneError(`installing binding ${guest} → ${formatIpv6(coa)}`, guest, err);
    }
    this.bindings.set(guest, { coa, prefixes });
  }

  /** Best effort: put the previous binding back and drop prefixes it did not have. */
  private async rollback(guest: string, prev: InstalledBinding | undefined, attempted: readonly Ipv6Prefix[]): Promise<void> {
    const nl = this.rtnl();
    const had = new Set((prev?.prefixes ?? []).map(keyOf));
    try {
      if (prev) await Promise.all(prev.prefixes.map((p) => this.installPrefix(nl, guest, p, prev.coa)));
      await Promise.all(attempted.filter((p) => !had.has(keyOf(p))).map((p) => this.uninstallIfOwned(guest, p)));
    } catch { /* the original error is what the caller needs */ }
  }

  /** Install one prefix; `moving` = already installed for this guest, so only the encap route changes. */
  private async installPrefix(nl: Rtnl, guest: string, p: Ipv6Prefix, coa: Ipv6Address, moving = false): Promise<void> {
    const k = keyOf(p);
    const other = this.owners.get(k);
    if (other !== undefined && other !== guest) this.dropFromBinding(other, k);
    this.owners.set(k, guest);
    this.adopted.delete(k);
    // Encap first, funnel second: a packet entering the funnel always finds its encap route.
    await nl.replaceRoute(this.encapRoute(p, coa));
    if (this.funnel && !moving) {
      await nl.replaceRoute({
        dst: p, table: TABLE_FUNNEL, oif: this.funnelIndex, gateway: FUNNEL_GATEWAY,
        mtu: { value: this.tunnelMtu, lock: true },
      });
    }
  }

  private encapRoute(p: Ipv6Prefix, coa: Ipv6Address): RouteSpec {
    return {
      dst: p, table: TABLE_ENCAP, oif: this.uplink, mtu: { value: this.tunnelMtu, lock: false },
      encap: { type: LWTUNNEL_ENCAP_SEG6, data: encodeSeg6Encap({ mode: Seg6TunnelMode.EncapRed, segments: [coa] }) },
    };
  }

  private dropFromBinding(guest: string, key: string): void {
    const b = this.bindings.get(guest);
    if (b) this.bindings.set(guest, { coa: b.coa, prefixes: b.prefixes.filter((q) => keyOf(q) !== key) });
  }

  private async uninstallIfOwned(guest: string, p: Ipv6Prefix): Promise<void> {
    const k = keyOf(p);
    if (this.owners.get(k) !== guest) return;
    await this.uninstallPrefix(this.rtnl(), p);
    this.owners.delete(k);
  }

  private async uninstallPrefix(nl: Rtnl, p: Ipv6Prefix): Promise<void> {
    if (this.funnel) await nl.deleteRoute({ dst: p, table: TABLE_FUNNEL, protocol: RTPROT_ROAM6 });
    await nl.deleteRoute({ dst: p, table: TABLE_ENCAP, protocol: RTPROT_ROAM6 });
  }
}

// ---- host -------------------------------------------------------------------------------------

export interface KernelHostDataplaneOptions {
  /** Interface that holds the CoA. Default: the interface holding the CoA given to start(). */
  readonly uplink?: string;
  /** Inner MTU of the tunnel (default 1460); set as the MTU metric of the reverse-tunnel routes. */
  readonly tunnelMtu?: number;
}

interface HostGuest {
  readonly prefixes: readonly Ipv6Prefix[];
  readonly ifname: string;
}

/**
 * HostDataplanePort on the kernel's seg6 lightweight tunnels, for the host agent. Runs in the
 * host's namespace. Decapsulates only packets whose outer source is the HA (rule `from <HA>`).
 * Guest links must have MTU ≤ tunnelMtu: a larger packet from the guest would be lost silently
 * (its Packet Too Big would go to the host itself, as on the HA without the funnel).
 */
export class KernelHostDataplane implements HostDataplanePort {
  private readonly tunnelMtu: number;
  private readonly uplinkName: string | undefined;
  private readonly queue = new KeyedQueue();
  private readonly guests = new Map<string, HostGuest>();
  private nl: Rtnl | null = null;
  private genl: Seg6Genl | null = null;
  private coa: Ipv6Address | null = null;
  private ha: Ipv6Address | null = null;
  private uplink = 0;

  constructor(opts: KernelHostDataplaneOptions = {}) {
    this.tunnelMtu = checkMtu(opts.tunnelMtu ?? DEFAULT_TUNNEL_MTU);
    this.uplinkName = opts.uplink;
  }

  async start(coa: Ipv6Address, haAddr: Ipv6Address): Promise<void> {
    if (!isRoutableUnicast(coa) || !isRoutableUnicast(haAddr)) {
      throw new KernelDataplaneError(`bad tunnel endpoints ${formatIpv6(coa)} / ${formatIpv6(haAddr)}`, null);
    }
    const nl = this.rtnl();
    try {
      await writeSysctl('net.ipv6.conf.all.forwarding', '1');
      this.uplink = await resolveUplink(nl, this.uplinkName, coa);
      this.genl ??= await Seg6Genl.open();
      await this.genl.setTunnelSource(coa);
      this.coa = coa;
      await nl.addRule({ priority: RULE_PREF_MNP, table: TABLE_ENCAP });
      await ensureDecap(nl, coa, haAddr, this.uplink);
      const haChanged = this.ha !== null && !ipv6Equal(this.ha, haAddr);
      this.ha = haAddr;
      if (haChanged) {
        for (const [guest, g] of this.guests) await this.install(nl, guest, g.prefixes, g.ifname);
      }
    } catch (err) {
      throw err instanceof KernelDataplaneError ? err : new KernelDataplaneError('host data plane start failed', null, err);
    }
  }

  addGuest(guest: string, prefixes: readonly Ipv6Prefix[], guestIfname: string): Promise<void> {
    return this.queue.run(guest, async () => {
      if (!this.ha) throw new KernelDataplaneError('host data plane not started', guest);
      const nl = this.rtnl();
      const next = normalise(prefixes);
      checkTunnelled(next, this.coa ? [this.ha, this.coa] : [this.ha], guest);
      const prev = this.guests.get(guest);
      try {
        await this.install(nl, guest, next, guestIfname);
        const keep = new Set(next.map(keyOf));
        await Promise.all((prev?.prefixes ?? []).filter((p) => !keep.has(keyOf(p))).map((p) => this.uninstall(nl, p)));
      } catch (err) {
        throw new KernelDataplaneError(`adding guest ${guest} on ${guestIfname}`, guest, err);
      }
      this.guests.set(guest, { prefixes: next, ifname: guestIfname });
    });
  }

  removeGuest(guest: string): Promise<void> {
    return this.queue.run(guest, async () => {
      const g = this.guests.get(guest);
      if (!g) return;
      const nl = this.rtnl();
      try {
        await Promise.all(g.prefixes.map((p) => this.uninstall(nl, p)));
      } catch (err) {
        throw new KernelDataplaneError(`removing guest ${guest}`, guest, err);
      }
      this.guests.delete(guest);
    });
  }

  async stop(): Promise<void> {
    const nl = this.rtnl();
    try {
      const endpoints = await teardownRoutingState(nl);
      this.genl ??= await Seg6Genl.open();
      await resetTunnelSource(this.genl, this.coa ? [this.coa, ...endpoints] : endpoints);
    } catch (err) {
      throw err instanceof KernelDataplaneError ? err : new KernelDataplaneError('host data plane stop failed', null, err);
    } finally {
      this.guests.clear();
      this.close();
    }
  }

  /** Close the netlink sockets without touching kernel state. */
  close(): void {
    this.nl?.close();
    this.genl?.close();
    this.nl = null;
    this.genl = null;
  }

  private rtnl(): Rtnl {
    this.nl ??= Rtnl.open();
    return this.nl;
  }

  private async install(nl: Rtnl, guest: string, prefixes: readonly Ipv6Prefix[], ifname: string): Promise<void> {
    const link = await nl.linkByName(ifname);
    if (!link) throw new KernelDataplaneError(`guest link ${ifname} not found`, guest);
    const ha = this.ha;
    if (!ha) throw new KernelDataplaneError('host data plane not started', guest);
    await Promise.all(prefixes.map(async (p) => {
      await nl.replaceRoute({ dst: p, table: TABLE_ENCAP, oif: link.index });
      await nl.replaceRoute({
        dst: DEFAULT_ROUTE, src: p, table: TABLE_ENCAP, oif: this.uplink, mtu: { value: this.tunnelMtu, lock: false },
        encap: { type: LWTUNNEL_ENCAP_SEG6, data: encodeSeg6Encap({ mode: Seg6TunnelMode.EncapRed, segments: [ha] }) },
      });
    }));
  }

  private async uninstall(nl: Rtnl, p: Ipv6Prefix): Promise<void> {
    await nl.deleteRoute({ dst: DEFAULT_ROUTE, src: p, table: TABLE_ENCAP, protocol: RTPROT_ROAM6 });
    await nl.deleteRoute({ dst: p, table: TABLE_ENCAP, protocol: RTPROT_ROAM6 });
  }
}

