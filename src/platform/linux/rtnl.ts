/**
 * Thin, typed helpers over the npm `netlink` package (rtnetlink + the SEG6 generic netlink
 * family), plus /proc/sys writes. Everything here acts on the network namespace of the
 * calling process.
 *
 * The constants below are roam6's footprint in the kernel. Teardown finds what we installed
 * by exactly these values, so they must never be reused for anything else.
 */
import { constants as osConstants } from 'node:os';
import { constants as fsConstants, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import {
  createGenericNetlink, createNetlink, createRtNetlink, genl, rt,
  type GenericNetlinkSocket, type NetlinkMessage, type RtNetlinkSocket,
} from 'netlink';
import { formatIpv6, formatPrefix, ipv6FromBytes, type Ipv6Address, type Ipv6Prefix } from '../../wire/ipv6.js';
import { loadNative } from './native.js';
import { encodeHostU32, encodeNlAttr } from './seg6.js';

/**
 * Route protocol (rtm_protocol) that tags every route roam6 installs. 82 = 0x52 ('R'): free in
 * iproute2's rt_protos and in include/uapi/linux/rtnetlink.h (which uses up to 42 and 186..192).
 * `ip route` prints it as `proto 82`.
 */
export const RTPROT_ROAM6 = 82;

/** Routing tables owned by roam6 (never shared). */
export const TABLE_DECAP = 6100;
/** seg6 encap routes, one per MNP (HA), or per guest (host: `default from MNP` + guest link). */
export const TABLE_ENCAP = 6101;
/** HA only, PMTU "funnel" routes (see docs/dataplane.md §PMTU). */
export const TABLE_FUNNEL = 6102;
/** Every table roam6 owns; teardown flushes them whole. */
export const ROAM6_TABLES: readonly number[] = [TABLE_DECAP, TABLE_ENCAP, TABLE_FUNNEL];

export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

/**
 * ip-rule priorities owned by roam6. The kernel's `lookup local` rule sits at pref 0; roam6 moves
 * it to RULE_PREF_LOCAL so that RULE_PREF_DECAP can steer proto-41 packets for our tunnel
 * endpoint to TABLE_DECAP first. The values are kept tiny so that administrator rules (usually
 * ≥ 100) keep their position relative to the local table.
 */
export const RULE_PREF_DECAP = 1;
export const RULE_PREF_LOCAL = 2;
/** `iif <funnel-out> lookup TABLE_ENCAP` (HA with the PMTU funnel). */
export const RULE_PREF_FUNNEL = 3;
/** `lookup TABLE_FUNNEL` (HA with funnel) or `lookup TABLE_ENCAP` (HA without funnel, hosts). */
export const RULE_PREF_MNP = 4;
export const ROAM6_RULE_PREFS: readonly number[] = [RULE_PREF_DECAP, RULE_PREF_LOCAL, RULE_PREF_FUNNEL, RULE_PREF_MNP];

export const AF_INET6 = 10;
/** IPPROTO_IPV6 as a next header: IPv6-in-IPv6 (RFC 2473). */
export const IPPROTO_IPV6 = 41;

const NLM_F_ECHO = 0x8;
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
/** include/uapi/linux/rtnetlink.h RTAX_MTU, and its lock bit in RTAX_LOCK. */
const RTAX_MTU = 2;

/** An rtnetlink / generic netlink request the kernel (or the socket) refused. */
export class RtnlError extends Error {
  override name = 'RtnlError';
  readonly code: string;
  /** errno number (positive), or null when the failure was not an errno (e.g. timeout). */
  readonly errno: number | null;
  /** The operation, e.g. `RTM_NEWROUTE 2001:db8:100::/64 table 6101`. */
  readonly op: string;

  constructor(op: string, code: string, errno: number | null, cause?: unknown) {
    const detail = code === 'EUNKNOWN' && cause instanceof Error ? ` (${cause.message})` : '';
    super(`${op}: ${code}${detail}`, cause === undefined ? undefined : { cause });
    this.op = op;
    this.code = code;
    this.errno = errno;
  }
}

/** Map what the `netlink` package throws ("Request rejected: EEXIST", ErrnoException…) to RtnlError. */
export function toRtnlError(op: string, err: unknown): RtnlError {
  if (err instanceof RtnlError) return err;
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  if (typeof e?.code === 'string') {
    return new RtnlError(op, e.code, typeof e.errno === 'number' ? Math.abs(e.errno) : errnoOf(e.code), err);
  }
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  const m = /Request rejected: (\w+)/.exec(msg);
  if (m) {
    const code = m[1]!;
    return /^\d+$/.test(code) ? new RtnlError(op, `E${code}`, Number(code), err) : new RtnlError(op, code, errnoOf(code), err);
  }
  if (/Timeout/i.test(msg)) return new RtnlError(op, 'ETIMEDOUT', errnoOf('ETIMEDOUT'), err);
  return new RtnlError(op, 'EUNKNOWN', null, err);
}

function errnoOf(code: string): number | null {
  const table = osConstants.errno as Record<string, number | undefined>;
  return table[code] ?? null;
}

/** True for "that object is not there" answers (route/rule/link delete of something absent). */
export function isNotFound(err: unknown): boolean {
  return err instanceof RtnlError && (err.code === 'ESRCH' || err.code === 'ENOENT' || err.code === 'ENODEV');
}

/** A route as roam6 installs it (always IPv6, scope universe). */
export interface RouteSpec {
  readonly dst: Ipv6Prefix;
  /** Source prefix (source-specific route, needs IPV6_SUBTREES). */
  readonly src?: Ipv6Prefix;
  readonly table: number;
  /** Output interface index (seg6 and seg6local routes need one). */
  readonly oif?: number;
  readonly gateway?: Ipv6Address;
  readonly type?: 'unicast' | 'unreachable';
  readonly encap?: { readonly type: number; readonly data: Uint8Array };
  /** RTAX_MTU metric; `lock` sets the RTAX_LOCK bit (`mtu lock N`). */
  readonly mtu?: { readonly value: number; readonly lock: boolean };
  /** Defaults to RTPROT_ROAM6. */
  readonly protocol?: number;
  /** RTA_PRIORITY (the route metric); kernel default 1024 when absent. */
  readonly metric?: number;
}

/** A route as dumped from the kernel. */
export interface RouteInfo {
  readonly dst: Ipv6Prefix;
  readonly src: Ipv6Prefix | null;
  readonly table: number;
  readonly protocol: number;
  readonly type: number;
  readonly oif: number | null;
  readonly metric: number | null;
  readonly encapType: number | null;
  readonly encap: Uint8Array | null;
}

/** An IPv6 policy rule (always action `lookup <table>`). */
export interface RuleSpec {
  readonly priority: number;
  readonly table: number;
  readonly dst?: Ipv6Prefix;
  readonly src?: Ipv6Prefix;
  readonly iifname?: string;
  readonly ipProto?: number;
}

export interface RuleInfo extends RuleSpec {
  readonly action: number;
}

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  readonly mtu: number | null;
  /** IFLA_MASTER: the bridge this link is a port of, or null. */
  readonly master: number | null;
  /** IFLA_IFALIAS, or null when unset. */
  readonly alias: string | null;
  /** IFLA_ADDRESS: the MAC on Ethernet-like links, or null. */
  readonly address: Uint8Array | null;
  /** IFLA_INFO_KIND ("bridge", "veth", "tun", ...), or null for links without one. */
  readonly kind: string | null;
  /** IFF_UP is set (administratively up). */
  readonly up: boolean;
  /** IFLA_GROUP, the interface group (0 = default). */
  readonly group: number;
  /**
   * IFLA_OPERSTATE (RFC 2863: 0 unknown, 2 down, 5 dormant, 6 up, …), or null when absent. The
   * kernel sets it in its linkwatch work, together with activating the transmit queue.
   */
  readonly operstate: number | null;
}

