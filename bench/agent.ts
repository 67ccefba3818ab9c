/**
 * `npm run bench:agent` (root, for the lab part): what one host agent costs.
 *
 *  1. activate → BA, in the namespace lab: one guest moved host-a ↔ host-b N times (default
 *     100) by calling the agents' API directly (prepare on the destination, the netns driver's
 *     rtnetlink move from the source namespace, activate on the destination, release on the
 *     source: bench/lab-bench.ts directMove). From each activate answer: the agent's BU→BA
 *     (`elapsedMs`), attach→BA, and the request leaving this process → the BA's arrival at the
 *     agent (`registeredAt`). The HA round trip is pinged from both hosts in the same run, and
 *     the Redis round trip timed, since every registration takes a sequence number there.
 *  2. the same registration in process, no I/O at all: a HostAgent (src/core/host-agent.ts) with
 *     the fakes of src/platform/fake (FakeGuestLinks, FakeHostDataplane, MemoryMobilityState)
 *     and an in-memory registry, wired to a real HomeAgent (fake data plane) by a function call
 *     per MH message: BU→BA is then the CPU cost of both ends.
 *  3. memory per guest instance with 1,000 guests on one agent (same in-process setup, own
 *     process with --expose-gc): heap before and after 1,000 activations, then taken apart.
 *
 *   node dist/bench/agent.js [--only lab,inproc] [--moves 100] [--guests 1000]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

import { parseIpv6, parsePrefix } from '../src/wire/ipv6.js';
import { HostAgent } from '../src/core/host-agent.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../src/core/home-agent.js';
import { FakeGuestLinks } from '../src/platform/fake/guest-links.js';
import { FakeHaDataplane, FakeHostDataplane } from '../src/platform/fake/dataplane.js';
import { MemoryMobilityState } from '../src/platform/fake/mobility-state.js';
import { MemoryGuestDirectory } from '../src/platform/memory-guest-directory.js';
import type { Clock } from '../src/ports/clock.js';
import type { GuestPolicy } from '../src/ports/guest-directory.js';
import type { GuestRegistryPort, HostGuestRecord } from '../src/ports/host.js';
import type { MhSenderPort } from '../src/ports/mobility.js';
import { writeSection } from './report.js';
import { r1, r2, stats, type Stats } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
/** The checkout root, from dist/bench/ or bench/. */
const ROOT = ((): string => {
  let dir = join(SELF, '..');
  while (!existsSync(join(dir, 'package.json'))) {
    const up = join(dir, '..');
    if (up === dir) throw new Error('package.json not found');
    dir = up;
  }
  return dir;
})();

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}
const say = (s: string) => process.stderr.write(`[bench:agent ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ---------------------------------------------------------------------------------------------
// in process: a HostAgent and a HomeAgent wired back to back

const HA_ADDR = parseIpv6('2001:db8:1::2');
const COA = parseIpv6('2001:db8:a::2');
const hiresClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

/** The lab's MNP plan (src/lab/lab.ts guestMnp), inside 2001:db8:100::/40. */
const mnpOf = (i: number) => `2001:db8:1${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16)}::/64`;

function policy(i: number): GuestPolicy {
  const key = new Uint8Array(32);
  for (let k = 0; k < 32; k++) key[k] = (i * 31 + k * 7) & 0xff;
  return { id: `g${i}@bench.lab`, mnps: [parsePrefix(mnpOf(i))], sas: [{ spi: 0x10000 + i, algorithm: 'hmac-sha256-128', key }], mobileRouter: true };
}

/** The Redis registry's answer is a fresh object per get(), owned by the agent: so is this one's. */
class MemoryRegistry implements GuestRegistryPort {
  readonly records = new Map<string, { id: string; mnps: string[]; sas: { spi: number; algorithm: 'hmac-sha256-128' | 'hmac-sha1-96'; key: string }[]; host?: string }>();
  put(p: GuestPolicy): void {
    this.records.set(p.id, {
      id: p.id,
      mnps: p.mnps.map((m) => mnpOf(Number(p.id.slice(1, p.id.indexOf('@'))))),
      sas: p.sas.map((s) => ({ spi: s.spi, algorithm: s.algorithm, key: Buffer.from(s.key).toString('hex') })),
    });
  }
  async get(guest: string): Promise<HostGuestRecord | undefined> {
    const r = this.records.get(guest);
    if (!r) return undefined;
    return {
      id: r.id,
      mnps: r.mnps.map((m) => parsePrefix(m)),
      sas: r.sas.map((s) => ({ spi: s.spi, algorithm: s.algorithm, key: Uint8Array.from(Buffer.from(s.key, 'hex')) })),
      mobileRouter: true,
      ...(r.host ? { host: r.host } : {}),
    };
  }
  async setHost(guest: string, host: string): Promise<void> {
    const r = this.records.get(guest);
    if (r) r.host = host;
  }
  async heldBy(host: string): Promise<string[]> {
    return [...this.records.values()].filter((r) => r.host === host).map((r) => r.id);
  }
}

interface World {
  agent: HostAgent;
  ha: HomeAgent;
  links: FakeGuestLinks;
  dataplane: FakeHostDataplane;
  haDataplane: FakeHaDataplane;
  state: MemoryMobilityState;
  registry: MemoryRegistry;
}

async function world(policies: GuestPolicy[]): Promise<World> {
  const registry = new MemoryRegistry();
  for (const p of policies) registry.put(p);
  const haDataplane = new FakeHaDataplane(false);
  const ha = new HomeAgent(
    {
      policy: { servedPrefixes: [parsePrefix('2001:db8:100::/40')], maxLifetimeSec: 3600, requireTimestamp: true, timestampWindowMs: 7000, refreshAdviceRatio: 0.8 },
      ...DEFAULT_HA_RUNTIME,
      rateLimit: { ratePerSec: 100, burst: 200 }, // the lab HA's (src/lab/lab.ts)
    },
    { guests: new MemoryGuestDirectory(policies), dataplane: haDataplane, clock: hiresClock },
  );
  await ha.start();
  let agent!: HostAgent;
  // The MH "socket": the BU reaches the HA on the next turn of the event loop, the BA comes back
  // the same way — what a datagram socket pair does, minus the kernel.
  const sender: MhSenderPort = {
    send(mh, dst, src) {
      const copy = Uint8Array.from(mh);
      setImmediate(() => {
        void ha.handle(copy, src, dst).then((reply) => {
          if (reply) setImmediate(() => agent.onMobilityHeader(reply.mh, reply.from));
        });
      });
    },
  };
  const links = new FakeGuestLinks();
  const dataplane = new FakeHostDataplane();
  const state = new MemoryMobilityState();
  agent = new HostAgent(
    { hostId: 'host-a', coa: COA, haAddress: HA_ADDR, lifetimeSec: 400, initialTimeoutMs: 100, useTimestamp: true },
    { registry, state, links, dataplane, sender, clock: hiresClock },
  );
  await agent.start();
  return { agent, ha, links, dataplane, haDataplane, state, registry };
}

async function activate(w: World, id: string) {
  w.links.present.add(id);
  await w.agent.prepare(id);
  return w.agent.activate(id);
}

interface InprocTiming { moves: number; buToBa: Stats; activateToBa: Stats; attempts: number }

/** In-process registration cost: one guest, activate + release repeatedly. */
async function inprocTiming(n: number): Promise<InprocTiming> {
  const ps = [policy(1)];
  const w = await world(ps);
  const id = ps[0]!.id;
  const bu: number[] = [];
  const act: number[] = [];
  let attempts = 0;
  for (let i = 0; i < n + 20; i++) {
    const t0 = hiresClock.now();
    const a = await activate(w, id);
    if (i >= 20) {
      bu.push(a.elapsedMs);
      act.push(a.registeredAt - t0);
      attempts += a.attempts;
    }
    await w.agent.release(id);
  }
  await w.ha.stop();
  return { moves: n, buToBa: stats(bu), activateToBa: stats(act), attempts };
}

interface MemoryResult {
  guests: number;
  heapBytes: { before: number; afterActivations: number; fakesCleared: number; afterRelease: number; stateCleared: number };
  perGuest: { agentInstance: number; fakes: number; agentWithFakes: number; mobilityState: number; haSide: number };
  externalPerGuest: number;
  activationMs: number;
  allActive: boolean;
}

async function memory(n: number): Promise<MemoryResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const heap = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const m = process.memoryUsage();
    return { used: m.heapUsed, external: m.external };
  };
  const warm = 16;
  const ps = Array.from({ length: n + warm }, (_, i) => policy(i + 1));
  const w = await world(ps);
  // Warm-up: the code paths and lazily built structures, on guests outside the measured set.
  for (const p of ps.slice(n)) {
    await activate(w, p.id);
    await w.agent.release(p.id);
  }
  const h0 = await heap();
  const t0 = performance.now();
  const measured = ps.slice(0, n);
  for (let i = 0; i < measured.length; i += 16) {
    await Promise.all(measured.slice(i, i + 16).map((p) => activate(w, p.id)));
  }
  const activationMs = performance.now() - t0;
  const allActive = w.agent.status().filter((s) => s.phase === 'active').length === n;
  const h1 = await heap();
  // What the fake ports hold (a real agent holds a bridge, an RA sender and routes instead).
  w.links.links.clear();
  w.links.present.clear();
  w.dataplane.guests.clear();
  const h1b = await heap();
  for (const p of measured) await w.agent.release(p.id);
  const h2 = await heap();
  // What Redis holds in a real deployment (sequence numbers, replay timestamps).
  w.state.seq.clear();
  w.state.timestamps.clear();
  const h3 = await heap();
  await w.ha.stop();
  const per = (a: number, b: number) => Math.round((a - b) / n);
  return {
    guests: n,
    heapBytes: { before: h0.used, afterActivations: h1.used, fakesCleared: h1b.used, afterRelease: h2.used, stateCleared: h3.used },
    perGuest: {
      agentInstance: per(h1b.used, h2.used),
      fakes: per(h1.used, h1b.used),
      agentWithFakes: per(h1.used, h2.used),
      mobilityState: per(h2.used, h3.used),
      haSide: per(h3.used, h0.used),
    },
    externalPerGuest: per(h1.external, h0.external),
    activationMs,
    allActive,
  };
}

// ---------------------------------------------------------------------------------------------
// the lab

interface LabResult {
  moves: number;
  load: string;
  seconds: number;
  haRtt: Stats;
  redisRtt: Stats;
  buToBa: Stats;
  attachToBa: Stats;
  activateToBa: Stats;
  activateStep: Stats;
  retransmissions: number;
  pause: Stats;
  /** From captures on the hosts' uplinks: BU leaving the host → its BA arriving (wire + the HA), matched by sequence number. */
  wire: { buToBaOnWire: Stats; matched: number } | null;
}

/** tshark on a host's uplink: the Mobility Header packets with their capture times. */
class MhCapture {
  private readonly child: ChildProcess;
  private out = '';
  private err = '';
  constructor(ns: string, iface: string) {
    this.child = spawn('ip', ['netns', 'exec', ns, 'tshark', '-l', '-n', '-i', iface, '-f', 'ip6 proto 135', '-T', 'fields', '-E', 'separator=,',
      '-e', 'frame.time_epoch', '-e', 'mip6.mhtype', '-e', 'mip6.bu.seqnr', '-e', 'mip6.ba.seqnr'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }
  async ready(): Promise<boolean> {
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      if (this.err.includes('Capturing on')) return true;
      if (this.child.exitCode !== null) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }
  async stop(): Promise<{ t: number; type: number; seq: number }[]> {
    await new Promise((r) => setTimeout(r, 300));
    await new Promise<void>((res) => {
      if (this.child.exitCode !== null) return res();
      this.child.once('exit', () => res());
      this.child.kill('SIGINT');
    });
    return this.out.split('\n').map((l) => l.split(',')).filter((f) => f.length >= 4 && f[0]).map((f) => {
      const type = Number(f[1]);
      return { t: Number(f[0]) * 1000, type, seq: Number(type === 5 ? f[2] : f[3]) };
    });
  }
}

/** BU (type 5) → BA (type 6) with the same sequence number, first BU to the BA, ms. */
function matchBuBa(pkts: { t: number; type: number; seq: number }[]): number[] {
  const bu = new Map<number, number>();
  const out: number[] = [];
  for (const p of pkts.sort((a, b) => a.t - b.t)) {
    if (p.type === 5 && !bu.has(p.seq)) bu.set(p.seq, p.t);
    if (p.type === 6) {
      const t = bu.get(p.seq);
      if (t !== undefined) {
        out.push(p.t - t);
        bu.delete(p.seq);
      }
    }
  }
  return out;
}

async function labPart(moves: number): Promise<LabResult> {
  const { labUp, labDown } = await import('../src/lab/lab.js');
  const { connectRedis } = await import('../src/platform/redis/connection.js');
  const { LAB_ADDR } = await import('../src/lab/lab.js');
  const { directMove, openHands, pingRtts, load, sleep } = await import('./lab-bench.js');
  const name = 'bagt';
  const loadAtStart = load();
  const t0 = Date.now();
  say(`lab with one guest (load ${loadAtStart})`);
  const lab = await labUp({ name, guests: 1 });
  try {
    const redis = await connectRedis({ url: lab.redisUrl, name: 'bench-agent', log: () => {} });
    const hands = await openHands(lab);
    const caps = [new MhCapture(lab.namespaces['host-a']!, 'a-c'), new MhCapture(lab.namespaces['host-b']!, 'b-c')];
    const capturing = (await Promise.all(caps.map((c) => c.ready()))).every(Boolean);
    if (!capturing) say('tshark did not start; no wire-level split of BU → BA');
    const guest = lab.guests[0]!.id;
    const rows: Awaited<ReturnType<typeof directMove>>[] = [];
    const rtts: number[] = [];
    const redisRtts: number[] = [];
    let wire: LabResult['wire'] = null;
    try {
      let at: 'host-a' | 'host-b' = 'host-a';
      const other = (h: 'host-a' | 'host-b') => (h === 'host-a' ? 'host-b' : 'host-a');
      // warm-up, not counted
      for (let i = 0; i < 2; i++) {
        await directMove({ lab, redis, hands }, guest, at, other(at));
        at = other(at);
      }
      say(`${moves} moves through the agents' API`);
      for (let i = 0; i < moves; i++) {
        if (i % 20 === 0) {
          rtts.push(...pingRtts(lab.namespaces['host-a']!, LAB_ADDR.ha, 10), ...pingRtts(lab.namespaces['host-b']!, LAB_ADDR.ha, 10));
          for (let k = 0; k < 20; k++) {
            const t = performance.now();
            await redis.client.ping();
            redisRtts.push(performance.now() - t);
          }
        }
        rows.push(await directMove({ lab, redis, hands }, guest, at, other(at)));
        at = other(at);
        await sleep(100);
      }
      rtts.push(...pingRtts(lab.namespaces['host-a']!, LAB_ADDR.ha, 10), ...pingRtts(lab.namespaces['host-b']!, LAB_ADDR.ha, 10));
    } finally {
      const pkts = (await Promise.all(caps.map((c) => c.stop()))).flat();
      const onWire = capturing ? matchBuBa(pkts) : [];
      wire = onWire.length ? { buToBaOnWire: stats(onWire), matched: onWire.length } : null;
      await hands['host-a'].close();
      await hands['host-b'].close();
      await redis.close();
    }
    return {
      moves, load: loadAtStart, seconds: (Date.now() - t0) / 1000,
      haRtt: stats(rtts), redisRtt: stats(redisRtts),
      buToBa: stats(rows.map((r) => r.buToBaMs)),
      attachToBa: stats(rows.map((r) => r.attachToBaMs)),
      activateToBa: stats(rows.map((r) => r.activateToBaMs)),
      activateStep: stats(rows.map((r) => r.activateMs)),
      retransmissions: rows.reduce((n, r) => n + r.attempts - 1, 0),
      pause: stats(rows.map((r) => r.pauseMs)),
      wire,
    };
  } finally {
    await labDown(name);
  }
}

