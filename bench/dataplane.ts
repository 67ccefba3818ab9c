/**
 * `npm run bench:dataplane` (root): the two HA data-plane backends against plain routing, in one
 * run on one machine, and what the tables cost.
 *
 *  1. Throughput. Three namespaces on veths:
 *
 *        gen (2001:db8:c::2) --- ha (c::1 | 2001:db8:1::2 = HA) --- dst (1::1, CoA 1::a)
 *
 *     A C UDP flood (bench/fixtures/flood.c, built at run time with cc) runs for a fixed time
 *     and the receiving namespace counts what arrives in an nft `netdev` ingress chain (and drops
 *     it there, so the receiver costs next to nothing). Per direction and packet size (64 and
 *     1400 bytes, inner IPv6 packet), for: plain routing through the HA (no tunnel), the kernel
 *     backend (KernelHaDataplane, defaults: PMTU funnel and nft on) and the userspace backend
 *     (UserspaceHaDataplane). "encap" = gen → MNP 2001:db8:100::2, tunnelled by the HA to the
 *     CoA; "decap" = dst sends IPv6-in-IPv6 from the CoA (inner source in the MNP) to the HA,
 *     which forwards the inner packet to gen. The userspace encap 64-byte case runs once more
 *     while the HA process moves bindings (upsert) as fast as it can, to show what table
 *     updates cost the forwarding thread.
 *  2. Lookup time of the userspace forwarder's LPM table with 1,000,000 bindings (one /64 each,
 *     plus /40, /48 and /56 prefixes), measured in C through the benchLookup test hook.
 *  3. Programming cost (what bench/dataplane-kernel.ts measured before): N guests, one /64 each,
 *     installed, moved to another CoA and stopped, for N = 10,000 and 100,000; the kernel backend
 *     (routes through rtnetlink) and the userspace backend (C table, one route per aggregate).
 *
 * Everything runs in namespaces named r6bdp<pid>-*, created and deleted here. Options:
 *   node dist/bench/dataplane.js [--seconds S] [--reps N] [--only throughput,lookup,program]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { KernelHaDataplane } from '../src/platform/linux/kernel-dataplane.js';
import { loadNative } from '../src/platform/linux/native.js';
import { Rtnl } from '../src/platform/linux/rtnl.js';
import { encodePrefixes, UserspaceHaDataplane } from '../src/platform/linux/userspace-dataplane.js';
import type { HaDataplanePort } from '../src/ports/dataplane.js';
import { parseIpv6, parsePrefix, type Ipv6Address, type Ipv6Prefix } from '../src/wire/ipv6.js';
import { fmt, writeSection } from './report.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = (() => {
  let dir = dirname(SELF);
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();
const TAG = `r6bdp${process.pid % 100000}`;

const HA_TEXT = '2001:db8:1::2';
const HA = parseIpv6(HA_TEXT);
const COA_TEXT = '2001:db8:1::a';
const GEN_TEXT = '2001:db8:c::2';
const MNP_HOST = '2001:db8:100::2';
const MNP = parsePrefix('2001:db8:100::/64');
const AGGREGATE = parsePrefix('2001:db8:100::/40');
const PLAIN_DST = '2001:db8:a:1::2';
const SIZES = [64, 1400] as const;
type Mode = 'plain' | 'kernel' | 'userspace';
type Direction = 'encap' | 'decap';

// ---- agent: runs a backend inside a namespace, driven by JSON lines on stdin ----------------

interface AgentCommand {
  id: number;
  op: 'start' | 'churn' | 'stats' | 'stop' | 'program';
  backend?: Mode;
  seconds?: number;
  sizes?: number[];
}

function mnp(i: number, base = 0x100): Ipv6Prefix {
  const a = parseIpv6('2001:db8::');
  a[4] = base >> 8;
  a[5] = (base & 0xff) + ((i >> 16) & 0xff);
  a[6] = (i >> 8) & 0xff;
  a[7] = i & 0xff;
  return { addr: a, len: 64 };
}

function coaOf(host: number, round: number): Ipv6Address {
  const a = parseIpv6('2001:db8:a::');
  a[7] = round & 0xff; // 2001:db8:a:<round>::<host+2>
  a[14] = host >> 8;
  a[15] = (host & 0xff) + 2;
  return a;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

interface ProgramResult {
  backend: 'kernel' | 'userspace';
  bindings: number;
  installMs: number;
  installPerSec: number;
  moveMs: number;
  movePerSec: number;
  stopMs: number;
  routes: number;
  rssMiB: number;
}

/** Install n guests (one /64 each), move them all, stop: in the current namespace. */
async function programBench(backend: 'kernel' | 'userspace', n: number): Promise<ProgramResult> {
  const hosts = 64;
  const dp: HaDataplanePort = backend === 'kernel'
    ? new KernelHaDataplane({ haAddress: HA, nft: false })
    : new UserspaceHaDataplane({ haAddress: HA, homeAggregates: [AGGREGATE] });
  await dp.start();
  const ids = Array.from({ length: n }, (_, i) => i);
  const installMs = await timed(() => Promise.all(ids.map((i) => dp.upsert({ guest: `g${i}`, prefixes: [mnp(i)], coa: coaOf(i % hosts, 0) }))));
  const moveMs = await timed(() => Promise.all(ids.map((i) => dp.upsert({ guest: `g${i}`, prefixes: [mnp(i)], coa: coaOf((i + 1) % hosts, 1) }))));
  const nl = Rtnl.open();
  const routes = (await nl.listRoutes()).length;
  nl.close();
  const rssMiB = Math.round(process.memoryUsage().rss / 2 ** 20);
  if ((await dp.stats()).bindings !== n) throw new Error(`${backend}: expected ${n} bindings`);
  const stopMs = await timed(() => dp.stop());
  return {
    backend, bindings: n, routes, rssMiB,
    installMs: Math.round(installMs), installPerSec: Math.round(n / (installMs / 1000)),
    moveMs: Math.round(moveMs), movePerSec: Math.round(n / (moveMs / 1000)), stopMs: Math.round(stopMs),
  };
}