export const IF_OPER_UNKNOWN = 0;
export const IF_OPER_UP = 6;

/** Can the link transmit? Administratively up and operstate UP or UNKNOWN (the kernel's netif_oper_up()). */
export function linkOperUp(l: Pick<LinkInfo, 'up' | 'operstate'>): boolean {
  return l.up && (l.operstate === IF_OPER_UP || l.operstate === IF_OPER_UNKNOWN);
}

/** Changes for `Rtnl.updateLink`; absent fields are left as they are. */
export interface LinkChange {
  readonly mtu?: number;
  /** New MAC (IFLA_ADDRESS). */
  readonly address?: Uint8Array;
  /** Enslave to this bridge (ifindex), or 0 to release (`nomaster`). */
  readonly master?: number;
  /** IFLA_IFALIAS; "" removes it. */
  readonly alias?: string;
  /** IPv6 link-local generation (IFLA_INET6_ADDR_GEN_MODE); 'none' = no automatic fe80::. */
  readonly ipv6AddrGenMode?: 'eui64' | 'none';
  /** IFLA_GROUP (0 = the default group). */
  readonly group?: number;
  /** Also set IFF_UP, in the same request (the kernel applies it before `ipv6AddrGenMode`). */
  readonly up?: true;
}

/** An IPv6 address as dumped from the kernel (RTM_GETADDR). */
export interface AddressInfo {
  readonly index: number;
  readonly address: Ipv6Address;
  readonly prefixLen: number;
  /** RT_SCOPE_*: 0 universe (global), 253 link. */
  readonly scope: number;
  /** IFA_F_PERMANENT: configured, not learnt from an RA. */
  readonly permanent: boolean;
  /** IFA_F_TENTATIVE: DAD still running. */
  readonly tentative: boolean;
}

export interface RtnlOptions {
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
  /** Requests in flight on the socket at once (default 64). Netlink drops ACKs past SO_RCVBUF. */
  readonly maxInFlight?: number;
}

const ZERO16 = new Uint8Array(16);

function routeType(t: RouteSpec['type']): rt.RouteType {
  return t === 'unreachable' ? rt.RouteType.UNREACHABLE : rt.RouteType.UNICAST;
}

function enumNumber(mapping: Record<string, string | number>, v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const n = mapping[v];
    if (typeof n === 'number') return n;
  }
  return 0;
}

function prefixFrom(addr: Buffer | undefined, len: number | undefined): Ipv6Prefix {
  return { addr: addr && addr.length === 16 ? ipv6FromBytes(addr) : ipv6FromBytes(ZERO16), len: len ?? 0 };
}

function describeRoute(r: { dst: Ipv6Prefix; src?: Ipv6Prefix | null; table: number }): string {
  return `${formatPrefix(r.dst)}${r.src && r.src.len > 0 ? ` from ${formatPrefix(r.src)}` : ''} table ${r.table}`;
}

function describeRule(r: RuleSpec): string {
  const sel = [
    r.src ? `from ${formatPrefix(r.src)}` : '',
    r.dst ? `to ${formatPrefix(r.dst)}` : '',
    r.iifname ? `iif ${r.iifname}` : '',
    r.ipProto !== undefined ? `ipproto ${r.ipProto}` : '',
  ].filter(Boolean).join(' ');
  return `pref ${r.priority} ${sel} lookup ${r.table}`.replace(/ +/g, ' ');
}

