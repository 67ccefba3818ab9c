/**
 * Shared pieces of the lab benchmarks (bench/migrate.ts, bench/agent.ts): processes inside
 * namespaces (the rtnetlink helper, stream senders and receivers), ping round trips, a
 * migration done by calling the agents' API directly (no queue), and small statistics.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

import { apiRequest } from '../src/cli/api-client.js';
import { guestPortName } from '../src/core/guest-link-identity.js';
import { LAB_ADDR, type LabHost, type LabState } from '../src/lab/lab.js';
import type { RedisHandle } from '../src/platform/redis/connection.js';
import { redisKeys } from '../src/platform/redis/keys.js';
import { RedisGuestRegistry } from '../src/platform/redis/guest-registry.js';
import { RedisHostRegistry } from '../src/platform/redis/host-registry.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The checkout root (where package.json and bin/ are), from dist/bench/ or bench/. */
export const ROOT = ((): string => {
  let dir = HERE;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found');
    dir = up;
  }
  return dir;
})();
export const BIN = join(ROOT, 'bin', 'roam6.js');

export const nowMs = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' / ');
export { stats, r1, r2, type Stats } from './stats.js';

export const ipq = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
export const inNs = (ns: string, ...args: string[]) => ipq('netns', 'exec', ns, ...args);

// ---------------------------------------------------------------------------------------------
// processes in namespaces

/** A node process in a namespace that prints JSON lines; resolves `ready` on the first line with `"event":"<ev>"`. */
export class NsProcess {
  readonly child: ChildProcess;
  private buf = '';
  private err = '';
  readonly lines: string[] = [];
  private waiters: { ev: string; res: () => void }[] = [];

  constructor(readonly label: string, ns: string, args: string[]) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.lines.push(line);
        this.onLine(line);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }

  protected onLine(line: string): void {
    for (const w of [...this.waiters]) {
      if (line.includes(`"event":"${w.ev}"`)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.res();
      }
    }
  }

  ready(ev: string, timeoutMs = 20_000): Promise<void> {
    if (this.lines.some((l) => l.includes(`"event":"${ev}"`))) return Promise.resolve();
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`${this.label}: no "${ev}" within ${timeoutMs} ms; stderr: ${this.err.trim().slice(-500)}`)), timeoutMs);
      this.waiters.push({ ev, res: () => { clearTimeout(t); res(); } });
      this.child.once('exit', (code) => { clearTimeout(t); rej(new Error(`${this.label} exited (${code}) before "${ev}": ${this.err.trim().slice(-500)}`)); });
    });
  }

  /** The last JSON line with this event, parsed. */
  lastEvent<T>(ev: string): T | null {
    const l = [...this.lines].reverse().find((x) => x.includes(`"event":"${ev}"`));
    return l ? (JSON.parse(l) as T) : null;
  }

  stop(timeoutMs = 5000): Promise<void> {
    return new Promise((res) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return res();
      const t = setTimeout(() => { this.child.kill('SIGKILL'); }, timeoutMs);
      this.child.once('exit', () => { clearTimeout(t); res(); });
      this.child.kill('SIGTERM');
    });
  }
}

export interface HandReply { id: number; ok: boolean; startedAt?: number; doneAt?: number; error?: string }

/** bench/netns-helper.ts in a namespace: rtnetlink moves and bridge attaches on request. */
export class NetnsHand extends NsProcess {
  private next = 1;
  private pending = new Map<number, (r: HandReply) => void>();

  constructor(readonly ns: string) {
    super(`netns-helper in ${ns}`, ns, [join(HERE, 'netns-helper.js')]);
  }

  protected override onLine(line: string): void {
    super.onLine(line);
    if (!line.startsWith('{"id"')) return;
    const r = JSON.parse(line) as HandReply;
    this.pending.get(r.id)?.(r);
    this.pending.delete(r.id);
  }

  async request(req: { op: 'move'; ifname: string; toNs: string } | { op: 'attach'; ifname: string; bridge: string; mtu?: number } | { op: 'ping' }): Promise<Required<Pick<HandReply, 'startedAt' | 'doneAt'>>> {
    const id = this.next++;
    const reply = await new Promise<HandReply>((res) => {
      this.pending.set(id, res);
      this.child.stdin!.write(`${JSON.stringify({ id, ...req })}\n`);
    });
    if (!reply.ok || reply.startedAt === undefined || reply.doneAt === undefined) throw new Error(`${this.label}: ${req.op} failed: ${reply.error ?? 'no times'}`);
    return { startedAt: reply.startedAt, doneAt: reply.doneAt };
  }

  async open(): Promise<this> {
    await this.ready('ready');
    return this;
  }

  close(): Promise<void> {
    this.child.stdin!.end();
    return this.stop();
  }
}

/** A `roam6 lab stream send|recv` process. */
export function streamProcess(label: string, ns: string, args: string[]): NsProcess {
  return new NsProcess(label, ns, [BIN, 'lab', 'stream', ...args]);
}

// ---------------------------------------------------------------------------------------------
// round trips

/** ICMPv6 echo round trips (ms) from a namespace. */
export function pingRtts(ns: string, addr: string, count: number, intervalSec = 0.02): number[] {
  let out = '';
  try {
    out = inNs(ns, 'ping', '-6', '-n', '-c', String(count), '-i', String(intervalSec), '-W', '1', addr);
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? '');
  }
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

// ---------------------------------------------------------------------------------------------
// a migration through the agents' API, no queue