async function agent(): Promise<void> {
  let dp: HaDataplanePort | null = null;
  const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };
  const handle = async (c: AgentCommand): Promise<unknown> => {
    switch (c.op) {
      case 'start': {
        if (c.backend === 'kernel') dp = new KernelHaDataplane({ haAddress: HA, homeAggregates: [AGGREGATE] });
        else if (c.backend === 'userspace') dp = new UserspaceHaDataplane({ haAddress: HA, homeAggregates: [AGGREGATE] });
        else return null;
        await dp.start();
        await dp.upsert({ guest: 'g1', prefixes: [MNP], coa: parseIpv6(COA_TEXT) });
        return null;
      }
      case 'churn': {
        // Move 1,000 other bindings between two CoAs, 100 upserts in flight, for `seconds`.
        if (!dp) return null;
        const d = dp;
        const coas = [parseIpv6('2001:db8:1::b'), parseIpv6('2001:db8:1::c')];
        const until = Date.now() + (c.seconds ?? 1) * 1000;
        let n = 0;
        while (Date.now() < until) {
          await Promise.all(Array.from({ length: 100 }, (_, k) => {
            const i = (n + k) % 1000;
            return d.upsert({ guest: `c${i}`, prefixes: [mnp(i, 0x1f0)], coa: coas[Math.floor((n + k) / 1000) % 2] ?? HA });
          }));
          n += 100;
        }
        return { upserts: n, perSec: Math.round(n / (c.seconds ?? 1)) };
      }
      case 'stats': return dp ? dp.stats() : null;
      case 'stop': {
        await dp?.stop();
        dp = null;
        return null;
      }
      case 'program': {
        const results: ProgramResult[] = [];
        for (const n of c.sizes ?? []) {
          results.push(await programBench('kernel', n));
          results.push(await programBench('userspace', n));
        }
        return results;
      }
    }
  };
  const rl = createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    const c = JSON.parse(line) as AgentCommand;
    chain = chain.then(async () => {
      try {
        out({ id: c.id, ok: true, result: (await handle(c)) ?? null });
      } catch (err) {
        out({ id: c.id, ok: false, error: String(err instanceof Error ? err.stack : err) });
      }
    });
  });
  rl.on('close', () => { void chain.then(async () => { await dp?.stop().catch(() => {}); process.exit(0); }); });
  out({ ready: true });
}

// ---- outer: namespaces, floods, counters ------------------------------------------------------