/** Metrics attribute payload: RTAX_MTU (+ RTAX_LOCK when locked). */
function encodeMetrics(mtu: { value: number; lock: boolean }): { mtu: Buffer; lock?: Buffer } {
  const m: { mtu: Buffer; lock?: Buffer } = { mtu: Buffer.from(encodeHostU32(mtu.value)) };
  if (mtu.lock) m.lock = Buffer.from(encodeHostU32(1 << RTAX_MTU));
  return m;
}

/**
 * Small FIFO semaphore so bulk installs never overrun the netlink receive buffer. The wait
 * queue is an array with a moving head (Array#shift is O(n), which made 100k queued requests
 * quadratic).
 */
class Limiter {
  private active = 0;
  private waiting: Array<() => void> = [];
  private head = 0;
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.wakeNext();
    }
  }
  private wakeNext(): void {
    if (this.head >= this.waiting.length) return;
    const next = this.waiting[this.head++];
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    next?.();
  }
}

/**
 * One rtnetlink socket with typed route / rule / link / address helpers.
 * Create it inside the namespace it should act on; close() it when done.
 */
export class Rtnl {
  private readonly sock: RtNetlinkSocket;
  private readonly timeoutMs: number;
  private readonly limiter: Limiter;
  private closed = false;

  private constructor(sock: RtNetlinkSocket, opts: RtnlOptions) {
    this.sock = sock;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.limiter = new Limiter(opts.maxInFlight ?? 64);
  }

  /** Open an rtnetlink socket in the caller's network namespace. */
  static open(opts: RtnlOptions = {}): Rtnl {
    const sock = createRtNetlink();
    try { sock.socket.setRecvBufferSize(4 << 20); } catch { /* keep the default */ }
    return new Rtnl(sock, opts);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.socket.close();
  }

  private async call<T>(op: string, fn: (o: { timeout: number; flags?: number }) => Promise<T>, flags?: number): Promise<T> {
    if (this.closed) throw new RtnlError(op, 'ECLOSED', null);
    // The kernel runs one dump per netlink socket at a time (a second one fails with EBUSY):
    // dumps wait for each other. A dump also runs alone on the socket: the `netlink` package
    // groups a multipart reply by arrival order, so another request's ACK arriving between two
    // parts of a long dump (a namespace with a thousand guest links) cuts the dump short
    // ("Multipart message not terminated properly") every time. New requests wait while a dump
    // runs; the dump waits for the requests in flight to finish.
    if (op.includes(' dump')) {
      const prev = this.dumpTail;
      let release!: () => void;
      this.dumpTail = new Promise<void>((r) => (release = r));
      await prev;
      let open!: () => void;
      this.gate = new Promise<void>((r) => (open = r));
      try {
        while (this.inFlight > 0) await new Promise<void>((r) => this.idle.push(r));
        await sysctlWritesIdle();
        // A dump the kernel interrupted (the table changed under it, NLM_F_DUMP_INTR) or whose
        // reply overflowed the socket arrives cut short: run it again, a few times.
        for (let attempt = 1; ; attempt++) {
          try {
            return await this.callNow(op, fn, flags);
          } catch (err) {
            const interrupted = err instanceof RtnlError && /not terminated properly|EINTR|EBUSY|ENOBUFS/.test(err.message);
            if (!interrupted || attempt >= 5) throw err;
            await new Promise((r) => setTimeout(r, 5 * attempt));
          }
        }
      } finally {
        this.gate = null;
        open();
        release();
      }
    }
    while (this.gate) await this.gate;
    await sysctlWritesIdle();
    this.inFlight++;
    try {
      return await this.callNow(op, fn, flags);
    } finally {
      if (--this.inFlight === 0 && this.idle.length > 0) {
        const waiting = this.idle;
        this.idle = [];
        for (const w of waiting) w();
      }
    }
  }

  private dumpTail: Promise<void> = Promise.resolve();
  /** Set while a dump runs: other requests wait for it. */
  private gate: Promise<void> | null = null;
  /** Requests (not dumps) sent and not answered yet, and a dump waiting for them to finish. */
  private inFlight = 0;
  private idle: Array<() => void> = [];

  private callNow<T>(op: string, fn: (o: { timeout: number; flags?: number }) => Promise<T>, flags?: number): Promise<T> {
    return this.limiter.run(async () => {
      try {
        return await fn(flags === undefined ? { timeout: this.timeoutMs } : { timeout: this.timeoutMs, flags });
      } catch (err) {
        throw toRtnlError(op, err);
      }
    });
  }

  // ---- routes -------------------------------------------------------------------------

  /** Create or replace (NLM_F_CREATE|NLM_F_REPLACE) a route; idempotent. */
  async replaceRoute(r: RouteSpec): Promise<void> {
    const attrs: rt.RouteAttrs = { table: r.table };
    if (r.dst.len > 0) attrs.dst = Buffer.from(r.dst.addr);
    if (r.src && r.src.len > 0) attrs.src = Buffer.from(r.src.addr);
    if (r.oif !== undefined) attrs.oif = r.oif;
    if (r.gateway) attrs.gateway = Buffer.from(r.gateway);
    if (r.metric !== undefined) attrs.priority = r.metric;
    if (r.encap) {
      attrs.encapType = r.encap.type;
      attrs.encap = Buffer.from(r.encap.data);
    }
    if (r.mtu) attrs.metrics = encodeMetrics(r.mtu);
    await this.call(`RTM_NEWROUTE ${describeRoute(r)}`, (o) => this.sock.newRoute(this.routeHeader(r), attrs, o),
      NLM_F_CREATE | NLM_F_REPLACE);
  }