// ---------------------------------------------------------------------------------------------

interface Results { lab?: LabResult; inproc?: InprocTiming; memory?: MemoryResult; loadInproc?: string }

function render(r: Results): string {
  const rows: string[] = [];
  const L = r.lab;
  if (L) {
    const goal = (L.haRtt.p50 ?? 0) + 2;
    const ratio = (x: number | null) => (x === null ? '–' : `${(goal / Math.max(x, 1e-9)).toFixed(2)}×`);
    rows.push(`| **activate → BA** (activate request sent → BA at the agent), p50 / p99, ${L.moves} moves | ${r1(L.activateToBa.p50)} / ${r1(L.activateToBa.p99)} ms | ≤ HA RTT + 2 ms = ${r2(goal)} ms | ${ratio(L.activateToBa.p50)} / ${ratio(L.activateToBa.p99)} |`);
    rows.push(`| · BU → BA (the agent's \`elapsedMs\`, first BU sent → accepting BA), p50 / p99 / max | ${r1(L.buToBa.p50)} / ${r1(L.buToBa.p99)} / ${r1(L.buToBa.max)} ms | ≤ ${r2(goal)} ms | ${ratio(L.buToBa.p50)} / ${ratio(L.buToBa.p99)} |`);
    rows.push(`| · attach → BA (the agent's registeredAt − attachedAt), p50 / p99 | ${r1(L.attachToBa.p50)} / ${r1(L.attachToBa.p99)} ms | | |`);
    if (L.wire) rows.push(`| · BU on the host's uplink → BA on it (tshark; wire + the HA's processing), p50 / p99 (${L.wire.matched} pairs, warm-up included) | ${r2(L.wire.buToBaOnWire.p50)} / ${r2(L.wire.buToBaOnWire.p99)} ms | | |`);
    rows.push(`| · the activate call as the client sees it (HTTP on the unix socket, incl. RA/NA and registry write), p50 / p99 | ${r1(L.activateStep.p50)} / ${r1(L.activateStep.p99)} ms | | |`);
    rows.push(`| · BU retransmissions in ${L.moves} registrations | ${L.retransmissions} | 0 | |`);
    rows.push(`| HA round trip, ICMPv6 echo from both hosts (${L.haRtt.n} pings through the run), p50 / p99 / max | ${r2(L.haRtt.p50)} / ${r2(L.haRtt.p99)} / ${r2(L.haRtt.max)} ms | | |`);
    rows.push(`| Redis round trip (PING on the lab's unix socket), p50 / p99 | ${r2(L.redisRtt.p50)} / ${r2(L.redisRtt.p99)} ms | | |`);
  }
  const I = r.inproc;
  if (I) {
    rows.push(`| in process, no I/O (fakes + real HomeAgent): BU → BA p50 / p99 (${I.moves} registrations) | ${r2(I.buToBa.p50)} / ${r2(I.buToBa.p99)} ms | | |`);
    rows.push(`| · in process: activate() call → BA, p50 / p99 | ${r2(I.activateToBa.p50)} / ${r2(I.activateToBa.p99)} ms | | |`);
  }
  const M = r.memory;
  if (M) {
    rows.push(`| **heap per guest instance on one agent** (${M.guests.toLocaleString('en-US')} activated guests; HostAgent state, MobileRouter, timers, its copy of the guest record) | ${M.perGuest.agentInstance.toLocaleString('en-US')} B | | |`);
    rows.push(`| · the fake ports' per-guest entries (FakeGuestLinks, FakeHostDataplane) | ${M.perGuest.fakes.toLocaleString('en-US')} B | | |`);
    rows.push(`| · mobility state (sequence number, replay timestamp; Redis in a deployment) | ${M.perGuest.mobilityState.toLocaleString('en-US')} B | | |`);
    rows.push(`| · the HA's side in the same process (binding, token bucket, guest directory excluded) | ${M.perGuest.haSide.toLocaleString('en-US')} B | | |`);
    rows.push(`| · off-heap (external) per guest | ${M.externalPerGuest.toLocaleString('en-US')} B | | |`);
    rows.push(`| · ${M.guests.toLocaleString('en-US')} activations in process (16 at a time) | ${(M.activationMs / 1000).toFixed(2)} s, all active: ${M.allActive ? 'yes' : 'NO'} | | |`);
  }
  const lab = L
    ? `**Lab** (${L.seconds.toFixed(0)} s, load average at the start ${L.load}): \`roam6 lab\` with one netns guest, moved ${L.moves} times
host-a ↔ host-b by calling the agents' API directly on their unix sockets — \`POST /api/v1/guests/:id/prepare\` on the
destination, the netns driver's rtnetlink move from the source host's namespace (bench/netns-helper.ts), \`POST
…/activate\` on the destination, \`POST …/release\` on the source — 100 ms apart. *activate → BA* is the agent's
\`registeredAt\` (epoch ms, same machine clock) minus the moment the activate request left the benchmark; it includes
the HTTP request, attaching the guest's port to its bridge, a sequence number from Redis (INCR) and the replay
timestamp (Redis), building and authenticating the BU, the HA's processing (authentication, the kernel seg6 route
replace, BA) and the BA's check. HA round trips are pinged from both hosts every 20 moves. Times from the agent are
whole milliseconds.`
    : '';
  const inproc = I || M
    ? `**In process** (load at the start ${r.loadInproc ?? '?'}): a HostAgent with FakeGuestLinks, FakeHostDataplane,
MemoryMobilityState and an in-memory registry (a fresh record per \`get\`, as Redis gives), wired to a real HomeAgent
(fake data plane, the lab HA's policy: timestamps required, HMAC-SHA256-128) by \`setImmediate\` per message. Memory:
own process with \`--expose-gc\`; 16 warm-up guests activated and released first; heap after GC before and after
${M?.guests ?? '?'} activations, then the fakes' maps cleared, then every guest released (the agent's share), then the
mobility state cleared; the rest is the HA's (bindings of the released guests stay, as they do in the HA). A real
agent also holds per guest a bridge with its RA sender and routes, in the kernel and in LinuxGuestLinks; the daemon's
RSS with 1,000 guests is in the bench:migrate section (rebalance, RSS line).`
    : '';
  return `
Target (DESIGN §4 / the brief): activate → BA within one HA round trip + 2 ms. Ratio ≥ 1 means the target is met.
The machine has 2 cores shared with other work.

| metric | result | target | ratio |
|---|---|---|---|
${rows.join('\n')}

${lab}

${inproc}
`;
}

