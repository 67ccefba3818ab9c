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
 * Throughput runs twice: unpinned, and with the flood and the HA process on CPU 0 (taskset).
 * Everything runs in namespaces named r6bdp<pid>-*, created and deleted here. Options:
 *   node dist/bench/dataplane.js [--seconds S] [--reps N] [--only throughput,lookup,program]
 *                                [--program-sizes 10000,100000]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
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
  op: 'start' | 'churn' | 'stats' | 'stop' | 'program' | 'cpu';
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
  enomemRetries: number;
}

/** Install n guests (one /64 each), move them all, stop: in the current namespace. */
async function programBench(backend: 'kernel' | 'userspace', n: number): Promise<ProgramResult> {
  const hosts = 64;
  const dp: HaDataplanePort = backend === 'kernel'
    ? new KernelHaDataplane({ haAddress: HA, nft: false })
    : new UserspaceHaDataplane({ haAddress: HA, homeAggregates: [AGGREGATE] });
  await dp.start();
  // The kernel may refuse a seg6 route with ENOMEM when it runs out of atomic per-CPU memory
  // (docs/dataplane.md, kernel limits). Such an upsert is retried after 20 ms, up to 50 times;
  // retries are counted and their waits are part of the times.
  let retries = 0;
  const upsert = async (i: number, round: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await dp.upsert({ guest: `g${i}`, prefixes: [mnp(i)], coa: coaOf((i + round) % hosts, round) });
      } catch (err) {
        if (attempt >= 50 || !String(err).includes('ENOMEM')) throw err;
        retries++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const chunked = async (round: number): Promise<void> => {
    await Promise.all(Array.from({ length: n }, (_, i) => upsert(i, round)));
  };
  const installMs = await timed(() => chunked(0));
  const moveMs = await timed(() => chunked(1));
  const nl = Rtnl.open();
  const routes = (await nl.listRoutes()).length;
  nl.close();
  const rssMiB = Math.round(process.memoryUsage().rss / 2 ** 20);
  if ((await dp.stats()).bindings !== n) throw new Error(`${backend}: expected ${n} bindings`);
  const stopMs = await timed(() => dp.stop());
  return {
    backend, bindings: n, routes, rssMiB, enomemRetries: retries,
    installMs: Math.round(installMs), installPerSec: Math.round(n / (installMs / 1000)),
    moveMs: Math.round(moveMs), movePerSec: Math.round(n / (moveMs / 1000)), stopMs: Math.round(stopMs),
  };
}

/** utime + stime (clock ticks) of this process's forwarding thread (named roam6-fwd), or null. */
function forwarderCpuTicks(): number | null {
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'roam6-fwd') continue;
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of stat(5)
    } catch { /* thread gone */ }
  }
  return null;
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
      case 'cpu': return forwarderCpuTicks();
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

  constructor(role: string, cpu?: number) {
    const cmd = ['ip', 'netns', 'exec', ns(role), process.execPath, SELF, '--agent'];
    const argv = cpu === undefined ? cmd : ['taskset', '-c', String(cpu), ...cmd];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
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

function flood(flooder: string, mode: Mode, dir: Direction, size: number, seconds: number, pinned: boolean): FloodResult {
  const s = String(seconds);
  const args = dir === 'encap'
    ? ['udp', mode === 'plain' ? PLAIN_DST : MNP_HOST, String(size), s]
    : mode === 'plain'
      ? ['udp', GEN_TEXT, String(size), s]
      : ['ip6ip6', COA_TEXT, HA_TEXT, MNP_HOST, GEN_TEXT, String(size), s];
  const role = dir === 'encap' ? 'gen' : 'dst';
  const out = pinned
    ? run('taskset', ['-c', '0', 'ip', 'netns', 'exec', ns(role), flooder, ...args])
    : inNs(role, flooder, args);
  return JSON.parse(out) as FloodResult;
}

interface Measurement {
  /** Flood, HA process (with its forwarding thread) and receiver all on CPU 0. */
  pinned: boolean;
  mode: Mode;
  dir: Direction;
  size: number;
  churn: boolean;
  offeredPps: number;
  pps: number;
  gbps: number;
  lossPct: number;
  /** Userspace only: CPU time of the forwarding thread per delivered packet, in µs. */
  fwdCpuUsPerPacket?: number;
  churnUpsertsPerSec?: number;
  /** Churn run: batches that waited for the table lock, total wait, all batches, run time. */
  lockWaits?: number;
  lockWaitMs?: number;
  lockBatches?: number;
  churnSeconds?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

async function measure(flooder: string, ha: Agent, pinned: boolean, mode: Mode, dir: Direction, size: number,
  seconds: number, reps: number, churn = false): Promise<Measurement> {
  const tunnelled = mode !== 'plain';
  flood(flooder, mode, dir, size, 0.3, pinned); // warm up: neighbours, caches
  await new Promise((r) => setTimeout(r, 200));
  const pps: number[] = [];
  const offered: number[] = [];
  const cpu: number[] = [];
  let churnRate: number | undefined;
  for (let i = 0; i < reps; i++) {
    const before = received(dir, tunnelled);
    const cpu0 = await ha.call<number | null>('cpu');
    const churning = churn ? ha.call<{ perSec: number }>('churn', { seconds }) : null;
    const f = flood(flooder, mode, dir, size, seconds, pinned);
    await new Promise((r) => setTimeout(r, 300)); // let queues drain
    const got = received(dir, tunnelled) - before;
    if (churning) churnRate = (await churning).perSec;
    const cpu1 = await ha.call<number | null>('cpu');
    pps.push(got / f.seconds);
    offered.push(f.sent / f.seconds);
    if (cpu0 !== null && cpu1 !== null && got > 0) cpu.push(((cpu1 - cpu0) * 1e4) / got); // 100 ticks/s → µs
  }
  const p = median(pps);
  const o = median(offered);
  return {
    pinned, mode, dir, size, churn, offeredPps: Math.round(o), pps: Math.round(p), gbps: (p * size * 8) / 1e9,
    lossPct: o > 0 ? Math.max(0, (1 - p / o) * 100) : 0,
    ...(cpu.length > 0 ? { fwdCpuUsPerPacket: Math.round(median(cpu) * 100) / 100 } : {}),
    ...(churnRate !== undefined ? { churnUpsertsPerSec: churnRate } : {}),
  };
}

async function throughput(seconds: number, reps: number): Promise<Measurement[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'roam6-flood-'));
  const flooder = join(tmp, 'flood');
  run('cc', ['-O2', '-o', flooder, join(ROOT, 'bench/fixtures/flood.c')]);
  const results: Measurement[] = [];
  try {
    setupThroughput();
    for (const pinned of [false, true]) for (const mode of ['plain', 'kernel', 'userspace'] as const) {
      const ha = new Agent('ha', pinned ? 0 : undefined);
      await ha.ready;
      await ha.call('start', { backend: mode });
      for (const dir of ['encap', 'decap'] as const) {
        for (const size of SIZES) {
          const m = await measure(flooder, ha, pinned, mode, dir, size, seconds, reps);
          results.push(m);
          process.stderr.write(`  ${pinned ? 'one CPU' : 'free'} ${mode} ${dir} ${size} B: ${fmt(m.pps)} pps (offered ${fmt(m.offeredPps)})` +
            `${m.fwdCpuUsPerPacket !== undefined ? `, forwarder ${m.fwdCpuUsPerPacket} µs CPU/packet` : ''}\n`);
        }
      }
      if (mode === 'userspace' && !pinned) {
        const s0 = await ha.call<{ lockWaits: number; lockWaitNs: number; batches: number }>('stats');
        const m = await measure(flooder, ha, pinned, mode, 'encap', 64, seconds, reps, true);
        const s1 = await ha.call<{ lockWaits: number; lockWaitNs: number; batches: number }>('stats');
        m.lockWaits = s1.lockWaits - s0.lockWaits;
        m.lockWaitMs = Math.round((s1.lockWaitNs - s0.lockWaitNs) / 1e4) / 100;
        m.lockBatches = s1.batches - s0.batches;
        m.churnSeconds = reps * seconds;
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

  // 1,000,000 random bound addresses (random order, so mostly cache misses, as on a busy HA) and
  // as many misses. Lookups are independent, so the CPU overlaps their memory accesses, as it
  // does for the packets of one batch.
  const k = 1_000_000;
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
  const h = fwd.benchLookup(hits, 3);
  const m = fwd.benchLookup(misses, 3);
  if (h.hits !== 3 * k || m.hits !== 0) throw new Error(`lookup check failed: ${h.hits} hits, ${m.hits} false hits`);
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

function report(tp: Measurement[], lk: LookupResult | null, pg: ProgramResult[], seconds: number, reps: number, load: string): string {
  const lines: string[] = [];
  if (tp.length > 0) {
    const get = (pinned: boolean, mode: Mode, dir: Direction, size: number, churn = false): Measurement | undefined =>
      tp.find((m) => m.pinned === pinned && m.mode === mode && m.dir === dir && m.size === size && m.churn === churn);
    lines.push(`Flood of ${seconds} s per case, median of ${reps}; packets counted (and dropped) at the receiver's ingress. ` +
      'Sizes are the inner IPv6 packet; Gbit/s counts inner bytes. The machine is shared with other work ' +
      `(load average ${load} at the start), so expect run-to-run variation.`, '');
    const table = (pinned: boolean, dir: Direction): void => {
      lines.push('| path | 64 B pps | 64 B Gbit/s | 1400 B pps | 1400 B Gbit/s | 64 B vs kernel | 1400 B vs kernel |');
      lines.push('|---|---:|---:|---:|---:|---:|---:|');
      for (const mode of ['plain', 'kernel', 'userspace'] as const) {
        const small = get(pinned, mode, dir, 64);
        const large = get(pinned, mode, dir, 1400);
        const ks = get(pinned, 'kernel', dir, 64);
        const kl = get(pinned, 'kernel', dir, 1400);
        const ratio = (a?: Measurement, b?: Measurement): string => (a && b && b.pps > 0 ? `${Math.round((a.pps / b.pps) * 100)} %` : '');
        const name = mode === 'plain' ? 'plain routing (no tunnel)' : mode === 'kernel' ? 'kernel (seg6)' : 'userspace (TUN + C thread)';
        lines.push(`| ${name} | ${fmt(small?.pps ?? 0)} | ${(small?.gbps ?? 0).toFixed(3)} | ${fmt(large?.pps ?? 0)} | ` +
          `${(large?.gbps ?? 0).toFixed(2)} | ${ratio(small, ks)} | ${ratio(large, kl)} |`);
      }
      lines.push('');
      lines.push(`Offered (accepted by the flood's socket), 64 / 1400 B: ${(['plain', 'kernel', 'userspace'] as const)
        .map((mode) => `${mode} ${fmt(get(pinned, mode, dir, 64)?.offeredPps ?? 0)} / ${fmt(get(pinned, mode, dir, 1400)?.offeredPps ?? 0)}`).join('; ')}.`, '');
    };
    for (const pinned of [false, true]) {
      lines.push(pinned
        ? '**Everything on one CPU** (`taskset -c 0` for the flood and the HA process): what each path costs per packet, ' +
          'since the kernel path otherwise runs entirely in the sender\'s context on one CPU while the userspace path ' +
          'hands packets to a thread that can use the other.'
        : '**Unpinned** (as deployed: the forwarding thread may run on the other CPU)', '');
      for (const dir of ['encap', 'decap'] as const) {
        lines.push(`_${dir === 'encap' ? 'Encapsulation: CN → HA → CoA' : 'Decapsulation: CoA → HA → CN'}_`, '');
        table(pinned, dir);
      }
    }
    const cpuLine = (['encap', 'decap'] as const).flatMap((dir) => SIZES.map((size) => {
      const m = get(false, 'userspace', dir, size);
      return m?.fwdCpuUsPerPacket !== undefined ? `${dir} ${size} B ${m.fwdCpuUsPerPacket} µs` : '';
    })).filter(Boolean);
    if (cpuLine.length > 0) {
      lines.push(`CPU time of the userspace forwarding thread per delivered packet, unpinned (one free core would ` +
        `carry about 1/that): ${cpuLine.join('; ')}.`, '');
    }
    const churn = get(false, 'userspace', 'encap', 64, true);
    const calm = get(false, 'userspace', 'encap', 64);
    if (churn && calm) {
      lines.push(`Userspace encap 64 B while the HA process moves bindings: ${fmt(churn.pps)} pps ` +
        `(${Math.round((churn.pps / Math.max(1, calm.pps)) * 100)} % of the calm run) during ${fmt(churn.churnUpsertsPerSec ?? 0)} upserts/s. ` +
        `The forwarding thread found the table locked in ${fmt(churn.lockWaits ?? 0)} of ${fmt(churn.lockBatches ?? 0)} batches and ` +
        `waited ${churn.lockWaitMs ?? 0} ms in all over ${churn.churnSeconds ?? 0} s; the rest of the drop is CPU: the JS thread ` +
        'doing the upserts takes a core of its own on this 2-core machine.', '');
    }
    const pct = (pinned: boolean, dir: Direction, size: number): string => {
      const u = get(pinned, 'userspace', dir, size);
      const k = get(pinned, 'kernel', dir, size);
      return u && k && k.pps > 0 ? `${Math.round((u.pps / k.pps) * 100)} %` : 'n/a';
    };
    lines.push(`Target: userspace ≥ 50 % of kernel pps. Encap 64 B: **${pct(false, 'encap', 64)}** unpinned, ` +
      `**${pct(true, 'encap', 64)}** on one CPU; decap 64 B: ${pct(false, 'decap', 64)} / ${pct(true, 'decap', 64)}.`, '');
  }
  if (lk) {
    lines.push('**Userspace LPM table** (C, one thread, table lock held)', '');
    lines.push('| bindings | prefixes | lookup, hit (random) | lookup, miss | set() from JS | memory |');
    lines.push('|---:|---:|---:|---:|---:|---:|');
    lines.push(`| ${fmt(lk.bindings)} | ${fmt(lk.prefixes)} | ${lk.hitNs} ns | ${lk.missNs} ns | ${fmt(lk.setPerSec)}/s | ${lk.rssMiB} MiB |`, '');
  }
  if (pg.length > 0) {
    lines.push('**Programming** (one /64 per guest; kernel: encap + PMTU funnel route each, nft off; userspace: C table only, the aggregate is one route)', '');
    lines.push('| backend | guests | install | install rate | CoA move | move rate | stop() | routes | RSS | ENOMEM retries |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of pg) {
      lines.push(`| ${r.backend} | ${fmt(r.bindings)} | ${(r.installMs / 1000).toFixed(2)} s | ${fmt(r.installPerSec)}/s | ` +
        `${(r.moveMs / 1000).toFixed(2)} s | ${fmt(r.movePerSec)}/s | ${(r.stopMs / 1000).toFixed(2)} s | ${fmt(r.routes)} | ` +
        `${r.rssMiB} MiB | ${fmt(r.enomemRetries)} |`);
    }
    lines.push('', 'All upserts are issued at once (the kernel backend keeps up to 64 netlink requests in flight). ' +
      'A kernel upsert refused with ENOMEM (atomic per-CPU memory for the seg6 route ran out) is retried after 20 ms; ' +
      'the retries are counted and their waits are included.');
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

  const load = loadavg().map((x) => x.toFixed(1)).join(' / ');
  process.stderr.write(`dataplane bench: namespaces ${TAG}-*, load average ${load}\n`);
  const tp = only.has('throughput') ? await throughput(seconds, reps) : [];
  const lk = only.has('lookup') ? lookup() : null;
  if (lk) process.stderr.write(`  lookup at 1M: hit ${lk.hitNs} ns, miss ${lk.missNs} ns\n`);
  const programSizes = (opt('--program-sizes') ?? '10000,100000').split(',').map(Number);
  const pg = only.has('program') ? await program(programSizes) : [];
  for (const r of pg) process.stderr.write(`  program ${r.backend} ${r.bindings}: install ${r.installMs} ms, move ${r.moveMs} ms, stop ${r.stopMs} ms\n`);

  const body = report(tp, lk, pg, seconds, reps, load);
  process.stdout.write(`${body}\n`);
  if (only.size === 3) {
    writeSection('dataplane', 'Data plane: kernel vs userspace vs plain routing', 'npm run bench:dataplane', body,
      { throughput: tp, lookup: lk, program: pg });
  }
}

if (process.argv.includes('--agent')) await agent();
else await main();