  /**
   * Delete one route. Only the key fields are matched (dst, src, table and, when given,
   * protocol / metric / oif). Returns false when there was nothing to delete.
   */
  async deleteRoute(r: Pick<RouteSpec, 'dst' | 'src' | 'table' | 'protocol' | 'metric' | 'oif' | 'type'>): Promise<boolean> {
    const attrs: rt.RouteAttrs = { table: r.table };
    if (r.dst.len > 0) attrs.dst = Buffer.from(r.dst.addr);
    if (r.src && r.src.len > 0) attrs.src = Buffer.from(r.src.addr);
    if (r.metric !== undefined) attrs.priority = r.metric;
    if (r.oif !== undefined) attrs.oif = r.oif;
    try {
      await this.call(`RTM_DELROUTE ${describeRoute(r)}`, (o) =>
        this.sock.delRoute({ ...this.routeHeader(r), protocol: r.protocol ?? 0, scope: 'NOWHERE' }, attrs, o));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private routeHeader(r: Pick<RouteSpec, 'dst' | 'src' | 'table' | 'protocol' | 'type'>): rt.Route {
    return {
      family: AF_INET6,
      dstLen: r.dst.len,
      srcLen: r.src?.len ?? 0,
      table: r.table < 256 ? r.table : RT_TABLE_UNSPEC,
      protocol: r.protocol ?? RTPROT_ROAM6,
      scope: rt.RouteScope.UNIVERSE,
      type: routeType(r.type),
    };
  }

  /** Dump IPv6 routes (all tables), optionally filtered here by table and/or protocol. */
  async listRoutes(filter: { table?: number; protocol?: number } = {}): Promise<RouteInfo[]> {
    const msgs = await this.call('RTM_GETROUTE dump', (o) => this.sock.getRoutes({ family: AF_INET6 }, undefined, o));
    const out: RouteInfo[] = [];
    for (const m of msgs) {
      const info = toRouteInfo(m);
      if (filter.table !== undefined && info.table !== filter.table) continue;
      if (filter.protocol !== undefined && info.protocol !== filter.protocol) continue;
      out.push(info);
    }
    return out;
  }

  // ---- rules --------------------------------------------------------------------------

  /** Add a `lookup <table>` rule unless an identical one exists (NLM_F_EXCL). Returns false if it existed. */
  async addRule(r: RuleSpec): Promise<boolean> {
    try {
      await this.call(`RTM_NEWRULE ${describeRule(r)}`, (o) => this.sock.newRule(ruleHeader(r), ruleAttrs(r), o),
        NLM_F_CREATE | NLM_F_EXCL);
      return true;
    } catch (err) {
      if (err instanceof RtnlError && err.code === 'EEXIST') return false;
      throw err;
    }
  }

  /** Delete the first rule matching every given field. Returns false when none matched. */
  async deleteRule(r: RuleSpec): Promise<boolean> {
    try {
      await this.call(`RTM_DELRULE ${describeRule(r)}`, (o) => this.sock.delRule(ruleHeader(r), ruleAttrs(r), o));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async listRules(): Promise<RuleInfo[]> {
    const msgs = await this.call('RTM_GETRULE dump', (o) => this.sock.getRules({ family: AF_INET6 }, undefined, o));
    return msgs.map(toRuleInfo);
  }

  // ---- links and addresses -----------------------------------------------------------

  async listLinks(): Promise<LinkInfo[]> {
    const msgs = await this.call('RTM_GETLINK dump', (o) => this.sock.getLinks(undefined, undefined, o));
    return msgs.map(toLinkInfo);
  }

  /** One link by name (RTM_GETLINK with IFLA_IFNAME, no dump), or null when there is none. */
  async linkByName(name: string): Promise<LinkInfo | null> {
    try {
      const msgs = await this.call(`RTM_GETLINK ${name}`, (o) => this.sock.getLink({}, { ifname: name }, o));
      const m = msgs[0];
      return m ? toLinkInfo(m) : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * The index of interface `name`, or null when there is none. By ioctl through the native
   * addon (if_nametoindex), so it never waits for RTNL as an RTM_GETLINK does; without the
   * addon, by RTM_GETLINK.
   */
  async indexOf(name: string): Promise<number | null> {
    const index = nativeIfIndex(name);
    if (index !== undefined) return index === 0 ? null : index;
    return (await this.linkByName(name))?.index ?? null;
  }

  /** The interface that holds `addr` (any scope), or null. */
  async linkOfAddress(addr: Ipv6Address): Promise<LinkInfo | null> {
    const msgs = await this.call(`RTM_GETADDR dump (owner of ${formatIpv6(addr)})`, (o) =>
      this.sock.getAddresses({ family: AF_INET6 }, undefined, o));
    const hit = msgs.find((m) => {
      const a = m.attrs.address ?? m.attrs.local;
      return a !== undefined && a.length === 16 && Buffer.compare(a, Buffer.from(addr)) === 0;
    });
    if (!hit || hit.data.index === undefined) return null;
    const index = hit.data.index;
    return (await this.listLinks()).find((l) => l.index === index) ?? null;
  }

  /** Create a veth pair `a` ↔ `b` in this namespace (IFLA_LINKINFO kind "veth", VETH_INFO_PEER). */
  async createVethPair(a: string, b: string, mtu?: number): Promise<void> {
    const linkinfo = Buffer.from(encodeVethLinkInfo(b, mtu));
    const attrs: { ifname: string; linkinfo: Buffer; mtu?: number } = { ifname: a, linkinfo };
    if (mtu !== undefined) attrs.mtu = mtu;
    await this.call(`RTM_NEWLINK veth ${a}/${b}`, (o) => this.sock.newLink({}, attrs, o), NLM_F_CREATE | NLM_F_EXCL);
  }

  /** Delete a link by name; false when it does not exist. */
  async deleteLink(name: string): Promise<boolean> {
    const link = await this.linkByName(name);
    if (!link) return false;
    try {
      await this.call(`RTM_DELLINK ${name}`, (o) => this.sock.delLink({ index: link.index }, undefined, o));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Move a link into another network namespace, given an open fd of that namespace (e.g. of
   * /run/netns/NAME). The link arrives there down and unenslaved.
   */
  async moveLinkToNetns(index: number, netnsFd: number, name = String(index)): Promise<void> {
    await this.call(`RTM_SETLINK ${name} netns fd ${netnsFd}`, (o) => this.sock.setLink({ index }, { netNsFd: netnsFd }, o));
  }

  async setLinkUp(index: number): Promise<void> {
    await this.call(`RTM_SETLINK ${index} up`, (o) =>
      this.sock.setLink({ index, flags: { up: true }, change: { up: true } }, undefined, o));
  }

  /**
   * Create a Linux bridge, administratively down, with a fixed MAC (so that it never follows
   * its ports' MACs) and multicast snooping off. EEXIST when the name is taken.
   */
  async createBridge(name: string, mac: Uint8Array): Promise<LinkInfo | null> {
    // NLM_F_ECHO: the kernel answers with the new link (Linux ≥ 6.3), which saves a lookup.
    const msgs = await this.call(`RTM_NEWLINK bridge ${name}`, (o) =>
      this.sock.newLink({}, { ifname: name, address: Buffer.from(mac), linkinfo: Buffer.from(encodeBridgeLinkInfo()) }, o),
    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO);
    const m = msgs.find((x) => x.attrs.ifname === name && x.data.index);
    return m ? toLinkInfo(m) : null;
  }

  /**
   * RTM_SETLINK with the given changes, in one request. An MTU set this way on a bridge is
   * "set by the user": the bridge then no longer follows the smallest port MTU.
   */
  async updateLink(index: number, change: LinkChange, name = String(index)): Promise<void> {
    const attrs: { mtu?: number; address?: Buffer; master?: number; ifalias?: string; afSpec?: Map<number, Buffer>; group?: number } = {};
    if (change.mtu !== undefined) attrs.mtu = change.mtu;
    if (change.group !== undefined) attrs.group = change.group;
    if (change.address !== undefined) attrs.address = Buffer.from(change.address);
    if (change.master !== undefined) attrs.master = change.master;
    if (change.alias !== undefined) attrs.ifalias = change.alias;
    if (change.ipv6AddrGenMode !== undefined) {
      attrs.afSpec = new Map([[AF_INET6, Buffer.from(encodeNlAttr(IFLA_INET6_ADDR_GEN_MODE, Uint8Array.of(ADDR_GEN_MODE[change.ipv6AddrGenMode])))]]);
    }
    // IFF_UP goes in the header, and the kernel applies it before IFLA_AF_SPEC: fine for a
    // port, not for a link whose addr_gen_mode must be set before it first comes up.
    const header: rt.Link = change.up ? { index, flags: { up: true }, change: { up: true } } : { index };
    await this.call(`RTM_SETLINK ${name} ${describeLinkChange(change)}`, (o) => this.sock.setLink(header, attrs, o));
  }

  /** Delete a link by index; false when it no longer exists. */
  async deleteLinkIndex(index: number, name = String(index)): Promise<boolean> {
    try {
      await this.call(`RTM_DELLINK ${name}`, (o) => this.sock.delLink({ index }, undefined, o));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** IPv6 addresses, of one link when `index` is given. */
  async listAddresses(index?: number): Promise<AddressInfo[]> {
    const msgs = await this.call(`RTM_GETADDR dump${index === undefined ? '' : ` dev ${index}`}`, (o) =>
      this.sock.getAddresses({ family: AF_INET6 }, undefined, o));
    return msgs.map(toAddressInfo).filter((a): a is AddressInfo => a !== null && (index === undefined || a.index === index));
  }

  /** Remove an IPv6 address; false when it was not there. */
  async deleteAddress(index: number, addr: Ipv6Address, prefixLen: number): Promise<boolean> {
    try {
      await this.call(`RTM_DELADDR ${formatIpv6(addr)}/${prefixLen} dev ${index}`, (o) =>
        this.sock.delAddress({ family: AF_INET6, prefixlen: prefixLen, index }, { local: Buffer.from(addr), address: Buffer.from(addr) }, o));
      return true;
    } catch (err) {
      if (isNotFound(err) || (err instanceof RtnlError && err.code === 'EADDRNOTAVAIL')) return false;
      throw err;
    }
  }

  /** Add an IPv6 address without DAD; idempotent (NLM_F_REPLACE). */
  async addAddress(index: number, addr: Ipv6Address, prefixLen: number): Promise<void> {
    await this.call(`RTM_NEWADDR ${formatIpv6(addr)}/${prefixLen} dev ${index}`, (o) =>
      this.sock.newAddress({ family: AF_INET6, prefixlen: prefixLen, index, flags: { nodad: true } },
        { address: Buffer.from(addr), local: Buffer.from(addr) }, o), NLM_F_CREATE | NLM_F_REPLACE);
  }
}

/** A subscription to this namespace's link notifications (`watchNewLinks`). */
export interface LinkWatch {
  close(): void;
}

const NETLINK_ROUTE = 0;
const RTNLGRP_LINK = 1;
const RTM_NEWLINK = 16;
const IFLA_IFNAME = 3;
/** struct ifinfomsg */
const IFINFOMSG_LEN = 16;

/**
 * Call `onLink(name)` for every RTM_NEWLINK notification in this namespace (a link created,
 * moved in, or changed): its own socket in RTNLGRP_LINK. Only the name is read from each
 * message; the caller checks what it needs. Notifications can be lost when the socket
 * overflows (`onError` with ENOBUFS), so a watch may speed things up but must not be needed
 * for correctness. The socket never keeps the process alive.
 */
export function watchNewLinks(onLink: (name: string) => void, onError: (err: Error) => void): LinkWatch {
  const sock = createNetlink(NETLINK_ROUTE);
  try { sock.socket.setRecvBufferSize(4 << 20); } catch { /* keep the default */ }
  sock.socket.addMembership(RTNLGRP_LINK);
  sock.socket.unref();
  sock.on('message', (msgs: NetlinkMessage[]) => {
    for (const m of msgs) {
      if (m.type !== RTM_NEWLINK) continue;
      const name = linkNameOf(m.data);
      if (name !== null) onLink(name);
    }
  });
  sock.on('error', onError);
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      sock.socket.close();
    },
  };
}

/** IFLA_IFNAME of an RTM_NEWLINK payload (ifinfomsg + attributes), or null. */
export function linkNameOf(data: Uint8Array): string | null {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let off = IFINFOMSG_LEN; off + 4 <= data.length;) {
    const len = view.getUint16(off, HOST_LE);
    const type = view.getUint16(off + 2, HOST_LE) & 0x3fff;
    if (len < 4 || off + len > data.length) return null;
    if (type === IFLA_IFNAME) return Buffer.from(data.subarray(off + 4, off + len)).toString('latin1').replace(/\0.*$/s, '');
    off += (len + 3) & ~3;
  }
  return null;
}

/** if_nametoindex through the native addon; undefined when the addon cannot be loaded. */
function nativeIfIndex(name: string): number | undefined {
  if (nativeUnavailable) return undefined;
  let ifIndex: (n: string) => number;
  try {
    const native = loadNative();
    ifIndex = (n) => native.ifIndex(n);
  } catch {
    nativeUnavailable = true;
    return undefined;
  }
  try {
    return ifIndex(name);
  } catch (err) {
    if (err instanceof RangeError) return 0; // longer than IFNAMSIZ: no interface can have it
    throw err;
  }
}
let nativeUnavailable = false;

function toLinkInfo(m: rt.LinkMessage): LinkInfo {
  const a = m.attrs;
  return {
    index: m.data.index ?? 0,
    name: a.ifname ?? '',
    mtu: a.mtu ?? null,
    master: a.master ?? null,
    alias: a.ifalias ?? null,
    address: a.address ? new Uint8Array(a.address) : null,
    kind: a.linkinfo ? linkKind(a.linkinfo) : null,
    up: m.data.flags?.up === true,
    group: a.group ?? 0,
    operstate: a.operstate ?? null,
  };
}

function toAddressInfo(m: rt.AddressMessage): AddressInfo | null {
  const raw = m.attrs.local ?? m.attrs.address;
  if (!raw || raw.length !== 16 || m.data.index === undefined) return null;
  const flags = m.attrs.flags ?? m.data.flags ?? {};
  return {
    index: m.data.index,
    address: ipv6FromBytes(raw),
    prefixLen: m.data.prefixlen ?? 0,
    scope: m.data.scope ?? 0,
    permanent: flags.permanent === true,
    tentative: flags.tentative === true,
  };
}

function describeLinkChange(c: LinkChange): string {
  return [
    c.mtu !== undefined ? `mtu ${c.mtu}` : '',
    c.address !== undefined ? `address ${Array.from(c.address, (b) => b.toString(16).padStart(2, '0')).join(':')}` : '',
    c.master !== undefined ? (c.master === 0 ? 'nomaster' : `master ${c.master}`) : '',
    c.alias !== undefined ? `alias ${JSON.stringify(c.alias)}` : '',
    c.ipv6AddrGenMode !== undefined ? `addrgenmode ${c.ipv6AddrGenMode}` : '',
    c.group !== undefined ? `group ${c.group}` : '',
    c.up ? 'up' : '',
  ].filter(Boolean).join(' ');
}

function toRouteInfo(m: rt.RouteMessage): RouteInfo {
  const d = m.data;
  const a = m.attrs;
  return {
    dst: prefixFrom(a.dst, d.dstLen),
    src: (d.srcLen ?? 0) > 0 ? prefixFrom(a.src, d.srcLen) : null,
    table: a.table ?? d.table ?? 0,
    protocol: enumNumber(rt.RouteProtocol as unknown as Record<string, number>, d.protocol),
    type: enumNumber(rt.RouteType as unknown as Record<string, number>, d.type),
    oif: a.oif ?? null,
    metric: a.priority ?? null,
    encapType: a.encapType ?? null,
    encap: a.encap ? new Uint8Array(a.encap) : null,
  };
}

function toRuleInfo(m: rt.RuleMessage): RuleInfo {
  const d = m.data;
  const a = m.attrs;
  const info: {
    priority: number; table: number; action: number;
    dst?: Ipv6Prefix; src?: Ipv6Prefix; iifname?: string; ipProto?: number;
  } = {
    priority: a.priority ?? 0,
    table: a.table ?? d.table ?? 0,
    action: enumNumber(rt.RuleAction as unknown as Record<string, number>, d.action),
  };
  if ((d.dstLen ?? 0) > 0) info.dst = prefixFrom(a.dst, d.dstLen);
  if ((d.srcLen ?? 0) > 0) info.src = prefixFrom(a.src, d.srcLen);
  if (a.iifname) info.iifname = a.iifname;
  if (a.ipProto !== undefined) info.ipProto = a.ipProto;
  return info;
}

function ruleHeader(r: RuleSpec): rt.Rule {
  return {
    family: AF_INET6,
    dstLen: r.dst?.len ?? 0,
    srcLen: r.src?.len ?? 0,
    table: r.table < 256 ? r.table : RT_TABLE_UNSPEC,
    action: rt.RuleAction.toTbl,
  };
}

function ruleAttrs(r: RuleSpec): rt.RuleAttrs {
  const attrs: rt.RuleAttrs = { priority: r.priority, table: r.table };
  if (r.dst) attrs.dst = Buffer.from(r.dst.addr);
  if (r.src) attrs.src = Buffer.from(r.src.addr);
  if (r.iifname) attrs.iifname = r.iifname;
  if (r.ipProto !== undefined) attrs.ipProto = r.ipProto;
  return attrs;
}

/** include/uapi/linux/if_link.h */
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_BR_MCAST_SNOOPING = 23;
const IFLA_INET6_ADDR_GEN_MODE = 8;
/** enum in6_addr_gen_mode */
const ADDR_GEN_MODE = { eui64: 0, none: 1 } as const;

/** Netlink attributes are in host byte order. */
const HOST_LE: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const cstring = (s: string): Uint8Array => {
  const b = new Uint8Array(s.length + 1);
  b.set(Buffer.from(s, 'ascii'));
  return b;
};

/** IFLA_LINKINFO payload for a bridge with multicast snooping off (one guest per bridge: nothing to snoop). */
export function encodeBridgeLinkInfo(): Uint8Array {
  const data = encodeNlAttr(IFLA_INFO_DATA, encodeNlAttr(IFLA_BR_MCAST_SNOOPING, Uint8Array.of(0)));
  return Buffer.concat([encodeNlAttr(IFLA_INFO_KIND, cstring('bridge')), data]);
}

/** IFLA_INFO_KIND inside an IFLA_LINKINFO payload (host-order nlattrs), or null. */
export function linkKind(linkinfo: Uint8Array): string | null {
  const view = new DataView(linkinfo.buffer, linkinfo.byteOffset, linkinfo.byteLength);
  for (let off = 0; off + 4 <= linkinfo.length;) {
    const len = view.getUint16(off, HOST_LE);
    const type = view.getUint16(off + 2, HOST_LE) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (len < 4 || off + len > linkinfo.length) return null;
    if (type === IFLA_INFO_KIND) {
      const text = Buffer.from(linkinfo.subarray(off + 4, off + len)).toString('ascii');
      return text.replace(/\0.*$/s, '');
    }
    off += (len + 3) & ~3;
  }
  return null;
}

/** IFLA_LINKINFO payload for a veth whose peer is called `peer`. */
export function encodeVethLinkInfo(peer: string, mtu?: number): Uint8Array {
  const VETH_INFO_PEER = 1, IFLA_IFNAME = 3, IFLA_MTU = 4;
  const ifinfomsg = new Uint8Array(16); // family 0, type 0, index 0, flags 0, change 0
  const peerAttrs = [encodeNlAttr(IFLA_IFNAME, cstring(peer))];
  if (mtu !== undefined) peerAttrs.push(encodeNlAttr(IFLA_MTU, encodeHostU32(mtu)));
  const peerPayload = Buffer.concat([ifinfomsg, ...peerAttrs]);
  const data = encodeNlAttr(IFLA_INFO_DATA, encodeNlAttr(VETH_INFO_PEER, peerPayload));
  return Buffer.concat([encodeNlAttr(IFLA_INFO_KIND, cstring('veth')), data]);
}

// ---- SEG6 generic netlink family (ip sr tunsrc) ---------------------------------------

/** include/uapi/linux/seg6_genl.h */
const SEG6_GENL_NAME = 'SEG6';
const SEG6_GENL_VERSION = 1;
const SEG6_CMD_SET_TUNSRC = 3;
const SEG6_CMD_GET_TUNSRC = 4;
const SEG6_ATTR_DST = 1;

/**
 * The per-namespace seg6 tunnel source (`ip sr tunsrc`): the outer source address of every
 * seg6 encapsulation in this namespace. Talks to the "SEG6" generic netlink family.
 */
export class Seg6Genl {
  private constructor(private readonly sock: GenericNetlinkSocket, private readonly family: number,
    private readonly timeoutMs: number) {}

  static async open(timeoutMs = 10_000): Promise<Seg6Genl> {
    const sock = createGenericNetlink();
    try {
      const fams = await sock.ctrlRequest(genl.Commands.GET_FAMILY, { familyName: SEG6_GENL_NAME }, { timeout: timeoutMs });
      const id = fams[0]?.familyId;
      if (id === undefined) throw new RtnlError('CTRL_CMD_GETFAMILY SEG6', 'ENOENT', errnoOf('ENOENT'));
      return new Seg6Genl(sock, id, timeoutMs);
    } catch (err) {
      sock.socket.close();
      throw toRtnlError('CTRL_CMD_GETFAMILY SEG6 (is CONFIG_IPV6_SEG6_LWTUNNEL set?)', err);
    }
  }

  async setTunnelSource(addr: Ipv6Address): Promise<void> {
    const op = `SEG6_CMD_SET_TUNSRC ${formatIpv6(addr)}`;
    try {
      await this.sock.request(this.family, SEG6_CMD_SET_TUNSRC, SEG6_GENL_VERSION, [encodeNlAttr(SEG6_ATTR_DST, addr)],
        { timeout: this.timeoutMs });
    } catch (err) {
      throw toRtnlError(op, err);
    }
  }

  /** The current tunnel source; :: when unset. */
  async getTunnelSource(): Promise<Ipv6Address> {
    try {
      const [msgs] = await this.sock.request(this.family, SEG6_CMD_GET_TUNSRC, SEG6_GENL_VERSION, [],
        { timeout: this.timeoutMs });
      const data = msgs[0]?.data;
      // One attribute: nlattr(20, SEG6_ATTR_DST) + 16 address bytes.
      if (!data || data.length < 20) return ipv6FromBytes(ZERO16);
      return ipv6FromBytes(data, 4);
    } catch (err) {
      throw toRtnlError('SEG6_CMD_GET_TUNSRC', err);
    }
  }

  close(): void {
    this.sock.socket.close();
  }
}

// ---- sysctl -----------------------------------------------------------------------------
//
// Two things make sysctls expensive on a busy host, both measured on the 1,000-guest lab
// (docs/benchmarks.md):
//  - Writes of `forwarding`, `disable_ipv6` and a few other net.ipv6.conf keys take RTNL by
//    trylock and, while another holds it, restart the write system call in a busy loop
//    (addrconf_sysctl_forward/_disable: restart_syscall()). Several libuv threads spinning so
//    at once burnt a CPU. Here such writes go one at a time, and this process's netlink
//    requests wait while one runs, so that we never spin against ourselves.
//  - Every lookup of /proc/sys/net compares the `net` entry of every network namespace on the
//    machine (one dcache chain for all of them): 240 µs per access with 1,000 namespaces.
//    net.ipv6.conf.* is reached through an fd of this namespace's conf directory instead
//    (/proc/self/fd/N/<ifname>/<key>: 14 µs).

/** The tail of the queue of sysctl writes, and the write running now (Rtnl.call waits for it). */
let sysctlTail: Promise<void> = Promise.resolve();
let sysctlRunning: Promise<void> | null = null;

/** Run one sysctl write alone: after the writes before it, with this process's netlink requests held back. */
async function serialisedWrite(path: string, value: string): Promise<void> {
  const prev = sysctlTail;
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  sysctlTail = mine;
  await prev;
  sysctlRunning = mine;
  try {
    await writeFile(path, value);
  } finally {
    sysctlRunning = null;
    done();
  }
}

/** Wait until no sysctl write of this process runs (Rtnl.call, before each request). */
async function sysctlWritesIdle(): Promise<void> {
  while (sysctlRunning) await sysctlRunning;
}

/** An fd of this namespace's /proc/sys/net/ipv6/conf; null when it cannot be opened. */
let confDir: number | null | undefined;

function confPath(ifname: string, key: string): string {
  if (ifname.includes('/') || ifname === '.' || ifname === '..') {
    throw new RtnlError(`sysctl net.ipv6.conf.${ifname}.${key}`, 'EINVAL', errnoOf('EINVAL'));
  }
  if (confDir === undefined) {
    try {
      confDir = openSync('/proc/sys/net/ipv6/conf', fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    } catch {
      confDir = null;
    }
  }
  return confDir === null ? `/proc/sys/net/ipv6/conf/${ifname}/${key}` : `/proc/self/fd/${confDir}/${ifname}/${key}`;
}

function sysctlError(what: string, err: unknown): RtnlError {
  const e = err as { code?: string; errno?: number };
  return new RtnlError(`sysctl ${what}`, e.code ?? 'EUNKNOWN', e.errno === undefined ? null : Math.abs(e.errno), err);
}

/** Write a sysctl of the caller's namespace, e.g. `net.ipv6.conf.all.forwarding`. */
export async function writeSysctl(key: string, value: string): Promise<void> {
  const path = `/proc/sys/${key.replace(/\./g, '/')}`;
  try {
    await serialisedWrite(path, value);
  } catch (err) {
    throw sysctlError(`${key}=${value}`, err);
  }
}

export async function readSysctl(key: string): Promise<string> {
  return (await readFile(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8')).trim();
}

/** Read `net.ipv6.conf.<ifname>.<key>` (names may contain dots; see writeIpv6ConfSysctl). */
export async function readIpv6ConfSysctl(ifname: string, key: string): Promise<string> {
  return (await readFile(confPath(ifname, key), 'utf8')).trim();
}

/**
 * Write `net.ipv6.conf.<ifname>.<key>` (or `all` / `default`). Takes the interface name
 * apart from the key, because names may contain dots (eth0.100) that `writeSysctl` would
 * turn into path separators.
 */
export async function writeIpv6ConfSysctl(ifname: string, key: string, value: string): Promise<void> {
  const path = confPath(ifname, key);
  try {
    await serialisedWrite(path, value);
  } catch (err) {
    throw sysctlError(`net.ipv6.conf.${ifname}.${key}=${value}`, err);
  }
}