const ns = (role: string): string => `${TAG}-${role}`;
const run = (cmd: string, args: string[], input?: string): string =>
  execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
const inNs = (role: string, cmd: string, args: string[], input?: string): string =>
  run('ip', ['netns', 'exec', ns(role), cmd, ...args], input);

class Agent {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (v: { ok: boolean; result?: unknown; error?: string }) => void>();
  private nextId = 1;
  readonly ready: Promise<void>;

  constructor(role: string) {
    this.child = spawn('ip', ['netns', 'exec', ns(role), process.execPath, SELF, '--agent'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let resolveReady: () => void = () => {};
    this.ready = new Promise((r) => { resolveReady = r; });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { id?: number; ready?: boolean; ok: boolean; result?: unknown; error?: string };
      if (m.ready) resolveReady();
      else if (m.id !== undefined) this.waiting.get(m.id)?.(m);
    });
  }

  async call<T>(op: AgentCommand['op'], args: Partial<AgentCommand> = {}): Promise<T> {
    const id = this.nextId++;
    const reply = new Promise<{ ok: boolean; result?: unknown; error?: string }>((r) => this.waiting.set(id, r));
    this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    const m = await reply;
    if (!m.ok) throw new Error(`agent ${op}: ${m.error}`);
    return m.result as T;
  }

  async end(): Promise<void> {
    this.child.stdin!.end();
    await new Promise((r) => this.child.once('exit', r));
  }
}