async function main(): Promise<void> {
  if (process.argv.includes('--child-memory')) {
    const n = Number(arg('guests', '1000'));
    const m = await memory(n);
    const t = await inprocTiming(Number(arg('moves', '100')));
    process.stdout.write(`${JSON.stringify({ memory: m, inproc: t })}\n`);
    return;
  }
  const only = new Set(arg('only', 'lab,inproc').split(','));
  const moves = Number(arg('moves', '100'));
  const guests = Number(arg('guests', '1000'));
  let res: Results = {};
  const prevFile = join(ROOT, 'docs/bench/agent.json');
  if (!(only.has('inproc') && only.has('lab')) && existsSync(prevFile)) {
    try {
      res = (JSON.parse(readFileSync(prevFile, 'utf8')) as { results: Results }).results ?? {};
    } catch {
      res = {};
    }
  }
  if (only.has('inproc')) {
    const { loadavg } = await import('node:os');
    res.loadInproc = loadavg().map((x) => x.toFixed(2)).join(' / ');
    say(`in process: ${guests} guests for memory, ${moves} registrations for timing`);
    const c = spawnSync(process.execPath, ['--expose-gc', SELF, '--child-memory', '--guests', String(guests), '--moves', String(moves)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (c.status !== 0) throw new Error(`in-process child failed (${c.status}): ${c.stderr.slice(-2000)}`);
    const j = JSON.parse(c.stdout.trim().split('\n').pop()!) as { memory: MemoryResult; inproc: InprocTiming };
    res.memory = j.memory;
    res.inproc = j.inproc;
  }
  if (only.has('lab')) {
    if (process.getuid?.() !== 0) throw new Error('the lab part needs root (network namespaces); run with --only inproc otherwise');
    res.lab = await labPart(moves);
  }
  const body = render(res);
  writeSection('agent', 'Host agent: activate → BA, memory per guest instance', 'npm run bench:agent', body, res);
  process.stdout.write(`${body}\n`);
}

main().catch(async (e: unknown) => {
  process.stderr.write(`bench:agent failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  try {
    const { labDown } = await import('../src/lab/lab.js');
    await labDown('bagt');
  } catch {
    /* nothing to clean */
  }
  process.exit(1);
});
