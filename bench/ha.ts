/**
 * `npm run bench:ha` (root, for the namespace part): what the Home Agent sustains and what a
 * binding costs. Three measurements, each in its own process so they do not share a heap:
 *
 *  1. in process — a HomeAgent (fake data plane, no store) with 100,000 guests (HMAC-SHA1-96
 *     SAs) and 100,000 bindings; pre-encoded authenticated refresh and move BUs go through
 *     `ha.handle()` with 256 outstanding; BUs per second, then a CPU profile of one more round;
 *  2. through the socket — the real daemon (`node bin/roam6.js ha --config FILE`, data plane
 *     "none", Redis off) in namespace `ha`, and bench/fixtures/bu-load.mjs in namespace `client`
 *     on a veth, raw MH sockets both sides; BUs per second, BU→BA latency, losses;
 *  3. heap — with --expose-gc, the heap a binding costs at 1,000,000 bindings registered
 *     through `ha.handle()` (the guest directory measured separately), with a breakdown.
 *
 * BUs carry MN-ID, one MNP and the MESG-ID timestamp, and replay protection is required (as in
 * deploy/examples/ha.json). The timestamp window is widened to 10 minutes so BUs encoded before
 * the timed phase stay valid; the check itself still runs. Guests, keys, prefixes and care-of
 * addresses are derived from the guest index, the same way in the load generator.
 *
 *   node dist/bench/ha.js [--only inproc,socket,heap] [--socket-guests N] [--heap-bindings N]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseIpv6, parsePrefix, type Ipv6Address } from '../src/wire/ipv6.js';
import { ntpFromUnixMs } from '../src/wire/mh/index.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../src/core/home-agent.js';
import { buildBindingUpdate, checkBindingAck } from '../src/core/binding-update-builder.js';
import { FakeHaDataplane } from '../src/platform/fake/dataplane.js';
import { MemoryGuestDirectory } from '../src/platform/memory-guest-directory.js';
import { systemClock } from '../src/platform/system-clock.js';
import type { GuestPolicy } from '../src/ports/guest-directory.js';
import { parseHaConfig } from '../src/config/ha-config.js';
import { fmt, writeSection } from './report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SELF = fileURLToPath(import.meta.url);
const HA_TEXT = '2001:db8:1::2';
const HA = parseIpv6(HA_TEXT);
const CLIENT_TEXT = '2001:db8:1::3';
const SERVED = '2001:db8:100::/40';
/** Care-of addresses ("hosts") the guests move between; all on the client's veth. */
const HOSTS = 16;
const WINDOW = 256;
const GUESTS = 100_000;
/** Timed rounds after registration: seq 2 moves every guest, seq 3 refreshes it. */
const TIMED_ROUNDS = 2;
const TARGET_BU_PER_SEC = 20_000;
const TARGET_BYTES_PER_BINDING = 1024;
const TIMESTAMP_WINDOW_MS = 600_000;
const START_TIMEOUT_MS = 600_000;

// --- guests, derived from the index (bench/fixtures/bu-load.mjs derives them the same way) ---

const guestId = (i: number) => `g${i}@bench.example`;
const spiOf = (i: number) => 0x10000 + i;
const keyHex = (i: number) => createHash('sha256').update(`roam6-bench-ha/${i}`).digest('hex').slice(0, 40);
/** 2001:db8:1hh:llll::/64, inside 2001:db8:100::/40 for i < 2^24. */
const mnpText = (i: number) => `2001:db8:${(0x100 + ((i >> 16) & 0xff)).toString(16)}:${(i & 0xffff).toString(16)}::/64`;
const coaText = (h: number) => `2001:db8:1::a:${h.toString(16)}`;
/** The CoA guest i sends BU `seq` from: it moves on every even seq. */
const hostOf = (i: number, seq: number) => (i + (seq >> 1)) % HOSTS;
const COAS: Ipv6Address[] = Array.from({ length: HOSTS }, (_, h) => parseIpv6(coaText(h)));

/** A guest as the HA config loader builds it (key from hex, prefix parsed from text). */
function makeGuest(i: number): GuestPolicy {
  return {
    id: guestId(i),
    mnps: [parsePrefix(mnpText(i))],
    sas: [{ spi: spiOf(i), algorithm: 'hmac-sha1-96', key: Uint8Array.from(Buffer.from(keyHex(i), 'hex')) }],
    mobileRouter: true,
  };
}