function setupThroughput(): void {
  for (const role of ['gen', 'ha', 'dst']) {
    run('ip', ['netns', 'add', ns(role)]);
    inNs(role, 'ip', ['link', 'set', 'lo', 'up']);
    inNs(role, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
  }
  const link = (a: string, aIf: string, b: string, bIf: string): void => {
    run('ip', ['link', 'add', aIf, 'netns', ns(a), 'type', 'veth', 'peer', 'name', bIf, 'netns', ns(b)]);
    inNs(a, 'ip', ['link', 'set', aIf, 'up']);
    inNs(b, 'ip', ['link', 'set', bIf, 'up']);
  };
  link('gen', 'g0', 'ha', 'h-g');
  link('ha', 'h-d', 'dst', 'd-h');
  const addr = (role: string, ifn: string, a: string): void => { inNs(role, 'ip', ['-6', 'addr', 'add', a, 'dev', ifn, 'nodad']); };
  addr('gen', 'g0', `${GEN_TEXT}/64`);
  addr('ha', 'h-g', '2001:db8:c::1/64');
  addr('ha', 'h-d', `${HA_TEXT}/64`);
  addr('dst', 'd-h', '2001:db8:1::1/64');
  addr('dst', 'd-h', `${COA_TEXT}/64`);
  inNs('gen', 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:c::1']);
  inNs('ha', 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:1::1']);
  inNs('dst', 'ip', ['-6', 'route', 'add', '2001:db8:c::/64', 'via', HA_TEXT]);
  inNs('ha', 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
  // Count and drop at the receivers' ingress; ND (ICMPv6) passes.
  inNs('dst', 'nft', ['-f', '-'], [
    'table netdev bench {',
    '  chain in {',
    '    type filter hook ingress device "d-h" priority 0;',
    '    meta protocol ip6 ip6 nexthdr 41 counter drop',
    '    meta protocol ip6 ip6 nexthdr udp counter drop',
    '  }',
    '}', ''].join('\n'));
  inNs('gen', 'nft', ['-f', '-'], [
    'table netdev bench {',
    '  chain in {',
    '    type filter hook ingress device "g0" priority 0;',
    '    meta protocol ip6 ip6 nexthdr udp counter drop',
    '  }',
    '}', ''].join('\n'));
}

/** Packets counted so far at the receiver of `dir`: [proto 41, udp] at dst, [-, udp] at gen. */
function received(dir: Direction, tunnelled: boolean): number {
  const json = JSON.parse(inNs(dir === 'encap' ? 'dst' : 'gen', 'nft', ['-j', 'list', 'table', 'netdev', 'bench'])) as
    { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
  const counters = json.nftables.flatMap((o) => o.rule?.expr.flatMap((e) => (e.counter ? [e.counter.packets] : [])) ?? []);
  if (dir === 'decap') return counters[0] ?? 0;
  return (tunnelled ? counters[0] : counters[1]) ?? 0;
}

interface FloodResult { sent: number; seconds: number; errors: number }

function flood(flooder: string, mode: Mode, dir: Direction, size: number, seconds: number): FloodResult {
  const s = String(seconds);
  const args = dir === 'encap'
    ? ['udp', mode === 'plain' ? PLAIN_DST : MNP_HOST, String(size), s]
    : mode === 'plain'
      ? ['udp', GEN_TEXT, String(size), s]
      : ['ip6ip6', COA_TEXT, HA_TEXT, MNP_HOST, GEN_TEXT, String(size), s];
  return JSON.parse(inNs(dir === 'encap' ? 'gen' : 'dst', flooder, args)) as FloodResult;
}

interface Measurement {
  mode: Mode;
  dir: Direction;
  size: number;
  churn: boolean;
  offeredPps: number;
  pps: number;
  gbps: number;
  lossPct: number;
  churnUpsertsPerSec?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

async function measure(flooder: string, ha: Agent, mode: Mode, dir: Direction, size: number, seconds: number, reps: number, churn = false): Promise<Measurement> {
  const tunnelled = mode !== 'plain';
  flood(flooder, mode, dir, size, 0.3); // warm up: neighbours, caches
  await new Promise((r) => setTimeout(r, 200));
  const pps: number[] = [];
  const offered: number[] = [];
  let churnRate: number | undefined;
  for (let i = 0; i < reps; i++) {
    const before = received(dir, tunnelled);
    const churning = churn ? ha.call<{ perSec: number }>('churn', { seconds }) : null;
    const f = flood(flooder, mode, dir, size, seconds);
    await new Promise((r) => setTimeout(r, 300)); // let queues drain
    const got = received(dir, tunnelled) - before;
    if (churning) churnRate = (await churning).perSec;
    pps.push(got / f.seconds);
    offered.push(f.sent / f.seconds);
  }
  const p = median(pps);
  const o = median(offered);
  return {
    mode, dir, size, churn, offeredPps: Math.round(o), pps: Math.round(p), gbps: (p * size * 8) / 1e9,
    lossPct: o > 0 ? Math.max(0, (1 - p / o) * 100) : 0, ...(churnRate !== undefined ? { churnUpsertsPerSec: churnRate } : {}),
  };
}

async function throughput(seconds: number, reps: number): Promise<Measurement[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'roam6-flood-'));
  const flooder = join(tmp, 'flood');
  run('cc', ['-O2', '-o', flooder, join(ROOT, 'bench/fixtures/flood.c')]);
  const results: Measurement[] = [];
  try {
    setupThroughput();
    for (const mode of ['plain', 'kernel', 'userspace'] as const) {
      const ha = new Agent('ha');
      await ha.ready;
      await ha.call('start', { backend: mode });
      for (const dir of ['encap', 'decap'] as const) {
        for (const size of SIZES) {
          const m = await measure(flooder, ha, mode, dir, size, seconds, reps);
          results.push(m);
          process.stderr.write(`  ${mode} ${dir} ${size} B: ${fmt(m.pps)} pps (offered ${fmt(m.offeredPps)})\n`);
        }
      }
      if (mode === 'userspace') {
        const m = await measure(flooder, ha, mode, 'encap', 64, seconds, reps, true);
        results.push(m);
        process.stderr.write(`  userspace encap 64 B with churn: ${fmt(m.pps)} pps, ${fmt(m.churnUpsertsPerSec ?? 0)} upserts/s\n`);
        const st = await ha.call<Record<string, number>>('stats');
        process.stderr.write(`  userspace stats: ${JSON.stringify(st)}\n`);
      }
      await ha.call('stop');
      await ha.end();
    }
  } finally {
    for (const role of ['gen', 'ha', 'dst']) {
      try { run('ip', ['netns', 'del', ns(role)]); } catch { /* not created */ }
    }
    rmSync(tmp, { recursive: true, force: true });
  }
  return results;
}

interface LookupResult {
  bindings: number;
  prefixes: number;
  setMs: number;
  setPerSec: number;
  hitNs: number;
  missNs: number;
  rssMiB: number;
}

function lookup(): LookupResult {
  const n = 1_000_000;
  const rss0 = process.memoryUsage().rss;
  const fwd = new (loadNative().Forwarder)({});
  const coa = parseIpv6(COA_TEXT);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fwd.set(i, coa, encodePrefixes([mnp(i)]));
  // A few shorter prefixes, so a miss probes several lengths as in a real table.
  fwd.set(n, coa, encodePrefixes([parsePrefix('2001:db8:100::/40'), parsePrefix('2001:db8:200::/48'), parsePrefix('2001:db8:300::/56')]));
  const setMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssMiB = Math.round((process.memoryUsage().rss - rss0) / 2 ** 20);

  // 100,000 random bound addresses (random order: cache misses as on a busy HA) and 100,000 misses.
  const k = 100_000;
  const hits = new Uint8Array(16 * k);
  const misses = new Uint8Array(16 * k);
  let seed = 12345;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed; };
  for (let j = 0; j < k; j++) {
    const p = mnp(rnd() % n);
    hits.set(p.addr, 16 * j);
    hits[16 * j + 15] = 1 + (rnd() & 0x7f);
    const m = parseIpv6('2001:db8:f00::');
    m[6] = rnd() & 0xff;
    m[7] = rnd() & 0xff;
    m[15] = 1;
    misses.set(m, 16 * j);
  }
  const h = fwd.benchLookup(hits, 20);
  const m = fwd.benchLookup(misses, 20);
  if (h.hits !== 20 * k || m.hits !== 0) throw new Error(`lookup check failed: ${h.hits} hits, ${m.hits} false hits`);
  fwd.close();
  return {
    bindings: n + 1, prefixes: n + 3, setMs: Math.round(setMs), setPerSec: Math.round(n / (setMs / 1000)),
    hitNs: Math.round(h.nsPerLookup * 10) / 10, missNs: Math.round(m.nsPerLookup * 10) / 10, rssMiB,
  };
}

async function program(sizes: number[]): Promise<ProgramResult[]> {
  const role = 'prog';
  run('ip', ['netns', 'add', ns(role)]);
  try {
    inNs(role, 'ip', ['link', 'set', 'lo', 'up']);
    inNs(role, 'ip', ['link', 'add', 'b0', 'type', 'veth', 'peer', 'name', 'b1']);
    inNs(role, 'ip', ['link', 'set', 'b0', 'up']);
    inNs(role, 'ip', ['link', 'set', 'b1', 'up']);
    inNs(role, 'ip', ['-6', 'addr', 'add', `${HA_TEXT}/64`, 'dev', 'b0', 'nodad']);
    inNs(role, 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:1::1', 'dev', 'b0', 'onlink']);
    const a = new Agent(role);
    await a.ready;
    const results = await a.call<ProgramResult[]>('program', { sizes });
    await a.end();
    return results;
  } finally {
    run('ip', ['netns', 'del', ns(role)]);
  }
}

function report(tp: Measurement[], lk: LookupResult | null, pg: ProgramResult[], seconds: number, reps: number): string {
  const lines: string[] = [];
  if (tp.length > 0) {
    const get = (mode: Mode, dir: Direction, size: number, churn = false): Measurement | undefined =>
      tp.find((m) => m.mode === mode && m.dir === dir && m.size === size && m.churn === churn);
    lines.push(`Flood of ${seconds} s per case, median of ${reps}; packets counted at the receiver's ingress. ` +
      'Sizes are the inner IPv6 packet; Gbit/s counts inner bytes.', '');
    for (const dir of ['encap', 'decap'] as const) {
      lines.push(`**${dir === 'encap' ? 'Encapsulation (CN → HA → CoA)' : 'Decapsulation (CoA → HA → CN)'}**`, '');
      lines.push('| path | 64 B pps | 64 B Gbit/s | 1400 B pps | 1400 B Gbit/s | 64 B vs kernel | 1400 B vs kernel |');
      lines.push('|---|---:|---:|---:|---:|---:|---:|');
      for (const mode of ['plain', 'kernel', 'userspace'] as const) {
        const small = get(mode, dir, 64);
        const large = get(mode, dir, 1400);
        const ks = get('kernel', dir, 64);
        const kl = get('kernel', dir, 1400);
        const ratio = (a?: Measurement, b?: Measurement): string => (a && b && b.pps > 0 ? `${Math.round((a.pps / b.pps) * 100)} %` : '');
        const name = mode === 'plain' ? 'plain routing (no tunnel)' : mode === 'kernel' ? 'kernel (seg6)' : 'userspace (TUN + C thread)';
        lines.push(`| ${name} | ${fmt(small?.pps ?? 0)} | ${(small?.gbps ?? 0).toFixed(3)} | ${fmt(large?.pps ?? 0)} | ` +
          `${(large?.gbps ?? 0).toFixed(2)} | ${ratio(small, ks)} | ${ratio(large, kl)} |`);
      }
      lines.push('');
      lines.push(`Offered (what the flood got into the kernel): ${(['plain', 'kernel', 'userspace'] as const)
        .map((mode) => `${mode} ${fmt(get(mode, dir, 64)?.offeredPps ?? 0)} / ${fmt(get(mode, dir, 1400)?.offeredPps ?? 0)} pps`).join('; ')}.`, '');
    }
    const churn = get('userspace', 'encap', 64, true);
    const calm = get('userspace', 'encap', 64);
    if (churn && calm) {
      lines.push(`Userspace encap 64 B while the HA process moves bindings: ${fmt(churn.pps)} pps ` +
        `(${Math.round((churn.pps / Math.max(1, calm.pps)) * 100)} % of the calm run) during ${fmt(churn.churnUpsertsPerSec ?? 0)} upserts/s.`, '');
    }
    const target = get('userspace', 'encap', 64);
    const kern = get('kernel', 'encap', 64);
    if (target && kern) lines.push(`Target: userspace ≥ 50 % of kernel pps (encap, 64 B): **${Math.round((target.pps / kern.pps) * 100)} %**.`, '');
  }
  if (lk) {
    lines.push('**Userspace LPM table** (C, one thread, table lock held)', '');
    lines.push('| bindings | prefixes | lookup, hit (random) | lookup, miss | set() from JS | memory |');
    lines.push('|---:|---:|---:|---:|---:|---:|');
    lines.push(`| ${fmt(lk.bindings)} | ${fmt(lk.prefixes)} | ${lk.hitNs} ns | ${lk.missNs} ns | ${fmt(lk.setPerSec)}/s | ${lk.rssMiB} MiB |`, '');
  }
  if (pg.length > 0) {
    lines.push('**Programming** (one /64 per guest; kernel: encap + PMTU funnel route each, nft off; userspace: C table only, the aggregate is one route)', '');
    lines.push('| backend | guests | install | install rate | CoA move | move rate | stop() | routes | RSS |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of pg) {
      lines.push(`| ${r.backend} | ${fmt(r.bindings)} | ${(r.installMs / 1000).toFixed(2)} s | ${fmt(r.installPerSec)}/s | ` +
        `${(r.moveMs / 1000).toFixed(2)} s | ${fmt(r.movePerSec)}/s | ${(r.stopMs / 1000).toFixed(2)} s | ${fmt(r.routes)} | ${r.rssMiB} MiB |`);
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const seconds = Number(opt('--seconds') ?? 1.5);
  const reps = Number(opt('--reps') ?? 3);
  const only = new Set((opt('--only') ?? 'throughput,lookup,program').split(','));
  if (process.getuid?.() !== 0) throw new Error('bench:dataplane needs root (namespaces, TUN, raw sockets)');

  process.stderr.write(`dataplane bench: namespaces ${TAG}-*\n`);
  const tp = only.has('throughput') ? await throughput(seconds, reps) : [];
  const lk = only.has('lookup') ? lookup() : null;
  if (lk) process.stderr.write(`  lookup at 1M: hit ${lk.hitNs} ns, miss ${lk.missNs} ns\n`);
  const pg = only.has('program') ? await program([10_000, 100_000]) : [];
  for (const r of pg) process.stderr.write(`  program ${r.backend} ${r.bindings}: install ${r.installMs} ms, move ${r.moveMs} ms, stop ${r.stopMs} ms\n`);

  const body = report(tp, lk, pg, seconds, reps);
  process.stdout.write(`${body}\n`);
  if (only.size === 3) {
    writeSection('dataplane', 'Data plane: kernel vs userspace vs plain routing', 'npm run bench:dataplane', body,
      { throughput: tp, lookup: lk, program: pg });
  }
}

if (process.argv.includes('--agent')) await agent();
else await main();