export interface DirectMove {
  guest: string;
  from: LabHost;
  to: LabHost;
  /** Step durations, ms. */
  validateMs: number;
  prepareMs: number;
  moveMs: number;
  activateMs: number;
  verifyMs: number;
  releaseMs: number;
  totalMs: number;
  /** From the activate request leaving this process to the BA reaching the agent (the agent's registeredAt). */
  activateToBaMs: number;
  /** The agent's BU→BA time (elapsedMs) and BUs sent. */
  buToBaMs: number;
  attempts: number;
  /** The agent's registeredAt − attachedAt. */
  attachToBaMs: number;
  /** Link in neither host's bridge: move start → the agent attached it. */
  pauseMs: number;
}

interface ActivateBody { seq: number; elapsedMs: number; attempts: number; attachedAt: number; registeredAt: number }

export interface DirectContext {
  lab: LabState;
  redis: RedisHandle;
  hands: Record<LabHost, NetnsHand>;
}

async function post(api: string, guest: string, op: string): Promise<unknown> {
  const r = await apiRequest(api, 'POST', `/api/v1/guests/${encodeURIComponent(guest)}/${op}`);
  if (r.status !== 200) throw new Error(`${op} ${guest} on ${api}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/**
 * The orchestrator's six steps done by hand, each directly: validate (the same Redis reads),
 * prepare on the destination agent's API, the netns driver's move (rtnetlink, from the source
 * host's namespace), activate on the destination's API, verify (poll the HA's persisted binding
 * every 2 ms), release on the source's API; then the epoch counter moves on as the orchestrator's
 * would (so the next queued migration gets a fresh job id).
 */
export async function directMove(ctx: DirectContext, guest: string, from: LabHost, to: LabHost): Promise<DirectMove> {
  const keys = redisKeys();
  const c = ctx.redis.client;
  const t0 = nowMs();
  const rec = await new RedisGuestRegistry(c).get(guest);
  if (rec?.host !== from) throw new Error(`${guest} is on ${rec?.host ?? 'no host'}, not ${from}`);
  const hosts = new RedisHostRegistry(c);
  const [a, b] = await Promise.all([hosts.alive(to), hosts.alive(from)]);
  if (!a || !b) throw new Error('a host is not alive');
  const t1 = nowMs();
  await post(ctx.lab.agentApis[to], guest, 'prepare');
  const t2 = nowMs();
  const mv = await ctx.hands[from].request({ op: 'move', ifname: guestPortName(guest), toNs: ctx.lab.namespaces[to]! });
  const t3 = nowMs();
  const act = (await post(ctx.lab.agentApis[to], guest, 'activate')) as ActivateBody;
  const t4 = nowMs();
  const want = LAB_ADDR[to];
  for (;;) {
    const v = await c.hget(keys.bindings, guest);
    if (v && (JSON.parse(v) as { coa: string }).coa === want) break;
    if (nowMs() - t4 > 5000) throw new Error(`binding of ${guest} does not show ${want}`);
    await sleep(2);
  }
  const t5 = nowMs();
  await post(ctx.lab.agentApis[from], guest, 'release');
  const t6 = nowMs();
  await c.hincrby(keys.guestState(guest), 'migrations', 1);
  return {
    guest, from, to,
    validateMs: t1 - t0, prepareMs: t2 - t1, moveMs: t3 - t2, activateMs: t4 - t3, verifyMs: t5 - t4, releaseMs: t6 - t5,
    totalMs: nowMs() - t0,
    activateToBaMs: act.registeredAt - t3,
    buToBaMs: act.elapsedMs,
    attempts: act.attempts,
    attachToBaMs: act.registeredAt - act.attachedAt,
    pauseMs: act.attachedAt - mv.startedAt,
  };
}

export async function openHands(lab: LabState): Promise<Record<LabHost, NetnsHand>> {
  const a = await new NetnsHand(lab.namespaces['host-a']!).open();
  const b = await new NetnsHand(lab.namespaces['host-b']!).open();
  return { 'host-a': a, 'host-b': b };
}

// ---------------------------------------------------------------------------------------------
// the paired experiment's streams: roam6 across segments and the one-segment baseline, alike

/** One stream: its direction, rate and packet size, port and id. */
export interface StreamDef { key: string; label: string; dir: 'up' | 'down'; rateKbit: number; size: number; port: number; id: number }
/** One side of the experiment: roam6 across segments, or the one-segment baseline. */
export interface World { name: 'roam6' | 'baseline'; guestNs: string; cnNs: string; guestAddr: string; cnAddr: string }

/**
 * Start every stream in every world, each received into `file(w, s)`: all receivers listen
 * before the first sender starts. The processes go into `receivers` and `senders`
 * (`<world>/<stream>`) as they start, so the caller's cleanup stops what did start.
 */
export async function startWorldStreams(
  worlds: readonly World[],
  streams: readonly StreamDef[],
  file: (w: World, s: StreamDef) => string,
  receivers: NsProcess[],
  senders: Map<string, NsProcess>,
): Promise<void> {
  for (const w of worlds) {
    for (const s of streams) {
      const r = streamProcess(`recv ${w.name}/${s.key}`, s.dir === 'up' ? w.cnNs : w.guestNs, ['recv', '--port', String(s.port), '--out', file(w, s)]);
      receivers.push(r);
      await r.ready('listening');
    }
  }
  for (const w of worlds) {
    for (const s of streams) {
      const [txNs, to] = s.dir === 'up' ? [w.guestNs, w.cnAddr] : [w.cnNs, w.guestAddr];
      const p = streamProcess(`send ${w.name}/${s.key}`, txNs, ['send', '--to', to, '--port', String(s.port), '--rate-kbit', String(s.rateKbit), '--size', String(s.size), '--stream-id', String(s.id)]);
      senders.set(`${w.name}/${s.key}`, p);
      await p.ready('sending');
    }
  }
}