function makeHa(guests: MemoryGuestDirectory, dp: FakeHaDataplane): HomeAgent {
  return new HomeAgent(
    {
      policy: {
        servedPrefixes: [parsePrefix(SERVED)],
        maxLifetimeSec: 3600,
        requireTimestamp: true,
        timestampWindowMs: TIMESTAMP_WINDOW_MS,
        refreshAdviceRatio: 0.8,
      },
      ...DEFAULT_HA_RUNTIME,
      // Each guest sends a handful of BUs in a burst here; the limit is not what is measured.
      rateLimit: { ratePerSec: 1_000_000, burst: 1_000_000 },
    },
    { guests, dataplane: dp, clock: systemClock },
  );
}

function encodeBu(g: GuestPolicy, i: number, seq: number, base: bigint): Uint8Array {
  const sa = g.sas[0]!;
  return buildBindingUpdate({
    guest: g.id, sa, seq, lifetimeSec: 600, coa: COAS[hostOf(i, seq)]!, mnps: g.mnps, timestamp: base + BigInt(seq),
  }).bytes;
}

/** cpuPerWall: this process's CPU time over wall time; well below 1 means it did not have a core to itself. */
interface DriveResult { ms: number; replies: number; accepted: number; cpuPerWall: number }

/** Push `n` BUs through ha.handle with `window` outstanding; count BAs and accepted BAs. */
async function drive(ha: HomeAgent, n: number, bu: (k: number) => Uint8Array, src: (k: number) => Ipv6Address): Promise<DriveResult> {
  let next = 0;
  let replies = 0;
  let accepted = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = async () => {
    for (let k = next++; k < n; k = next++) {
      const r = await ha.handle(bu(k), src(k), HA);
      if (r) {
        replies++;
        if (r.mh[2] === 6 && r.mh[6] === 0) accepted++; // BA, status 0
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, n) }, worker));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { ms, replies, accepted, cpuPerWall: Math.round(((cpu.user + cpu.system) / 1000 / ms) * 100) / 100 };
}

// --- 1. in process ------------------------------------------------------------------------

interface ProfileEntry { fn: string; where: string; selfPct: number }
interface InprocResult {
  guests: number; window: number; registration: DriveResult & { perSec: number };
  rounds: (DriveResult & { seq: number; kind: string; perSec: number })[];
  timedBus: number; timedMs: number; buPerSec: number; baVerified: boolean;
  profile: { top: ProfileEntry[]; byArea: Record<string, number> };
}

async function inproc(): Promise<InprocResult> {
  const guests = Array.from({ length: GUESTS }, (_, i) => makeGuest(i));
  const dp = new FakeHaDataplane(false);
  const ha = makeHa(new MemoryGuestDirectory(guests), dp);
  await ha.start();
  const base = ntpFromUnixMs(Date.now());
  const batch = (seq: number) => guests.map((g, i) => encodeBu(g, i, seq, base));
  const srcFor = (seq: number) => (k: number) => COAS[hostOf(k, seq)]!;

  const reg = batch(1);
  const r0 = await drive(ha, GUESTS, (k) => reg[k]!, srcFor(1));
  if (ha.cache.size !== GUESTS) throw new Error(`registration left ${ha.cache.size} bindings, expected ${GUESTS}`);

  const rounds: InprocResult['rounds'] = [];
  for (let r = 0; r < TIMED_ROUNDS; r++) {
    const seq = 2 + r;
    const bus = batch(seq);
    const res = await drive(ha, GUESTS, (k) => bus[k]!, srcFor(seq));
    rounds.push({ seq, kind: seq % 2 === 0 ? 'move' : 'refresh', ...res, perSec: (GUESTS / res.ms) * 1000 });
    if (res.accepted !== GUESTS) throw new Error(`round seq ${seq}: ${res.accepted} of ${GUESTS} accepted; counters ${JSON.stringify(ha.counters)}`);
  }
  // One BA checked end to end (authenticator included), outside the timing.
  const g0 = guests[0]!;
  const probeSeq = 2 + TIMED_ROUNDS;
  const probe = await ha.handle(encodeBu(g0, 0, probeSeq, base), COAS[hostOf(0, probeSeq)]!, HA);
  const baVerified = !!probe && checkBindingAck(probe.mh, g0.sas[0]!, COAS[hostOf(0, probeSeq)]!).ok;

  // One more move + refresh pair under the profiler (not part of the rate above).
  const profBus = [batch(probeSeq + 1), batch(probeSeq + 2)];
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  for (const [j, bus] of profBus.entries()) {
    await drive(ha, GUESTS, (k) => bus[k]!, srcFor(probeSeq + 1 + j));
  }
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  await ha.stop();

  const timedMs = rounds.reduce((s, r) => s + r.ms, 0);
  const timedBus = GUESTS * TIMED_ROUNDS;
  return {
    guests: GUESTS, window: WINDOW,
    registration: { ...r0, perSec: (GUESTS / r0.ms) * 1000 },
    rounds, timedBus, timedMs, buPerSec: (timedBus / timedMs) * 1000, baVerified,
    profile: summariseProfile(profile),
  };
}

interface CpuProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }

/** Self time per function and per area (src/core, src/wire, node:crypto …), as % of samples. */
function summariseProfile(p: { nodes: CpuProfileNode[] }): InprocResult['profile'] {
  const byFn = new Map<string, { fn: string; where: string; hits: number }>();
  const byArea: Record<string, number> = {};
  let total = 0;
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    total += hits;
    const file = url.replace(/^file:\/\//, '');
    const rel = file.startsWith(ROOT) ? file.slice(ROOT.length + 1).replace(/^dist\//, '') : file;
    const where = rel ? `${rel.startsWith('node:') ? rel : basename(rel)}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const e = byFn.get(key) ?? { fn: functionName || '(anonymous)', where, hits: 0 };
    e.hits += hits;
    byFn.set(key, e);
    const area = /^src\/([a-z]+)(?:\/([a-z]+))?/.exec(rel);
    const name = area ? `src/${area[1]}${area[1] === 'wire' && area[2] === 'mh' ? '/mh' : ''}`
      : rel.startsWith('bench/') ? 'bench (driver)'
      : rel.startsWith('node:') ? 'node: internals'
      : functionName.startsWith('(') ? functionName : 'other (V8 builtins, native)';
    byArea[name] = (byArea[name] ?? 0) + hits;
  }
  const pct = (h: number) => Math.round((h / Math.max(1, total)) * 1000) / 10;
  const top = [...byFn.values()].sort((a, b) => b.hits - a.hits).slice(0, 12).map((e) => ({ fn: e.fn, where: e.where, selfPct: pct(e.hits) }));
  return { top, byArea: Object.fromEntries(Object.entries(byArea).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, pct(v)])) };
}

// --- 3. heap per binding ------------------------------------------------------------------

interface HeapResult {
  bindings: number; registerMs: number;
  directoryBytesPerGuest: number; bytesPerBinding: number; bytesPerBindingWithoutFakeDataplane: number;
  externalBytesPerBinding: number;
  breakdown: Record<string, number>;
}

async function heap(n: number): Promise<HeapResult> {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with --expose-gc');
  const settle = () => { gc(); gc(); return process.memoryUsage(); };
  const m0 = settle();
  let guests: GuestPolicy[] | null = Array.from({ length: n }, (_, i) => makeGuest(i));
  const dir = new MemoryGuestDirectory(guests);
  guests = null;
  const m1 = settle();

  const dp = new FakeHaDataplane(false);
  const ha = makeHa(dir, dp);
  await ha.start();
  const base = ntpFromUnixMs(Date.now());
  const CHUNK = 16_384;
  const t0 = performance.now();
  for (let start = 0; start < n; start += CHUNK) {
    const count = Math.min(CHUNK, n - start);
    const bus = Array.from({ length: count }, (_, k) => encodeBu(dir.byId(guestId(start + k))!, start + k, 1, base));
    const r = await drive(ha, count, (k) => bus[k]!, (k) => COAS[hostOf(start + k, 1)]!);
    if (r.accepted !== count) throw new Error(`heap run: ${r.accepted} of ${count} accepted at ${start}; ${JSON.stringify(ha.counters)}`);
  }
  const registerMs = performance.now() - t0;
  await ha.stop(); // timers only; the cache stays
  if (ha.cache.size !== n) throw new Error(`expected ${n} bindings, have ${ha.cache.size}`);
  const m2 = settle();

  // Take the parts away one at a time to see who holds what.
  const steps: [string, () => void][] = [
    ['fake data plane route map (not HA state)', () => dp.routes.clear()],
    ['HomeAgent.dirty (never drained without a store)', () => ha['dirty'].clear()],
    ['per-guest token buckets', () => ha['rate']['buckets'].clear()],
    ['binding cache: expiry wheel', () => ha.cache['wheel'].clear()],
    ['binding cache: prefix index', () => ha.cache['byPrefix'].clear()],
    ['binding cache: Binding objects + guest map', () => ha.cache['byGuest'].clear()],
  ];
  const breakdown: Record<string, number> = {};
  let prev = m2.heapUsed;
  for (const [name, clear] of steps) {
    clear();
    const h = settle().heapUsed;
    breakdown[name] = Math.round(((prev - h) / n) * 10) / 10;
    prev = h;
  }
  // What is left belongs to no binding structure: e.g. the HMAC KeyObject node:crypto caches per SA key on first use
  // (directory memory that only appears once a guest has registered).
  breakdown['rest (not released by the above; e.g. HMAC key objects cached per SA)'] = Math.round(((prev - m1.heapUsed) / n) * 10) / 10;
  const dpShare = breakdown['fake data plane route map (not HA state)'] ?? 0;
  const per = (m2.heapUsed - m1.heapUsed) / n;
  return {
    bindings: n, registerMs,
    directoryBytesPerGuest: (m1.heapUsed - m0.heapUsed) / n,
    bytesPerBinding: per,
    bytesPerBindingWithoutFakeDataplane: per - dpShare,
    externalBytesPerBinding: (m2.external - m1.external) / n,
    breakdown,
  };
}

// --- 2. through the socket between namespaces ---------------------------------------------

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The minimal bits of test/helpers/netns.ts: namespaces and children tracked by name/PID. */
class Lab {
  readonly tag = `r6bh${process.pid % 100000}`;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  ns(role: string): string { return `${this.tag}-${role}`; }
  addNs(role: string): void {
    const name = this.ns(role);
    try { sh('ip', ['netns', 'del', name]); } catch { /* not there */ }
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.exec(role, 'ip', ['link', 'set', 'lo', 'up']);
    this.exec(role, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0']);
    this.exec(role, 'sysctl', ['-qw', 'net.ipv6.conf.default.accept_dad=0']);
  }
  exec(role: string, cmd: string, args: string[]): string { return sh('ip', ['netns', 'exec', this.ns(role), cmd, ...args]); }
  link(a: string, aIf: string, aAddrs: string[], b: string, bIf: string, bAddrs: string[]): void {
    sh('ip', ['link', 'add', aIf, 'netns', this.ns(a), 'type', 'veth', 'peer', 'name', bIf, 'netns', this.ns(b)]);
    for (const [role, ifn, addrs] of [[a, aIf, aAddrs], [b, bIf, bAddrs]] as const) {
      this.exec(role, 'ip', ['link', 'set', ifn, 'up']);
      for (const addr of addrs) this.exec(role, 'ip', ['-6', 'addr', 'add', addr, 'dev', ifn, 'nodad']);
    }
  }
  spawn(role: string, cmd: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(role), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }
  destroy(): void {
    for (const child of this.children) {
      if (child.exitCode === null && child.pid) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    this.children.clear();
    for (const name of this.namespaces.reverse()) {
      try {
        for (const pid of sh('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean)) {
          try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
        }
      } catch { /* ns gone */ }
      try { sh('ip', ['netns', 'del', name]); } catch { /* already gone */ }
    }
    this.namespaces.length = 0;
  }
}

interface LoadPhase {
  sent: number; answered: number; accepted: number; rejected: number; lost: number; late: number; sendErrors: number;
  ms: number; perSec: number; p50Ms?: number; p90Ms?: number; p99Ms?: number; maxMs?: number;
}
interface LoadResult {
  registration: LoadPhase; timed: LoadPhase; unloaded: LoadPhase; verified: { checked: number; failed: number };
  cpu: { wallMs: number; generatorCpuMs: number; daemonCpuMs: number };
}
interface SocketResult {
  guests: number; timedRounds: number; window: number; configMiB: number; daemonStartMs: number; load: LoadResult;
  daemonCounters: unknown; daemonBindings: number;
}

function healthOver(path: string): Promise<{ bindings: number; counters: unknown }> {
  return new Promise((ok, fail) => {
    const req = request({ socketPath: path, path: '/api/v1/health', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => {
        try { ok(JSON.parse(body) as { bindings: number; counters: unknown }); } catch (e) { fail(e); }
      });
    });
    req.on('error', fail);
    req.on('timeout', () => req.destroy(new Error('health request timed out')));
    req.end();
  });
}

function collect(child: ChildProcess): { out: () => string; err: () => string; exited: Promise<number | null> } {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => { out += c; });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { out: () => out, err: () => err, exited };
}

/** The guests part of the daemon's config file. */
const configGuests = (n: number) => Array.from({ length: n }, (_, i) => ({
  id: guestId(i), mnps: [mnpText(i)], sas: [{ spi: spiOf(i), algorithm: 'hmac-sha1-96', key: keyHex(i) }],
}));

/**
 * Seconds the daemon would spend validating a config with `n` guests, extrapolated from 5,000
 * and 10,000 with the measured growth exponent (clamped to 1..2). A guard: while the MNP overlap
 * check was O(n²) this came to minutes at 100,000 guests; now it is about a second.
 */
function projectedConfigSec(n: number): number {
  const timeParse = (k: number) => {
    const raw = { addresses: [HA_TEXT], servedPrefixes: [SERVED], guests: configGuests(k) };
    const t0 = performance.now();
    parseHaConfig(raw);
    return (performance.now() - t0) / 1000;
  };
  timeParse(1000); // warm-up
  const t5 = timeParse(5000);
  const t10 = timeParse(10_000);
  const exponent = Math.min(2, Math.max(1, Math.log2(t10 / t5)));
  return t10 * (n / 10_000) ** exponent;
}

async function socketBench(guests: number): Promise<SocketResult> {
  // At least ~200,000 timed BUs, whatever the number of guests.
  const timedRounds = Math.max(TIMED_ROUNDS, Math.ceil(200_000 / guests));
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'roam6-bench-ha-'));
  let daemon: ChildProcess | undefined;
  // Interrupted: still remove the namespaces and processes this run created.
  const onSignal = (sig: NodeJS.Signals) => {
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const apiSock = join(dir, 'ha.sock');
    const config = {
      addresses: [HA_TEXT],
      servedPrefixes: [SERVED],
      maxLifetimeSec: 3600,
      replayProtection: { requireTimestamp: true, windowMs: TIMESTAMP_WINDOW_MS },
      rateLimit: { perSec: 20, burst: 40 },
      dataplane: { backend: 'none' },
      api: { listen: `unix:${apiSock}` },
      redis: { enabled: false },
      // warn: at info every created/moved binding is one log line; not what is measured here.
      log: { level: 'warn' },
      guests: configGuests(guests),
    };
    const configFile = join(dir, 'ha.json');
    const text = JSON.stringify(config);
    writeFileSync(configFile, text, { mode: 0o600 });

    lab.addNs('ha');
    lab.addNs('client');
    lab.link('ha', 'r6ha0', [`${HA_TEXT}/64`], 'client', 'r6cl0', [`${CLIENT_TEXT}/64`, ...Array.from({ length: HOSTS }, (_, h) => `${coaText(h)}/64`)]);

    const t0 = performance.now();
    daemon = lab.spawn('ha', process.execPath, [join(ROOT, 'bin/roam6.js'), 'ha', '--config', configFile]);
    const d = collect(daemon);
    let daemonExit: number | null | undefined;
    void d.exited.then((c) => { daemonExit = c; });
    for (;;) {
      if (daemonExit !== undefined) throw new Error(`daemon exited (${daemonExit}) during start: ${d.err().slice(-4000)}`);
      if (existsSync(apiSock)) {
        try { await healthOver(apiSock); break; } catch { /* not yet */ }
      }
      if (performance.now() - t0 > START_TIMEOUT_MS) {
        throw new Error(`daemon did not start within ${START_TIMEOUT_MS / 1000} s with ${guests} guests in its config ` +
          '(is config validation slow again? try --socket-guests 20000)');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const daemonStartMs = performance.now() - t0;
    process.stderr.write(`  daemon ready after ${(daemonStartMs / 1000).toFixed(1)} s\n`);

    const args = {
      guests, ha: HA_TEXT, coas: Array.from({ length: HOSTS }, (_, h) => coaText(h)),
      window: WINDOW, timedRounds, timedMaxMs: 30_000, timeoutMs: 2000, daemonPid: daemon.pid,
    };
    const gen = lab.spawn('client', process.execPath, [join(ROOT, 'bench/fixtures/bu-load.mjs'), JSON.stringify(args)]);
    const g = collect(gen);
    g.exited.then(() => undefined, () => undefined);
    gen.stderr?.on('data', (c: string) => process.stderr.write(`  [bu-load] ${c}`));
    const code = await g.exited;
    if (code !== 0) throw new Error(`bu-load exited ${code}: ${g.err().slice(-4000)}`);
    const load = JSON.parse(g.out().trim().split('\n').pop() ?? '{}') as LoadResult;
    const health = await healthOver(apiSock);

    daemon.kill('SIGTERM');
    await Promise.race([d.exited, new Promise((r) => setTimeout(r, 5000))]);
    return {
      guests, timedRounds, window: WINDOW, configMiB: Math.round((text.length / 2 ** 20) * 10) / 10, daemonStartMs, load,
      daemonCounters: health.counters, daemonBindings: health.bindings,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- orchestration ------------------------------------------------------------------------

function runChild<T>(part: string, extra: string[] = [], nodeFlags: string[] = []): Promise<T> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [...nodeFlags, SELF, '--child', part, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    child.on('error', fail);
    child.on('exit', (code) => {
      if (code !== 0) return fail(new Error(`bench child ${part} exited ${code}`));
      try { ok(JSON.parse(out.trim().split('\n').pop() ?? '') as T); } catch (e) { fail(e); }
    });
  });
}

const ms = (x: number | undefined) => (x === undefined ? '–' : x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));
const ratio = (x: number, target: number, higherIsBetter: boolean) => `${(higherIsBetter ? x / target : target / x).toFixed(2)}×`;

function canNetns(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    const probe = `r6bhprobe${process.pid}`;
    sh('ip', ['netns', 'add', probe]);
    sh('ip', ['netns', 'del', probe]);
    return null;
  } catch (e) {
    return `ip netns unavailable: ${String(e).split('\n')[0]}`;
  }
}

async function main(argv: string[]): Promise<void> {
  const opt = (name: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
  const child = opt('--child');
  const heapBindings = Number(opt('--heap-bindings') ?? 1_000_000);
  let socketGuests = Number(opt('--socket-guests') ?? GUESTS);
  let socketReduced: string | null = null;
  if (child) {
    const result: unknown = child === 'inproc' ? await inproc() : child === 'heap' ? await heap(heapBindings) : null;
    if (result === null) throw new Error(`unknown child ${child}`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const only = new Set((opt('--only') ?? 'inproc,socket,heap').split(','));
  const started = performance.now();
  const loadAtStart = loadavg()[0] ?? 0;
  const say = (s: string) => process.stderr.write(`${s}\n`);

  let inp: InprocResult | undefined;
  let sock: SocketResult | undefined;
  let sockSkipped: string | null = null;
  let hp: HeapResult | undefined;
  if (only.has('inproc')) {
    say('bench:ha 1/3 in process, 100,000 bindings …');
    inp = await runChild<InprocResult>('inproc');
    say(`  ${fmt(inp.buPerSec)} BU/s`);
  }
  if (only.has('socket')) {
    sockSkipped = canNetns();
    if (sockSkipped) say(`bench:ha 2/3 skipped: ${sockSkipped}`);
    else {
      if (opt('--socket-guests') === undefined) {
        const projected = projectedConfigSec(socketGuests);
        if (projected > 120) {
          const fit = Math.max(10_000, Math.floor((socketGuests * Math.sqrt(30 / projected)) / 10_000) * 10_000);
          socketReduced = `reduced from ${fmt(socketGuests)}: the daemon would spend ~${projected.toFixed(0)} s validating its config ` +
            '(is config validation in src/config/ha-config.ts quadratic again?)';
          say(`  ${socketReduced}; using ${fmt(fit)} guests`);
          socketGuests = fit;
        }
      }
      say(`bench:ha 2/3 through raw sockets between namespaces, ${fmt(socketGuests)} guests …`);
      sock = await socketBench(socketGuests);
      say(`  ${fmt(sock.load.timed.perSec)} BU/s, p50 ${ms(sock.load.timed.p50Ms)} ms, p99 ${ms(sock.load.timed.p99Ms)} ms, lost ${sock.load.timed.lost}`);
    }
  }
  if (only.has('heap')) {
    say(`bench:ha 3/3 heap at ${fmt(heapBindings)} bindings …`);
    hp = await runChild<HeapResult>('heap', ['--heap-bindings', String(heapBindings)], ['--expose-gc', '--max-old-space-size=8192']);
    say(`  ${fmt(hp.bytesPerBinding)} B/binding`);
  }
  const totalSec = (performance.now() - started) / 1000;

  const rows: string[] = [];
  const notes: string[] = [];
  if (inp) {
    rows.push(`| in process: authenticated BUs/s at ${fmt(inp.guests)} bindings (${inp.window} outstanding) | ${fmt(inp.buPerSec)} | ≥ ${fmt(TARGET_BU_PER_SEC)} | ${ratio(inp.buPerSec, TARGET_BU_PER_SEC, true)} |`);
    for (const r of inp.rounds) rows.push(`| · round seq ${r.seq} (${r.kind} every guest) | ${fmt(r.perSec)} BU/s (CPU/wall ${r.cpuPerWall}) | | |`);
    const cpuSec = inp.rounds.reduce((a, r) => a + (r.ms * r.cpuPerWall) / 1000, 0);
    rows.push(`| · per CPU-second of the HA process (robust to other load; GC helper threads count) | ${fmt(inp.timedBus / cpuSec)} BU | | |`);
    rows.push(`| · initial registration (creates) | ${fmt(inp.registration.perSec)} BU/s (CPU/wall ${inp.registration.cpuPerWall}) | | |`);
  }
  if (sock) {
    const t = sock.load.timed;
    rows.push(`| raw socket, netns: sustained BUs/s at ${fmt(sock.guests)} bindings (${fmt(t.sent)} BUs, ${sock.window} outstanding) | ${fmt(t.perSec)} | ≥ ${fmt(TARGET_BU_PER_SEC)} | ${ratio(t.perSec, TARGET_BU_PER_SEC, true)} |`);
    rows.push(`| · BU→BA latency under that load, p50 / p90 / p99 / max | ${ms(t.p50Ms)} / ${ms(t.p90Ms)} / ${ms(t.p99Ms)} / ${ms(t.maxMs)} ms | | |`);
    const u = sock.load.unloaded;
    rows.push(`| · BU→BA latency with 1 outstanding (${fmt(u.answered)} BUs), p50 / p99 / max | ${ms(u.p50Ms)} / ${ms(u.p99Ms)} / ${ms(u.maxMs)} ms | | |`);
    rows.push(`| · unanswered (lost) / late / rejected | ${t.lost} / ${t.late} / ${t.rejected} of ${fmt(t.sent)} | 0 | |`);
    rows.push(`| · registration of ${fmt(sock.guests)} guests over the socket | ${fmt(sock.load.registration.perSec)} BU/s, ${sock.load.registration.lost} lost | | |`);
    rows.push(`| · per CPU-second of the daemon | ${fmt(t.answered / (sock.load.cpu.daemonCpuMs / 1000))} BU | | |`);
    rows.push(`| · CPU during the timed phase: daemon / generator | ${fmt(sock.load.cpu.daemonCpuMs / sock.load.cpu.wallMs * 100)} % / ${fmt(sock.load.cpu.generatorCpuMs / sock.load.cpu.wallMs * 100)} % of one core | | |`);
    rows.push(`| · daemon start with ${fmt(sock.guests)} guests in the config (${sock.configMiB} MiB) | ${(sock.daemonStartMs / 1000).toFixed(1)} s | | |`);
    if (socketReduced) notes.push(`Socket run: ${socketReduced}.`);
  } else if (only.has('socket')) {
    rows.push(`| raw socket, netns | skipped: ${sockSkipped ?? 'not run'} | ≥ ${fmt(TARGET_BU_PER_SEC)} | |`);
  }
  if (hp) {
    rows.push(`| heap per binding at ${fmt(hp.bindings)} bindings (HA state, fake data plane's map excluded) | ${fmt(hp.bytesPerBindingWithoutFakeDataplane)} B | ≤ ${fmt(TARGET_BYTES_PER_BINDING)} B | ${ratio(hp.bytesPerBindingWithoutFakeDataplane, TARGET_BYTES_PER_BINDING, false)} |`);
    rows.push(`| · including the fake data plane's route map | ${fmt(hp.bytesPerBinding)} B | | |`);
    rows.push(`| · guest directory, per guest (measured before) | ${fmt(hp.directoryBytesPerGuest)} B | | |`);
  }
  let body = `Guests use HMAC-SHA1-96 SAs; each BU carries MN-ID, one MNP, the MESG-ID timestamp and the MN-HA option
(replay protection required, window widened so pre-encoded BUs stay valid). Guests move between ${HOSTS} CoAs on every
even sequence number, so timed rounds alternate "move" and "refresh". Fake data plane (\`dataplane: "none"\`), no
binding store. Whole run: ${totalSec.toFixed(0)} s; 1-minute load average at the start ${loadAtStart.toFixed(2)}.

Ratio ≥ 1 means the target is met. CPU/wall below 1 means the process did not have its core to itself.

| metric | result | target | ratio |
|---|---|---|---|
${rows.join('\n')}
`;
  if (sock) {
    notes.push(`The socket run puts the daemon (namespace \`ha\`) and the load generator (namespace \`client\`,
bench/fixtures/bu-load.mjs, BUs pre-encoded) on the same 2 cores, on one veth. Log level \`warn\`. The generator keeps
${sock.window} BUs outstanding, matches BAs by MN-ID and sequence number, verifies the authenticator of every 997th BA
(${sock.load.verified.checked} checked, ${sock.load.verified.failed} failed) and counts a BU lost after 2 s.`);
  }
  if (inp) {
    notes.push(`CPU profile of two more in-process rounds (self time, % of samples) — by area: ${Object.entries(inp.profile.byArea).slice(0, 8).map(([k, v]) => `${k} ${v} %`).join(', ')}.
Top functions: ${inp.profile.top.slice(0, 8).map((e) => `\`${e.fn}\` (${e.where || 'native'}) ${e.selfPct} %`).join(', ')}.`);
  }
  if (hp) {
    notes.push(`Heap per binding, taken apart (bytes per binding, by clearing each structure and collecting): ${Object.entries(hp.breakdown).map(([k, v]) => `${k} ${v}`).join('; ')}. Registering ${fmt(hp.bindings)} bindings through \`ha.handle\` took ${(hp.registerMs / 1000).toFixed(1)} s; off-heap (\`external\`) per binding: ${fmt(hp.externalBytesPerBinding)} B — that is the guest's 20-octet SA key, which V8 moves off-heap the first time node:crypto uses it, i.e. directory memory, not binding memory.`);
  }
  body += `\n${notes.join('\n\n')}\n`;
  const extra = argv.filter((a) => a !== '--child');
  const command = `npm run bench:ha${extra.length ? ` -- ${extra.join(' ')}` : ''}`;
  writeSection('ha', 'Home Agent: BU rate and memory per binding', command, body, { inproc: inp, socket: sock ? { ...sock, reduced: socketReduced } : { skipped: sockSkipped }, heap: hp, totalSec, loadAtStart });
  process.stdout.write(`${JSON.stringify({ inproc: inp, socket: sock, heap: hp, totalSec }, null, 2)}\n`);
}

await main(process.argv.slice(2));
