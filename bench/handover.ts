/**
 * `npm run bench:handover` (root): the reference paper's experiment — a guest streaming during
 * live migration between hosts on two IPv6 segments (the paper lost ~6 s; Kagemusha adds
 * several hundred ms; LISP-based systems ~300 ms) — with the zero-loss handover: the HA's
 * userspace data plane holds the guest's packets from its pause until the BU from its new host.
 *
 * Three configurations, each in its own lab, each with its own same-segment baseline measured
 * in the same run:
 *
 *   netns   netns driver, HA on the userspace data plane (hold on)
 *   kernel  netns driver, HA on the kernel data plane (seg6; no hold): the difference
 *   qemu    QEMU guests under TCG, HA on the userspace data plane (hold on)
 *
 * netns/kernel: the guest streams 520 kbit/s of sequence-numbered UDP to the CN and the CN
 * streams 520 kbit/s back (`roam6 lab stream`), plus a 64 B probe every 2 ms each way (finer
 * time resolution); baseline: bench/one-segment.ts (the same rtnetlink move inside one L2
 * segment, no roam6), interleaved. qemu: the guest's own r6stream sends 520 kbit/s to the CN
 * from boot; the CN sends 520 kbit/s to the guest's UDP echo, which returns every packet to the
 * CN (so CN→guest is seen at the CN, one guest→CN hop later, and the guest counts its own
 * holes); baseline: the same QEMU live migration inside one segment (a second QEMU whose TAP is
 * on the same bridge), interleaved.
 *
 * Per migration and direction: the receiver's gap, the hypervisor's downtime, the gap added by
 * the mobility layer (roam6 − baseline, paired), packets lost and when they were sent relative
 * to the HA's hold (its SSE events), and the HA's hold counters (GET /metrics). The HA round
 * trip is pinged from both hosts in the same run. Figure 5 (traffic per host over time) is
 * drawn from the hosts' uplink counters into docs/bench/handover-<config>.svg.
 *
 *   node dist/bench/handover.js [--only netns,kernel,qemu] [--migrations 20] [--no-probes]
 *        [--capture] [--keep-lab] [--render-only]
 *
 * --capture: tcpdump (1400-byte packets only) in the HA's and both hosts' namespaces; each lost
 * packet of the 520 kbit/s streams is then traced (where it was last seen). --keep-lab: leave the
 * labs up for a look afterwards (`roam6 lab down --name hovn|hovk|hovq`).
 *
 * A partial run (--only) keeps the other configurations' results from docs/bench/handover.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { labDown, labUp, guestAddress, qemuGuestConsole, LAB_ADDR, LAB_QEMU_STREAM, type LabHost, type LabState } from '../src/lab/lab.js';
import { readArrivals } from '../src/lab/stream.js';
import { readTrafficSamples } from '../src/lab/traffic-sampler.js';
import {
  binTraffic, gapsPerMigration, mobilityAddedGap, trafficPoints,
  type AddedGapResult, type Arrival, type MigrationWindow, type TrafficSample,
} from '../src/lab/analysis.js';
import { figure5Svg, type ChartSeries } from '../src/lab/chart.js';
import { qemuGuestPaths, type QemuGuestPaths } from '../src/platform/qemu/command-line.js';
import { connectRedis } from '../src/platform/redis/connection.js';
import { Orchestration } from '../src/orchestrator/runtime.js';
import { hostQueue, stepJobId, type MigrationOutcome } from '../src/orchestrator/jobs.js';
import type { ActivateStepResult, MigrateStepResult } from '../src/orchestrator/migration.js';
import type { Job } from 'bullmq';
import { BIN, NetnsHand, NsProcess, ROOT, load, pingRtts, r1, r2, sleep, startWorldStreams, stats, streamProcess, type StreamDef, type Stats, type World } from './lab-bench.js';
import { ONE_SEGMENT, oneSegmentDown, oneSegmentUp, type OneSegment } from './one-segment.js';
import {
  NsCapture, guestCountersFromSerial, holdDelta, readHoldCounters, readSightings, sameSegmentMigration,
  type GuestStreamCounters, type HoldCounters, type Sighting,
} from './handover-lib.js';
import { writeSection } from './report.js';
import { connectEvents, type SseConnection } from '../src/cli/sse-client.js';

const CONFIGS = ['netns', 'kernel', 'qemu'] as const;
type ConfigName = (typeof CONFIGS)[number];

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}
const ONLY = new Set(arg('only', CONFIGS.join(',')).split(',').filter(Boolean));
for (const o of ONLY) if (!(CONFIGS as readonly string[]).includes(o)) throw new Error(`--only: unknown configuration ${o} (netns, kernel, qemu)`);
const MIGRATIONS = Number(arg('migrations', '20'));
const PROBES = !process.argv.includes('--no-probes');
const CAPTURE = process.argv.includes('--capture');
const OUT = '/tmp/roam6-bench-handover';
/** netns: the gap search window around each migration; qemu: wider (the pause sits at the end of a long copy). */
const SLACK_MS: Record<'netns' | 'qemu', number> = { netns: 150, qemu: 400 };
const SETTLE_MS = 1000;
const QEMU_SETTLE_MS = 1500;
const SAMPLE_MS = 50;

const PAPER_MS = 6000;
const KAGEMUSHA = 'several hundred ms';
const LISP_MS = 300;

const say = (s: string) => process.stderr.write(`[bench:handover ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ---------------------------------------------------------------------------------------------
// result types

interface HaEventRecord { type: string; at: number; packets?: number; durationMs?: number; coa?: string; detail?: string }

interface Move {
  i: number;
  from: string;
  to: string;
  startedAt: number;
  endedAt: number;
  totalMs: number;
  downtimeMs: number;
  resumeToBaMs: number;
  registrationMs: number;
  held: boolean;
  /** Epoch ms from the step results: the guest paused (source hypervisor), resumed, was attached at the destination, got its BA. */
  pausedAt: number | null;
  resumedAt: number | null;
  attachedAt: number | null;
  registeredAt: number | null;
  /** The destination agent waited this long for the guest link to carry packets before registering (its log; ≥ 10 ms only). */
  linkWaitMs?: number | null;
  /** qemu: when the destination QEMU reported RESUME (its agent's log); the source's resumedAt is its own end of downtime. */
  destResumedAt?: number | null;
  /** The destination agent's registration: BUs sent until the BA, and BU → BA. */
  buAttempts: number | null;
  buToBaMs: number | null;
  /** HA events for the guest inside this migration's window (held, released, moved). */
  events: HaEventRecord[];
  /** The HA's counters over this migration (delta of GET /metrics). */
  counters: HoldCounters;
  /** qemu: the guest's own counters before and after. */
  guestBefore?: GuestStreamCounters;
  guestAfter?: GuestStreamCounters;
  /** netns: packets the guest's own eth0 dropped over this migration (tx_dropped: sent while its veth peer was detached). */
  guestTxDropped?: number;
}

interface BaselineMove {
  i: number;
  from: string;
  to: string;
  startedAt: number;
  endedAt: number;
  /** netns: move + attach; qemu: QEMU's reported downtime. */
  pauseMs: number;
  totalMs?: number;
  guestBefore?: GuestStreamCounters;
  guestAfter?: GuestStreamCounters;
  guestTxDropped?: number;
}

type LossPhase = 'before-pause' | 'paused-before-hold' | 'paused' | 'resumed-before-ba' | 'after-ba' | 'unknown';

interface LostPacket {
  seq: number;
  /** Estimated send time relative to the guest's pause (ms; the migrate step's pausedAt). */
  sentVsPauseMs: number | null;
  /** …relative to the HA's hold (null: no hold in this migration). */
  sentVsHoldMs: number | null;
  /** …relative to the BA's effect at the HA (its released/moved event). */
  sentVsSwitchMs: number | null;
  /** When it was sent: before the pause, during it (to the guest running again at the destination), after that but before the BA, after the BA. */
  phase: LossPhase;
  /** --capture: every sighting in the HA's and the hosts' namespaces, ms from the pause. */
  seen?: string[];
  /** --capture: when it entered the HA's namespace (ms from the pause); `phase` is then taken from this, not from the estimated send time. */
  atHaVsPauseMs?: number;
}

interface GapRow {
  gapMs: number;
  lost: number;
  lostSeqs: number;
  /** Where lost packets were sent, relative to the HA's hold and switch (roam6 only). */
  lostDetail?: LostPacket[];
  /** The same, summed up (instead of lostDetail for the probes, to keep the JSON small). */
  lostSummary?: { phases: Partial<Record<LossPhase, number>>; sentFromPauseMs: number | null; sentToPauseMs: number | null };
}

interface StreamResult {
  key: string;
  label: string;
  dir: 'up' | 'down';
  intervalMs: number;
  sent: { roam6: number | null; baseline: number | null };
  /** Sends the sender's kernel refused (sequence numbers used, nothing on the wire), with their errno codes. */
  sendErrors?: { roam6: Record<string, number> | null; baseline: Record<string, number> | null };
  received: { roam6: number; baseline: number };
  roam6: GapRow[];
  baseline: GapRow[];
  added: AddedGapResult;
}

interface ConfigResult {
  config: ConfigName;
  hypervisor: 'netns' | 'qemu';
  haBackend: 'userspace' | 'kernel';
  date: string;
  load: string;
  seconds: number;
  migrations: number;
  haRtt: Stats & { samples: number[] };
  moves: Move[];
  baseline: BaselineMove[];
  streams: StreamResult[];
  countersTotal: HoldCounters;
  charts: { full: string; zoom: string };
  /** qemu: the guest's account at the end (sequence numbers used, echo holes). */
  guestEnd?: GuestStreamCounters | null;
  /** CN sender's count (qemu, CN→guest). */
  notes: string[];
}

interface Results {
  configs: Partial<Record<ConfigName, ConfigResult>>;
  /** How the results were produced (kept for --render-only). */
  command?: string;
}

// ---------------------------------------------------------------------------------------------
// the HA's events (SSE), for the hold/switch times

class HaEvents {
  readonly events: HaEventRecord[] = [];
  private conn: SseConnection | null = null;

  constructor(private readonly haApi: string, private readonly guest: string) {}

  /** Subscribe (src/cli/sse-client.ts: reconnects after a drop); resolves once the stream is open. */
  open(): Promise<void> {
    const path = `/api/v1/events?guest=${encodeURIComponent(this.guest)}&types=held,released,moved,updated`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('GET /api/v1/events: the stream did not open within 5 s')), 5000);
      this.conn = connectEvents(this.haApi, path, {
        onState: (state) => {
          if (state !== 'open') return;
          clearTimeout(timer);
          resolve();
        },
        onEvent: ({ data }) => {
          let e: { type?: string; at?: string; packets?: number; durationMs?: number; coa?: string; detail?: string };
          try {
            e = JSON.parse(data) as typeof e;
          } catch {
            return;
          }
          if (!e.type || !e.at || e.type === 'hello') return;
          this.events.push({ type: e.type, at: Date.parse(e.at), ...(e.packets !== undefined ? { packets: e.packets } : {}), ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}), ...(e.coa ? { coa: e.coa } : {}), ...(e.detail ? { detail: e.detail } : {}) });
        },
      });
    });
  }

  between(from: number, to: number): HaEventRecord[] {
    return this.events.filter((e) => e.at >= from && e.at <= to);
  }

  close(): void {
    this.conn?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// analysis shared by all configurations

/** The send time of a sequence number that never arrived, interpolated from its neighbours. */
function sendTimeOf(seq: number, bySeq: readonly Arrival[]): number | null {
  let lo = 0;
  let hi = bySeq.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bySeq[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  const after = bySeq[lo];
  const before = bySeq[lo - 1];
  if (!before || !after) return null;
  return before.sentAt + ((after.sentAt - before.sentAt) * (seq - before.seq)) / (after.seq - before.seq);
}

/** The sequence numbers missing in the window of a migration (between the last arrival before it and the first after it). */
function lostSeqsIn(arrivals: readonly Arrival[], w: MigrationWindow, slackMs: number): number[] {
  const from = w.startedAt - slackMs;
  const to = w.endedAt + slackMs;
  const inside = arrivals.filter((a) => a.recvAt >= from && a.recvAt <= to).map((a) => a.seq);
  const before = arrivals.filter((a) => a.recvAt < from).reduce((m, a) => Math.max(m, a.seq), -1);
  const after = arrivals.filter((a) => a.recvAt > to).reduce((m, a) => Math.min(m, a.seq), Infinity);
  if (before < 0 || !Number.isFinite(after)) return [];
  const got = new Set([...inside, ...arrivals.filter((a) => a.seq > before && a.seq < after).map((a) => a.seq)]);
  const out: number[] = [];
  for (let s = before + 1; s < after; s++) if (!got.has(s)) out.push(s);
  return out;
}

/** Replace a stream's per-packet loss detail by counts per phase and the send-time range. */
function summariseLoss(st: StreamResult): void {
  for (const g of st.roam6) {
    const d = g.lostDetail;
    if (!d) continue;
    const phases: Partial<Record<LossPhase, number>> = {};
    for (const p of d) phases[p.phase] = (phases[p.phase] ?? 0) + 1;
    const t = d.map((p) => p.sentVsPauseMs).filter((x): x is number => x !== null);
    g.lostSummary = { phases, sentFromPauseMs: t.length ? Math.min(...t) : null, sentToPauseMs: t.length ? Math.max(...t) : null };
    delete g.lostDetail;
  }
}

/** When, in a migration, time `at` falls (a lost packet's send time, or when the HA saw it). */
function phaseOf(at: number | null, mv: Move): LossPhase {
  const held = mv.events.find((e) => e.type === 'held');
  const live = mv.resumedAt !== null || mv.attachedAt !== null ? Math.max(mv.resumedAt ?? -Infinity, mv.attachedAt ?? -Infinity) : null;
  return at === null || mv.pausedAt === null ? 'unknown'
    : at < mv.pausedAt ? 'before-pause'
      : held && at < held.at ? 'paused-before-hold'
        : live === null || at <= live ? 'paused'
          : mv.registeredAt === null || at <= mv.registeredAt ? 'resumed-before-ba'
            : 'after-ba';
}

/**
 * Gaps per migration; for roam6 (with `moves`) also when each lost packet was sent relative to
 * the HA's hold and switch. `foreignClock`: the sender's sentAt is another clock (a QEMU guest's,
 * which also falls behind by each pause), so its offset is taken from the packets of the 3 s
 * before each migration (fastest one-way trip taken as 0).
 */
function gapRows(arrivals: readonly Arrival[], windows: readonly MigrationWindow[], slackMs: number, intervalMs: number, moves?: readonly Move[], foreignClock = false): GapRow[] {
  const g = gapsPerMigration(arrivals, windows, { slackMs, intervalMs });
  const bySeq = [...arrivals].sort((a, b) => a.seq - b.seq);
  return g.migrations.map((m, i) => {
    const row: GapRow = { gapMs: m.gapMs, lost: m.lost, lostSeqs: m.lostSeqs };
    const mv = moves?.[i];
    if (mv && m.lost > 0) {
      const held = mv.events.find((e) => e.type === 'held');
      const sw = mv.events.find((e) => e.type === 'released') ?? mv.events.find((e) => e.type === 'moved');
      const w = windows[i]!;
      const offset = foreignClock
        ? arrivals.filter((a) => a.recvAt >= w.startedAt - 3000 && a.recvAt < w.startedAt).reduce((m, a) => Math.min(m, a.recvAt - a.sentAt), Infinity)
        : 0;
      row.lostDetail = lostSeqsIn(arrivals, w, slackMs).map((seq) => {
        const t = sendTimeOf(seq, bySeq);
        const at = t === null || !Number.isFinite(offset) ? null : t + offset;
        const rel = (x: number | null | undefined) => (at !== null && x !== null && x !== undefined ? Math.round((at - x) * 10) / 10 : null);
        return { seq, sentVsPauseMs: rel(mv.pausedAt), sentVsHoldMs: rel(held?.at), sentVsSwitchMs: rel(sw?.at), phase: phaseOf(at, mv) };
      });
    }
    return row;
  });
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

// ---------------------------------------------------------------------------------------------
// figure 5

interface ChartInput {
  config: ConfigName;
  title: string;
  samples: TrafficSample[];
  windows: MigrationWindow[];
  moves: Move[];
  gapOf: (i: number) => number;
  /** What the lines carry, for the subtitle. */
  note: string;
}

const CHART_TITLE: Record<ConfigName, string> = {
  netns: 'roam6, netns guest, the HA holds packets: 520 kbit/s each way',
  kernel: 'roam6, netns guest, kernel HA (no hold): 520 kbit/s each way',
  qemu: 'roam6, QEMU guest (TCG), the HA holds packets: 520 kbit/s each way',
};
const CHART_NOTE: Record<ConfigName, string> = {
  netns: PROBES ? '520 kbit/s stream + 2 ms probe each way' : '520 kbit/s each way',
  kernel: PROBES ? '520 kbit/s stream + 2 ms probe each way' : '520 kbit/s each way',
  qemu: "guest→CN carries the guest's echo of the CN's stream too",
};

const HOST_COLORS: Record<string, { up: string; down: string }> = {
  'host-a': { up: '#0072B2', down: '#56B4E9' },
  'host-b': { up: '#D55E00', down: '#E69F00' },
};

function drawCharts(c: ChartInput): { full: string; zoom: string } {
  const dir = join(ROOT, 'docs', 'bench');
  mkdirSync(dir, { recursive: true });
  const seriesFor = (binMs: number, from = -Infinity, to = Infinity): ChartSeries[] => {
    const s = c.samples.filter((x) => x.t >= from && x.t <= to);
    const out: ChartSeries[] = [];
    for (const t of binTraffic(s, binMs).sort((a, b) => (a.label ?? '').localeCompare(b.label ?? ''))) {
      const host = t.label ?? t.iface;
      const col = HOST_COLORS[host] ?? { up: '#009E73', down: '#CC79A7' };
      out.push({ label: `${host} → HA (guest→CN)`, color: col.up, points: trafficPoints(t, 'tx') });
      out.push({ label: `HA → ${host} (CN→guest)`, color: col.down, points: trafficPoints(t, 'rx') });
    }
    return out;
  };
  const marker = (i: number) => {
    const m = c.moves[i]!;
    const held = m.events.find((e) => e.type === 'held');
    return { at: held?.at ?? c.windows[i]!.startedAt, label: `${m.from.replace('host-', '').toUpperCase()}→${m.to.replace('host-', '').toUpperCase()} · gap ${Math.round(c.gapOf(i))} ms` };
  };
  const full = figure5Svg({
    title: c.title,
    subtitle: `each host's uplink, to and from the HA, 250 ms bins · ${c.note}`,
    series: seriesFor(250),
    migrations: c.moves.map((_, i) => marker(i)),
    yLabel: 'kbit/s',
    idPrefix: `ho-${c.config}`,
  });
  const k = Math.min(2, c.windows.length);
  const zFrom = (c.windows[0]?.startedAt ?? 0) - 1500;
  const zTo = (c.windows[k - 1]?.endedAt ?? 0) + 1500;
  const zoom = figure5Svg({
    title: c.title,
    subtitle: `first ${k} migrations, ${SAMPLE_MS} ms bins · marker: the HA's hold, else the start · ${c.note}`,
    series: seriesFor(SAMPLE_MS, zFrom, zTo),
    migrations: c.moves.slice(0, k).map((_, i) => marker(i)),
    yLabel: 'kbit/s',
    idPrefix: `hoz-${c.config}`,
  });
  const fullPath = `docs/bench/handover-${c.config}.svg`;
  const zoomPath = `docs/bench/handover-${c.config}-zoom.svg`;
  writeFileSync(join(ROOT, fullPath), full);
  writeFileSync(join(ROOT, zoomPath), zoom);
  return { full: fullPath, zoom: zoomPath };
}

function startSamplers(lab: LabState, out: string): Promise<NsProcess[]> {
  return Promise.all(
    (['host-a', 'host-b'] as const).map(async (h) => {
      const p = new NsProcess(`sample ${h}`, lab.namespaces[h]!, [BIN, 'lab', 'sample', '--iface', h === 'host-a' ? 'a-c' : 'b-c', '--label', h, '--interval-ms', String(SAMPLE_MS), '--out', join(out, `sample-${h}.jsonl`)]);
      await p.ready('sampling');
      return p;
    }),
  );
}

function readSamples(out: string): TrafficSample[] {
  return (['host-a', 'host-b'] as const).flatMap((h) => readTrafficSamples(join(out, `sample-${h}.jsonl`)));
}

/** The absolute times of a finished migration, from its migrate and activate step jobs (kept after completion). */
async function stepTimes(orch: Orchestration, job: Job, o: MigrationOutcome): Promise<Pick<Move, 'pausedAt' | 'resumedAt' | 'attachedAt' | 'registeredAt' | 'buAttempts' | 'buToBaMs'>> {
  const find = async <T>(host: string, step: 'migrate' | 'activate'): Promise<T | null> => {
    let best: { at: number; v: T } | null = null;
    for (let k = 0; k < 4; k++) {
      const j = await orch.queue(hostQueue(host)).getJob(stepJobId(`${String(job.id)}.${job.timestamp}.${k}`, step));
      if (j?.returnvalue && (!best || (j.finishedOn ?? 0) > best.at)) best = { at: j.finishedOn ?? 0, v: j.returnvalue as T };
    }
    return best?.v ?? null;
  };
  const m = await find<MigrateStepResult>(o.from, 'migrate');
  const a = await find<ActivateStepResult>(o.to, 'activate');
  return {
    pausedAt: m?.pausedAt ?? null, resumedAt: m?.resumedAt ?? null, attachedAt: a?.attachedAt ?? null, registeredAt: a?.registeredAt ?? null,
    buAttempts: a?.attempts ?? null, buToBaMs: a?.elapsedMs ?? null,
  };
}

/** --capture: tcpdump in the HA's, both hosts' and (netns) the guest's namespaces of the roam6 lab. */
async function startCaptures(lab: LabState, out: string): Promise<NsCapture[]> {
  if (!CAPTURE) return [];
  // Only the 1400-byte streams (not the 2 ms probes) and ICMPv6 (Neighbor Discovery): a light
  // capture that does not load the machine. netns: the guest's namespace too.
  const where: [string, string][] = (['ha', 'host-a', 'host-b'] as const).map((n) => [n, lab.namespaces[n]!]);
  const g = lab.guests[0];
  if (g?.ns) where.push(['guest', g.ns]);
  const caps = where.map(([label, ns]) => new NsCapture(ns, label, join(out, `${label}.pcap`), ['greater', '500', 'or', 'icmp6']));
  for (const c of caps) {
    await c.ready();
    c.snapshot();
  }
  return caps;
}

/** For each lost packet of the roam6 streams, where the captures saw it (ms from that migration's pause). */
function attachSightings(caps: NsCapture[], streams: StreamResult[], ids: Record<string, { streamId: number; dport: number }>, moves: Move[]): void {
  if (caps.length === 0) return;
  const all: Sighting[] = caps.flatMap((c) => readSightings(c));
  const index = new Map<string, Sighting[]>();
  for (const x of all) {
    const k = `${x.streamId}/${x.dport}/${x.seq}`;
    let l = index.get(k);
    if (!l) index.set(k, (l = []));
    l.push(x);
  }
  for (const s of streams) {
    const id = ids[s.key];
    if (!id) continue;
    s.roam6.forEach((g, i) => {
      const p = moves[i]?.pausedAt ?? null;
      for (const l of g.lostDetail ?? []) {
        const seen = (index.get(`${id.streamId}/${id.dport}/${l.seq}`) ?? []).sort((a, b) => a.t - b.t);
        const atHa = seen.find((x) => x.where === 'ha');
        const mv = moves[i];
        if (atHa && mv && p !== null) {
          l.atHaVsPauseMs = Math.round((atHa.t - p) * 10) / 10;
          l.phase = phaseOf(atHa.t, mv);
        }
        l.seen = seen.map((x) => `${x.where} ${x.ifname} ${x.dir}${x.tunnelled ? ' (tunnelled)' : ''} at ${p === null ? '?' : `${x.t - p >= 0 ? '+' : ''}${(x.t - p).toFixed(1)}`}`);
      }
    });
  }
}

/** The last log line of a lab process with this message and a `time` within [from, to], parsed. */
function agentLog<T>(lab: LabState, host: string, msg: string, from: number, to: number): (T & { time: number }) | null {
  let text = '';
  try {
    text = readFileSync(join(lab.dir, 'logs', `agent-${host}.log`), 'utf8');
  } catch {
    return null;
  }
  let best: (T & { time: number }) | null = null;
  for (const line of text.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const o = JSON.parse(line) as T & { time: number | string; msg?: string };
      const time = typeof o.time === 'number' ? o.time : Date.parse(o.time);
      if (o.msg === msg && time >= from && time <= to) best = { ...o, time };
    } catch {
      /* not JSON */
    }
  }
  return best;
}

/** qemu: the destination agent's "qemu guest resumed here" (QMP RESUME) time, from its log. */
function destinationResume(lab: LabState, host: string, from: number, to: number): number | null {
  return agentLog<{ resumedAt?: number }>(lab, host, 'qemu guest resumed here', from, to)?.resumedAt ?? null;
}

/** How long the destination agent waited for the guest link to come up (logged when ≥ 10 ms). */
function linkWait(lab: LabState, host: string, from: number, to: number): number | null {
  const up = agentLog<{ waitedMs?: number }>(lab, host, 'waited for the guest link to come up', from, to)?.waitedMs;
  const never = agentLog<{ waitedMs?: number }>(lab, host, 'guest link still not up after attaching the guest interface; going on', from, to)?.waitedMs;
  return never ?? up ?? null;
}

/** A netns guest's eth0 tx_dropped counter (`ip netns exec` mounts the namespace's /sys). */
function txDropped(ns: string): number {
  try {
    return Number(execFileSync('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/statistics/tx_dropped'], { encoding: 'utf8' }).trim());
  } catch {
    return NaN;
  }
}

async function waitCounters(haApi: string): Promise<HoldCounters> {
  for (let i = 0; ; i++) {
    try {
      return await readHoldCounters(haApi);
    } catch (e) {
      if (i >= 5) throw e;
      await sleep(200);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// netns and kernel: a netns guest, the one-segment baseline interleaved

const STREAMS: StreamDef[] = [
  { key: 'up', label: 'guest→CN, 520 kbit/s (1400 B every 21.5 ms)', dir: 'up', rateKbit: 520, size: 1400, port: 5001, id: 1 },
  { key: 'down', label: 'CN→guest, 520 kbit/s (1400 B every 21.5 ms)', dir: 'down', rateKbit: 520, size: 1400, port: 5002, id: 2 },
  ...(PROBES
    ? ([
        { key: 'upProbe', label: 'guest→CN probe (64 B every 2 ms)', dir: 'up', rateKbit: 256, size: 64, port: 5003, id: 3 },
        { key: 'downProbe', label: 'CN→guest probe (64 B every 2 ms)', dir: 'down', rateKbit: 256, size: 64, port: 5004, id: 4 },
      ] as StreamDef[])
    : []),
];
const intervalOf = (s: Pick<StreamDef, 'size' | 'rateKbit'>) => (s.size * 8) / s.rateKbit;


/** What a roam6 move needs from its configuration's run. */
interface MoveContext {
  readonly orch: Orchestration;
  readonly lab: LabState;
  readonly caps: readonly NsCapture[];
  readonly events: HaEvents;
  /** The run's roam6 migration windows (this move's is appended). */
  readonly windows: MigrationWindow[];
  readonly timeoutMs: number;
  /** Wait this long after the migration before reading the HA's counters. */
  readonly settleMs: number;
}

/** One roam6 migration through the queue, with what every configuration records of it. */
async function roam6Move(c: MoveContext, i: number, guest: string, to: LabHost, prev: HoldCounters): Promise<{ move: Move; o: MigrationOutcome; now: HoldCounters }> {
  const startedAt = Date.now();
  for (const cap of c.caps) cap.snapshot();
  const job = await c.orch.requestMigration({ guest, to });
  const o = await c.orch.waitFor<MigrationOutcome>(job, c.timeoutMs);
  const endedAt = Date.now();
  for (const cap of c.caps) cap.snapshot();
  c.windows.push({ startedAt, endedAt, label: `${o.from} → ${o.to}` });
  await sleep(c.settleMs);
  const now = await waitCounters(c.lab.haApi);
  const until = endedAt + c.settleMs;
  const move: Move = {
    i: i + 1, from: o.from, to: o.to, startedAt, endedAt,
    totalMs: o.totalMs, downtimeMs: o.downtimeMs, resumeToBaMs: o.resumeToBaMs, registrationMs: o.registrationMs, held: o.held ?? false,
    ...(await stepTimes(c.orch, job, o)),
    events: c.events.between(startedAt, until), counters: holdDelta(prev, now),
    linkWaitMs: linkWait(c.lab, o.to, startedAt, until),
  };
  return { move, o, now };
}

async function runNetns(config: 'netns' | 'kernel'): Promise<ConfigResult> {
  const haBackend = config === 'netns' ? 'userspace' : 'kernel';
  const labName = `hov${config === 'netns' ? 'n' : 'k'}`;
  const out = join(OUT, config);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const t0 = Date.now();
  const loadAtStart = load();
  say(`${config}: lab (netns guest, HA data plane ${haBackend}) and the one-segment baseline (load ${loadAtStart})`);
  const lab = await labUp({ name: labName, guests: 1, haBackend });
  let seg: OneSegment | null = null;
  const procs: NsProcess[] = [];
  const senders = new Map<string, NsProcess>();
  let hands: Record<LabHost, NetnsHand> | null = null;
  let events: HaEvents | null = null;
  let caps: NsCapture[] = [];
  const redis = await connectRedis({ url: lab.redisUrl, name: 'bench-handover', log: () => {} });
  const orch = new Orchestration(redis);
  try {
    seg = oneSegmentUp(labName);
    caps = await startCaptures(lab, out);
    const guest = lab.guests[0]!;
    let addr: string | null = null;
    const deadline = Date.now() + 20_000;
    while (!(addr = guestAddress(guest)) && Date.now() < deadline) await sleep(100);
    if (!addr) throw new Error(`${guest.id} got no SLAAC address`);
    const worlds: World[] = [
      { name: 'roam6', guestNs: guest.ns, cnNs: lab.namespaces.cn!, guestAddr: addr, cnAddr: LAB_ADDR.cn },
      { name: 'baseline', guestNs: seg.ns.guest, cnNs: seg.ns.cn, guestAddr: ONE_SEGMENT.guest, cnAddr: ONE_SEGMENT.cn },
    ];
    const file = (w: World, s: StreamDef) => join(out, `${w.name}-${s.key}.jsonl`);
    await startWorldStreams(worlds, STREAMS, file, procs, senders);
    procs.push(...(await startSamplers(lab, out)));
    hands = { 'host-a': await new NetnsHand(seg.ns['host-a']).open(), 'host-b': await new NetnsHand(seg.ns['host-b']).open() };
    events = new HaEvents(lab.haApi, guest.id);
    await events.open();
    await sleep(2000);
    for (const w of worlds) for (const s of STREAMS) {
      if (!existsSync(file(w, s)) || statSync(file(w, s)).size === 0) throw new Error(`no packets on ${w.name}/${s.key} before the first migration`);
    }

    say(`${config}: HA round trip from both hosts, then ${MIGRATIONS} migrations each way (roam6 through the queue; baseline in one segment)`);
    const rtts = [...pingRtts(lab.namespaces['host-a']!, LAB_ADDR.ha, 25), ...pingRtts(lab.namespaces['host-b']!, LAB_ADDR.ha, 25)];
    const first = await waitCounters(lab.haApi);
    let prev = first;
    const windows: { roam6: MigrationWindow[]; baseline: MigrationWindow[] } = { roam6: [], baseline: [] };
    const moves: Move[] = [];
    const baseline: BaselineMove[] = [];
    let blAt: LabHost = 'host-a';
    for (let i = 0; i < MIGRATIONS; i++) {
      const to: LabHost = i % 2 === 0 ? 'host-b' : 'host-a';
      const drop0 = txDropped(guest.ns);
      const r = await roam6Move({ orch, lab, caps, events, windows: windows.roam6, timeoutMs: 60_000, settleMs: SETTLE_MS }, i, guest.id, to, prev);
      moves.push({ ...r.move, guestTxDropped: txDropped(guest.ns) - drop0 });
      const o = r.o;
      prev = r.now;

      const from = blAt;
      const bdrop0 = txDropped(seg.ns.guest);
      const startedAt = Date.now();
      const mv = await hands[from].request({ op: 'move', ifname: ONE_SEGMENT.guestPort, toNs: seg.ns[to] });
      const at = await hands[to].request({ op: 'attach', ifname: ONE_SEGMENT.guestPort, bridge: ONE_SEGMENT.bridge, mtu: 1500 });
      windows.baseline.push({ startedAt, endedAt: Date.now(), label: `${from} → ${to}` });
      const bEnd = Date.now();
      await sleep(SETTLE_MS);
      baseline.push({ i: i + 1, from, to, startedAt, endedAt: bEnd, pauseMs: at.doneAt - mv.startedAt, guestTxDropped: txDropped(seg.ns.guest) - bdrop0 });
      blAt = to;
      const m = moves[i]!;
      say(`  ${i + 1}/${MIGRATIONS} ${o.from} → ${o.to}: total ${o.totalMs} ms, pause ${o.downtimeMs} ms, resume→BA ${o.resumeToBaMs} ms, held ${m.held} (${m.counters.heldPackets} packets); baseline pause ${r1(at.doneAt - mv.startedAt)} ms`);
    }
    rtts.push(...pingRtts(lab.namespaces['host-a']!, LAB_ADDR.ha, 25), ...pingRtts(lab.namespaces['host-b']!, LAB_ADDR.ha, 25));
    const last = await waitCounters(lab.haApi);
    await sleep(500);
    for (const p of senders.values()) await p.stop();
    await sleep(300);
    for (const p of procs) await p.stop();
    for (const c of caps) await c.stop();

    const haRtt = { ...stats(rtts), samples: rtts };
    const streams: StreamResult[] = STREAMS.map((s) => {
      const intervalMs = intervalOf(s);
      const per = (w: World) => {
        const arrivals = readArrivals(file(w, s));
        return { n: arrivals.length, rows: gapRows(arrivals, windows[w.name], SLACK_MS.netns, intervalMs, w.name === 'roam6' ? moves : undefined) };
      };
      const [r, b] = [per(worlds[0]!), per(worlds[1]!)];
      const sentOf = (w: World) => senders.get(`${w.name}/${s.key}`)?.lastEvent<{ sent: number }>('done')?.sent ?? null;
      const errorsOf = (w: World) => senders.get(`${w.name}/${s.key}`)?.lastEvent<{ errorCodes: Record<string, number> }>('done')?.errorCodes ?? null;
      return {
        key: s.key, label: s.label, dir: s.dir, intervalMs,
        sent: { roam6: sentOf(worlds[0]!), baseline: sentOf(worlds[1]!) },
        sendErrors: { roam6: errorsOf(worlds[0]!), baseline: errorsOf(worlds[1]!) },
        received: { roam6: r.n, baseline: b.n },
        roam6: r.rows, baseline: b.rows,
        added: mobilityAddedGap(r.rows, b.rows, haRtt.p50 === null ? {} : { haRttMs: haRtt.p50 }),
      };
    });
    attachSightings(caps, streams, Object.fromEntries(STREAMS.filter((s) => s.size > 500).map((s) => [s.key, { streamId: s.id, dport: s.port }])), moves);
    for (const st of streams) if ((STREAMS.find((s) => s.key === st.key)?.size ?? 0) <= 500) summariseLoss(st);
    const up = streams.find((s) => s.key === 'up')!;
    const charts = drawCharts({
      config,
      title: CHART_TITLE[config],
      samples: readSamples(out),
      windows: windows.roam6,
      moves,
      gapOf: (i) => up.roam6[i]?.gapMs ?? NaN,
      note: CHART_NOTE[config],
    });
    return {
      config, hypervisor: 'netns', haBackend, date: new Date(t0).toISOString(), load: loadAtStart, seconds: (Date.now() - t0) / 1000,
      migrations: MIGRATIONS, haRtt, moves, baseline, streams, countersTotal: holdDelta(first, last), charts, notes: [],
    };
  } finally {
    events?.close();
    for (const c of caps) await c.stop();
    for (const p of senders.values()) await p.stop();
    for (const p of procs) await p.stop();
    if (hands) {
      await hands['host-a'].close();
      await hands['host-b'].close();
    }
    await orch.close();
    await redis.close();
    if (seg) oneSegmentDown(labName);
    if (!process.argv.includes('--keep-lab')) await labDown(labName);
  }
}

// ---------------------------------------------------------------------------------------------
// qemu: a QEMU guest under TCG, the same-segment QEMU migration interleaved

const QEMU_ECHO_STREAM_ID = 7;

async function runQemu(): Promise<ConfigResult> {
  const labName = 'hovq';
  const out = join(OUT, 'qemu');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const t0 = Date.now();
  const loadAtStart = load();
  say(`qemu: lab with one QEMU guest (TCG), HA data plane userspace (load ${loadAtStart})`);
  const lab = await labUp({ name: labName, guests: 1, hypervisor: 'qemu', haBackend: 'userspace' });
  const procs: NsProcess[] = [];
  let cnSender: NsProcess | null = null;
  let events: HaEvents | null = null;
  let caps: NsCapture[] = [];
  const redis = await connectRedis({ url: lab.redisUrl, name: 'bench-handover', log: () => {} });
  const orch = new Orchestration(redis);
  const guest = lab.guests[0]!.id;
  try {
    caps = await startCaptures(lab, out);
    const up = () => {
      const c = qemuGuestConsole(lab, guest);
      return !!(c?.addr && c.send?.seq);
    };
    while (!up() && Date.now() - t0 < 120_000) await sleep(250);
    const boot = qemuGuestConsole(lab, guest);
    if (!boot?.addr) throw new Error('the QEMU guest did not come up');
    say(`qemu: guest up at ${boot.addr}`);
    const upLog = join(out, 'roam6-up.jsonl');
    const echoLog = join(out, 'roam6-echo.jsonl');
    for (const [port, f] of [[LAB_QEMU_STREAM.port, upLog], [LAB_QEMU_STREAM.echoReplyPort, echoLog]] as const) {
      const r = streamProcess(`recv ${port}`, lab.namespaces.cn!, ['recv', '--port', String(port), '--out', f]);
      procs.push(r);
      await r.ready('listening');
    }
    cnSender = streamProcess('send CN→guest', lab.namespaces.cn!, ['send', '--to', boot.addr, '--port', String(LAB_QEMU_STREAM.echoPort), '--rate-kbit', '520', '--size', '1400', '--stream-id', String(QEMU_ECHO_STREAM_ID)]);
    await cnSender.ready('sending');
    procs.push(...(await startSamplers(lab, out)));
    events = new HaEvents(lab.haApi, guest);
    await events.open();
    await sleep(3000);
    for (const f of [upLog, echoLog]) if (!existsSync(f) || statSync(f).size === 0) throw new Error(`no packets in ${f} before the first migration`);

    const rtts = [...pingRtts(lab.namespaces['host-a']!, LAB_ADDR.ha, 25), ...pingRtts(lab.namespaces['host-b']!, LAB_ADDR.ha, 25)];
    const first = await waitCounters(lab.haApi);
    let prev = first;
    const windows: { roam6: MigrationWindow[]; baseline: MigrationWindow[] } = { roam6: [], baseline: [] };
    const moves: Move[] = [];
    const baseline: BaselineMove[] = [];
    let host: LabHost = 'host-a';
    const serialOf = (p: QemuGuestPaths) => guestCountersFromSerial(p.serial);
    say(`qemu: ${MIGRATIONS} rounds: same-segment QEMU migration there and back (no roam6), then roam6 across segments`);
    for (let i = 0; i < MIGRATIONS; i++) {
      const stem = qemuGuestPaths(lab.qemu!.stateDirs[host], guest);
      const altDir = join(lab.qemu!.stateDirs[host], 'baseline');
      mkdirSync(altDir, { recursive: true });
      const alt: QemuGuestPaths = { ...qemuGuestPaths(altDir, guest), tap: `r6vb${stem.stem.slice(3)}` };
      const bBefore = serialOf(stem);
      const startedAt = Date.now();
      const b = await sameSegmentMigration(lab, host, guest, stem, alt);
      const bEnd = Date.now();
      windows.baseline.push({ startedAt, endedAt: bEnd, label: `same segment on ${host}` });
      await sleep(QEMU_SETTLE_MS);
      baseline.push({ i: i + 1, from: host, to: host, startedAt, endedAt: bEnd, pauseMs: b.downtimeMs, totalMs: b.totalMs, guestBefore: bBefore, guestAfter: serialOf(alt) });
      await sameSegmentMigration(lab, host, guest, alt, stem);
      await sleep(QEMU_SETTLE_MS);

      const to: LabHost = host === 'host-a' ? 'host-b' : 'host-a';
      const gBefore = serialOf(stem);
      const r = await roam6Move({ orch, lab, caps, events, windows: windows.roam6, timeoutMs: 120_000, settleMs: QEMU_SETTLE_MS }, i, guest, to, prev);
      const o = r.o;
      moves.push({
        ...r.move,
        guestBefore: gBefore, guestAfter: serialOf(qemuGuestPaths(lab.qemu!.stateDirs[to], guest)),
        destResumedAt: destinationResume(lab, o.to, r.move.startedAt, r.move.endedAt + QEMU_SETTLE_MS),
      });
      prev = r.now;
      host = to;
      const m = moves[i]!;
      const echoLost = (m.guestAfter?.echo?.lost ?? NaN) - (m.guestBefore?.echo?.lost ?? NaN);
      say(`  ${i + 1}/${MIGRATIONS}: baseline downtime ${b.downtimeMs} ms; roam6 ${o.from} → ${o.to}: downtime ${Math.round(o.downtimeMs)} ms, resume→BA ${Math.round(o.resumeToBaMs)} ms, held ${m.held} (${m.counters.heldPackets} packets), guest's CN→guest holes +${echoLost}`);
    }
    rtts.push(...pingRtts(lab.namespaces['host-a']!, LAB_ADDR.ha, 25), ...pingRtts(lab.namespaces['host-b']!, LAB_ADDR.ha, 25));
    const last = await waitCounters(lab.haApi);
    await sleep(1000);
    await cnSender.stop();
    await sleep(500);
    const guestEnd = qemuGuestConsole(lab, guest);
    for (const p of procs) await p.stop();
    for (const c of caps) await c.stop();

    const haRtt = { ...stats(rtts), samples: rtts };
    const interval = intervalOf({ size: LAB_QEMU_STREAM.size, rateKbit: LAB_QEMU_STREAM.rateKbit });
    const upArr = readArrivals(upLog);
    const echoArr = readArrivals(echoLog).filter((a) => a.stream === QEMU_ECHO_STREAM_ID);
    const mk = (key: string, label: string, dir: 'up' | 'down', arr: Arrival[], foreignClock: boolean, sent: number | null): StreamResult => {
      const r = gapRows(arr, windows.roam6, SLACK_MS.qemu, interval, moves, foreignClock);
      const b = gapRows(arr, windows.baseline, SLACK_MS.qemu, interval);
      return {
        key, label, dir, intervalMs: interval,
        sent: { roam6: sent, baseline: sent },
        received: { roam6: arr.length, baseline: arr.length },
        roam6: r, baseline: b,
        added: mobilityAddedGap(r, b, haRtt.p50 === null ? {} : { haRttMs: haRtt.p50 }),
      };
    };
    const cnSent = cnSender.lastEvent<{ sent: number }>('done')?.sent ?? null;
    const streams = [
      mk('up', "guest→CN, 520 kbit/s (the guest's r6stream)", 'up', upArr, true, guestEnd?.send?.seq ?? null),
      mk('down', 'CN→guest, 520 kbit/s, seen at the CN after the guest echoed it', 'down', echoArr, false, cnSent),
    ];
    attachSightings(caps, streams, { up: { streamId: 1, dport: LAB_QEMU_STREAM.port }, down: { streamId: QEMU_ECHO_STREAM_ID, dport: LAB_QEMU_STREAM.echoPort } }, moves);
    const charts = drawCharts({
      config: 'qemu',
      title: CHART_TITLE.qemu,
      samples: readSamples(out),
      windows: windows.roam6,
      moves,
      gapOf: (i) => streams[0]!.roam6[i]?.gapMs ?? NaN,
      note: CHART_NOTE.qemu,
    });
    return {
      config: 'qemu', hypervisor: 'qemu', haBackend: 'userspace', date: new Date(t0).toISOString(), load: loadAtStart, seconds: (Date.now() - t0) / 1000,
      migrations: MIGRATIONS, haRtt, moves, baseline, streams, countersTotal: holdDelta(first, last), charts,
      guestEnd: guestEnd ? { send: guestEnd.send, echo: guestEnd.echo } : null,
      notes: [],
    };
  } finally {
    events?.close();
    for (const c of caps) await c.stop();
    await cnSender?.stop();
    for (const p of procs) await p.stop();
    await orch.close();
    await redis.close();
    if (!process.argv.includes('--keep-lab')) await labDown(labName);
  }
}

// ---------------------------------------------------------------------------------------------
// report

const ms = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : `${r1(n)} ms`);
const TITLE: Record<ConfigName, string> = {
  netns: 'netns driver, HA userspace data plane (hold)',
  kernel: 'netns driver, HA kernel data plane (no hold)',
  qemu: 'QEMU (TCG), HA userspace data plane (hold)',
};

function lostTotals(s: StreamResult): { roam6: number; baseline: number } {
  return { roam6: sum(s.roam6.map((g) => g.lost)), baseline: sum(s.baseline.map((g) => g.lost)) };
}

const PHASE_TEXT: Record<LossPhase, string> = {
  'before-pause': 'before the pause',
  'paused-before-hold': 'after the pause began but before the hold reached the HA',
  paused: 'during the pause',
  'resumed-before-ba': 'after the guest ran again, before the BA',
  'after-ba': 'after the BA',
  unknown: 'at an unknown time',
};

const f = (x: number | null) => (x === null ? '?' : `${x >= 0 ? '+' : ''}${x}`);

function describeLoss(r: ConfigResult): string[] {
  const lines: string[] = [];
  for (const s of r.streams) {
    const byPhase = new Map<LossPhase, number>();
    const lastSeen = new Map<string, number>();
    const examples: string[] = [];
    const rel: number[] = [];
    const per = s.roam6
      .map((g, i) => ({ g, i }))
      .filter(({ g }) => g.lost > 0)
      .map(({ g, i }) => {
        const d = g.lostDetail ?? [];
        for (const [ph, n] of Object.entries(g.lostSummary?.phases ?? {})) byPhase.set(ph as LossPhase, (byPhase.get(ph as LossPhase) ?? 0) + (n ?? 0));
        for (const x of [g.lostSummary?.sentFromPauseMs, g.lostSummary?.sentToPauseMs]) if (x !== null && x !== undefined) rel.push(x);
        for (const p of d) {
          byPhase.set(p.phase, (byPhase.get(p.phase) ?? 0) + 1);
          if (p.sentVsPauseMs !== null) rel.push(p.sentVsPauseMs);
          if (p.seen) {
            const last = p.seen[p.seen.length - 1]?.replace(/ at [-+0-9.?]+$/, '') ?? 'in no capture (HA, host-a, host-b)';
            lastSeen.set(last, (lastSeen.get(last) ?? 0) + 1);
            const hold = p.sentVsPauseMs !== null && p.sentVsHoldMs !== null ? ` (hold at pause ${f(Math.round((p.sentVsPauseMs - p.sentVsHoldMs) * 10) / 10)} ms)` : '';
            if (examples.length < 2) examples.push(`#${i + 1} seq ${p.seq}${hold}: ${p.seen.length ? p.seen.join(' → ') : 'not seen'}`);
          }
        }
        return `#${i + 1} ${g.lost}`;
      });
    const errs = (e: Record<string, number> | null | undefined) => (e && Object.keys(e).length ? Object.entries(e).map(([k, v]) => `${k} ${v}`).join(', ') : 'none');
    if (per.length) {
      const phases = [...byPhase.entries()].map(([k, v]) => `${v} ${PHASE_TEXT[k]}`).join(', ');
      const haTimes = s.roam6.flatMap((g) => (g.lostDetail ?? []).map((p) => p.atHaVsPauseMs)).filter((x): x is number => x !== undefined);
      const range = haTimes.length
        ? ` (by when they reached the HA, from the captures: pause ${f(Math.min(...haTimes))} to ${f(Math.max(...haTimes))} ms)`
        : rel.length ? ` (by estimated send time: pause ${f(Math.min(...rel))} to ${f(Math.max(...rel))} ms)` : '';
      lines.push(`- **${s.label}**: ${sum(s.roam6.map((g) => g.lost))} lost — ${phases}${range}. Per migration: ${per.join(', ')}.` +
        (s.sendErrors ? ` Sends refused by the sender's kernel: ${errs(s.sendErrors.roam6)}.` : '') +
        (lastSeen.size ? ` Captures (tcpdump in the HA's, the hosts' and, netns, the guest's namespaces), last sighting of each lost packet: ${[...lastSeen.entries()].map(([k, v]) => `${k} ×${v}`).join('; ')}. Traced, ms from the pause: ${examples.join(' | ')}.` : ''));
    }
  }
  return lines;
}

/**
 * guest→CN packets lost that the netns guest's own eth0 dropped (it keeps running while its veth
 * peer is detached; a paused VM sends nothing): per migration min(lost, tx_dropped), summed.
 */
function droppedByGuest(r: ConfigResult): number {
  const ups = r.streams.filter((s) => s.dir === 'up');
  return sum(r.moves.map((m, i) => Math.min(sum(ups.map((s) => s.roam6[i]?.lost ?? 0)), m.guestTxDropped ?? 0)));
}

function timeline(m: Move): string {
  const p = m.pausedAt;
  if (p === null) return '–';
  const rel = (x: number | null | undefined) => (x === null || x === undefined ? '–' : String(Math.round(x - p)));
  const held = m.events.find((e) => e.type === 'held')?.at;
  const sw = (m.events.find((e) => e.type === 'released') ?? m.events.find((e) => e.type === 'moved'))?.at;
  const live = m.resumedAt !== null || m.attachedAt !== null ? Math.max(m.resumedAt ?? -Infinity, m.attachedAt ?? -Infinity) : null;
  return `${rel(held)} / ${rel(live)}${m.destResumedAt !== undefined ? ` (RESUME ${rel(m.destResumedAt)})` : ''} / ${rel(m.registeredAt)} / ${rel(sw)}`;
}

function renderConfig(r: ConfigResult): string {
  const st = r.streams;
  const col = (f: (s: StreamResult) => string) => st.map(f).join(' | ');
  const rows: string[] = [];
  rows.push(`| | ${st.map((s) => s.label).join(' | ')} |`);
  rows.push(`|---|${st.map(() => '---').join('|')}|`);
  rows.push(`| receiver gap with roam6 (across segments): p50 / max | ${col((s) => `${ms(s.added.summary.p50CrossMs)} / ${ms(s.added.summary.maxCrossMs)}`)} |`);
  rows.push(`| same migration inside one segment, no roam6: p50 / max | ${col((s) => `${ms(s.added.summary.p50BaselineMs)} / ${ms(s.added.summary.maxBaselineMs)}`)} |`);
  rows.push(`| **mobility-added gap** (paired difference): p50 / max | ${col((s) => `**${ms(s.added.summary.p50AddedMs)}** / **${ms(s.added.summary.maxAddedMs)}**`)} |`);
  rows.push(`| · goal ≤ HA RTT + 5 ms = ${ms(st[0]?.added.summary.goalMs)}: migrations within / max | ${col((s) => `${s.added.perMigration.filter((m) => m.withinGoal).length} of ${s.added.perMigration.length} / ${s.added.summary.withinGoal ? 'met' : 'not met'}`)} |`);
  const beyond = (s: StreamResult, base: boolean) => stats((base ? s.baseline : s.roam6).map((g, i) => g.gapMs - (base ? r.baseline[i]?.pauseMs ?? NaN : r.moves[i]?.downtimeMs ?? NaN)));
  rows.push(`| receiver gap − the migration's own downtime, p50 / max: roam6; same segment | ${col((s) => `${ms(beyond(s, false).p50)} / ${ms(beyond(s, false).max)}; ${ms(beyond(s, true).p50)} / ${ms(beyond(s, true).max)}`)} |`);
  rows.push(`| **packets lost** around the ${r.migrations} migrations: roam6 / same segment | ${col((s) => { const l = lostTotals(s); return `**${l.roam6}** / ${l.baseline}`; })} |`);
  rows.push(`| packets received / sent over the run${r.hypervisor === 'qemu' ? ' (both kinds of migration share one stream)' : ': roam6; same segment'} | ${col((s) => (r.hypervisor === 'qemu' ? `${s.received.roam6} / ${s.sent.roam6 ?? '?'}` : `${s.received.roam6} / ${s.sent.roam6 ?? '?'}; ${s.received.baseline} / ${s.sent.baseline ?? '?'}`))} |`);

  const mv = r.moves;
  const down = stats(mv.map((m) => m.downtimeMs));
  const rba = stats(mv.map((m) => m.resumeToBaMs));
  const tot = stats(mv.map((m) => m.totalMs));
  const bp = stats(r.baseline.map((b) => b.pauseMs));
  const c = r.countersTotal;
  const otherDrops = Object.entries(c.drops).filter(([k, v]) => k !== 'hold_overflow' && v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
  const facts: string[] = [
    `- HA round trip (ICMPv6 echo from host-a and host-b, ${r.haRtt.n} pings, before and after): p50 ${r2(r.haRtt.p50)} ms, p99 ${r2(r.haRtt.p99)} ms, max ${r2(r.haRtt.max)} ms.`,
    `- The hypervisor's downtime (MigrationOutcome.downtimeMs): p50 ${ms(down.p50)}, max ${ms(down.max)}; same-segment ${r.hypervisor === 'qemu' ? "QEMU downtime" : 'move + attach'}: p50 ${ms(bp.p50)}, max ${ms(bp.max)}. Resume → BA: p50 ${ms(rba.p50)}, max ${ms(rba.max)}. Migration through the queue, total: p50 ${ms(tot.p50)}, max ${ms(tot.max)}.`,
    `- MigrationOutcome.held: ${mv.filter((m) => m.held).length} of ${mv.length}. HA counters over the run (GET /metrics): roam6_ha_handover_held_packets_total +${c.heldPackets}, roam6_ha_handover_holds_released_total +${c.holdsReleased}, roam6_dataplane_drops_total{reason="hold_overflow"} +${c.drops.hold_overflow ?? 0}${otherDrops ? `; other data-plane drops: ${otherDrops}` : '; no other data-plane drops'}.`,
    ...(r.hypervisor === 'netns'
      ? [`- The netns guest keeps running while its link is detached (a paused VM would send nothing): its own eth0 dropped ${sum(mv.map((m) => m.guestTxDropped ?? 0))} packets over the roam6 migrations (tx_dropped), ${sum(r.baseline.map((b) => b.guestTxDropped ?? 0))} over the same-segment ones; of the guest→CN packets lost (all streams), ${droppedByGuest(r)} of ${sum(r.streams.filter((s) => s.dir === 'up').map((s) => lostTotals(s).roam6))} are accounted for by those drops (per migration: min(lost, tx_dropped); last column).`]
      : []),
    ...(r.guestEnd ? [`- The guest's own account at the end: ${r.guestEnd.send ? `r6stream send used ${r.guestEnd.send.seq} sequence numbers, ${r.guestEnd.send.errors} failed sends, ${r.guestEnd.send.skipped} skipped slots` : 'no sender status'}; ${r.guestEnd.echo ? `its echo received ${r.guestEnd.echo.received} CN packets with ${r.guestEnd.echo.lost} holes, ${r.guestEnd.echo.reordered} out of order` : 'no echo status'}.`] : []),
    `- Load average at the start ${r.load} (2 cores shared with other work); ${r.seconds.toFixed(0)} s.`,
    ...r.notes.map((n) => `- ${n}`),
  ];
  const loss = describeLoss(r);
  const tl = mv.map((m) => {
    const held = m.events.find((e) => e.type === 'held')?.at;
    const sw = (m.events.find((e) => e.type === 'released') ?? m.events.find((e) => e.type === 'moved'))?.at;
    const live = m.resumedAt !== null || m.attachedAt !== null ? Math.max(m.resumedAt ?? -Infinity, m.attachedAt ?? -Infinity) : NaN;
    const resume = m.destResumedAt ?? NaN;
    return {
      holdVsPause: held !== undefined && m.pausedAt !== null ? held - m.pausedAt : NaN,
      liveToSwitch: sw !== undefined ? sw - live : NaN,
      downtimeEndToResume: resume - live,
      resumeToSwitch: sw !== undefined ? sw - resume : NaN,
    };
  });
  const dr = stats(tl.map((x) => x.downtimeEndToResume));
  const rs = stats(tl.map((x) => x.resumeToSwitch));
  const pauseDiff = stats(mv.map((m, i) => m.downtimeMs - (r.baseline[i]?.pauseMs ?? NaN)));
  const hv = stats(tl.map((x) => x.holdVsPause));
  const ls = stats(tl.map((x) => x.liveToSwitch));
  facts.push(`- Where the added gap comes from (p50 / max over the migrations): the roam6 migration's downtime − the paired same-segment pause ${ms(pauseDiff.p50)} / ${ms(pauseDiff.max)}${r.hypervisor === 'netns' ? " (the netns driver's pause runs from the move on the source to the attach in the destination's activate step: it includes the queue hop between the two steps)" : ''}; ${r.haBackend === 'userspace' ? `the HA's hold took effect at pause ${ms(hv.p50)} / ${ms(hv.max)} (negative: before the pause; CN→guest packets wait from then on)` : 'no hold'}; the guest running at the destination → the HA switching to the new CoA (BU, BA${r.haBackend === 'userspace' ? ', release of the held packets' : ''}) ${ms(ls.p50)} / ${ms(ls.max)}${r.hypervisor === 'qemu' ? `, of which the end of the source's downtime → the destination QEMU's RESUME event ${ms(dr.p50)} / ${ms(dr.max)} and that RESUME → the HA's switch ${ms(rs.p50)} / ${ms(rs.max)} (the source QEMU's \`downtime\` ends when it has sent the last state, not when the destination runs)` : ''}.`);

  const head = ['#', 'move', 'downtime / resume→BA / total', 'held (packets)', r.hypervisor === 'qemu' ? 'from the pause: hold / end of downtime (destination RESUME) / BA at its agent / HA switch' : 'from the pause: hold / attached at the destination / BA at its agent / HA switch', 'BUs sent, BU→BA', ...st.map((s) => `${s.key}: gap roam6 / same seg. / **added**, lost`)];
  if (r.hypervisor === 'qemu') head.push("guest's own CN→guest holes: roam6 / same seg.");
  if (r.hypervisor === 'netns') head.push("guest→CN lost (all streams) / the guest's eth0 tx_dropped: roam6; same seg.");
  const per = mv.map((m, i) => {
    const cells = [
      String(m.i),
      `${m.from.replace('host-', '')}→${m.to.replace('host-', '')}`,
      `${Math.round(m.downtimeMs)} / ${Math.round(m.resumeToBaMs)} / ${Math.round(m.totalMs)}`,
      m.held ? `yes (${m.counters.heldPackets})` : 'no',
      timeline(m) + (m.linkWaitMs ? ` (link wait ${m.linkWaitMs})` : ''),
      m.buAttempts === null ? '–' : `${m.buAttempts}, ${r1(m.buToBaMs)}`,
      ...st.map((s) => {
        const a = s.added.perMigration[i];
        const lr = s.roam6[i]?.lost ?? '–';
        const lb = s.baseline[i]?.lost ?? '–';
        return a ? `${r1(a.crossGapMs)} / ${r1(a.baselineGapMs)} / **${r1(a.addedMs)}**, ${lr}/${lb}` : '–';
      }),
    ];
    if (r.hypervisor === 'qemu') {
      const d = (x?: GuestStreamCounters, y?: GuestStreamCounters) => (x?.echo && y?.echo ? String(y.echo.lost - x.echo.lost) : '?');
      cells.push(`${d(m.guestBefore, m.guestAfter)} / ${d(r.baseline[i]?.guestBefore, r.baseline[i]?.guestAfter)}`);
    }
    if (r.hypervisor === 'netns') {
      const ups = st.filter((s) => s.dir === 'up');
      cells.push(`${sum(ups.map((s) => s.roam6[i]?.lost ?? 0))} / ${m.guestTxDropped ?? '?'}; ${sum(ups.map((s) => s.baseline[i]?.lost ?? 0))} / ${r.baseline[i]?.guestTxDropped ?? '?'}`);
    }
    return `| ${cells.join(' | ')} |`;
  });
  return `
### ${TITLE[r.config]} — ${r.migrations} migrations (${r.date.slice(0, 16).replace('T', ' ')})

${rows.join('\n')}

${facts.join('\n')}

${loss.length ? `Timing of the lost packets, relative to the guest's pause as the source's migrate step reports it: when they reached the HA where the captures saw them there, else their send time estimated from their neighbours' (the HA's \`held\` event from its event stream):\n\n${loss.join('\n')}\n` : 'No packet was lost around any roam6 migration in either direction.\n'}
Per migration (ms; lost = roam6/same segment):

| ${head.join(' | ')} |
|${head.map(() => '---').join('|')}|
${per.join('\n')}

![figure 5, ${r.config}: traffic per host over time](${r.charts.full.replace(/^docs\//, '')})
![figure 5, ${r.config}: the first two migrations](${r.charts.zoom.replace(/^docs\//, '')})
`;
}

/** What the run shows, in words, from its numbers. */
function findings(res: Results): string {
  const out: string[] = ['What the numbers say:', ''];
  const lost = (r: ConfigResult | undefined, dir: 'up' | 'down') => (r ? sum(r.streams.filter((s) => s.dir === dir).map((s) => lostTotals(s).roam6)) : 0);
  const n = res.configs.netns;
  const k = res.configs.kernel;
  const q = res.configs.qemu;
  if (n) {
    out.push(`- **netns, hold on:** ${lost(n, 'down')} CN→guest packets lost in ${n.migrations} migrations (probes included). Every guest→CN packet lost (${lost(n, 'up')}) was dropped by the netns guest's own eth0 while its veth peer was detached: the guest's tx_dropped counter accounts for ${droppedByGuest(n)} of them, and the captures see the 1400-byte ones leave the guest's eth0 and nowhere else. A netns "VM" keeps running while the driver moves its link; a paused VM sends nothing, so this is the emulation, not the handover. The same-segment baseline loses the same way.`);
  }
  if (k) {
    out.push(`- **netns, kernel HA (no hold):** ${lost(k, 'down')} CN→guest packets lost: the ones the HA sent to the old host during the pause and until the BA. This is what the hold removes.`);
  }
  if (q) {
    const d = q.streams.find((s) => s.key === 'down');
    const det = (d?.roam6 ?? []).flatMap((g) => g.lostDetail ?? []);
    const beforeHold = det.filter((p) => p.phase === 'paused-before-hold').length;
    const hv = stats(q.moves.map((m) => {
      const h = m.events.find((e) => e.type === 'held')?.at;
      return h !== undefined && m.pausedAt !== null ? h - m.pausedAt : NaN;
    }));
    const late = hv.n ? q.moves.filter((m) => {
      const h = m.events.find((e) => e.type === 'held')?.at;
      return h !== undefined && m.pausedAt !== null && h > m.pausedAt;
    }).length : 0;
    const qd = stats(q.moves.map((m) => m.downtimeMs));
    const bd = stats(q.baseline.map((b) => b.pauseMs));
    out.push(`- **QEMU, hold on:** guest→CN ${lost(q, 'up')} lost; CN→guest ${lost(q, 'down')} lost in ${q.migrations} migrations (the same migration inside one segment, without roam6 and so without a hold, lost ${d ? lostTotals(d).baseline : '?'}${beforeHold ? `; ${beforeHold} of the roam6 losses reached the HA after the guest stopped but before the hold took effect` : ''}). The driver decides the switchover (docs/hypervisors.md, "Switchover"): it asks for the hold a lead before the predicted end of QEMU's first pass over the RAM and lets the guest run on to QEMU's own stop at the end of that pass, so the hold took effect ${ms(hv.p50)} (p50; ${ms(hv.max)} at the latest) relative to the pause, and after it in ${late} of ${q.migrations}. The pause is what the guest dirtied during the pass: p50 ${ms(qd.p50)} (max ${ms(qd.max)}) against QEMU's own stop-and-copy in the same-segment move, p50 ${ms(bd.p50)} (max ${ms(bd.max)}). CN→guest packets wait at the HA from the hold on while the guest still runs — which is why CN→guest gains less than guest→CN — and go to the new host when the source QEMU reports completion (\`POST …/hold/switch\`, ahead of the BU).`);
  }
  out.push(`- **Fixed on the way (commit "Register a guest only once its link carries packets"):** in an earlier run of this benchmark, while a 1,000-namespace lab was being built on the same machine, 2 of 20 migrations with each HA data plane lost about one second of CN→guest traffic (32–38 packets of the 520 kbit/s stream, 340–410 probes each). The captures showed the released packets reaching the new host and nothing leaving the guest's new bridge for ~100 ms after the attach (the kernel's linkwatch had not brought the new port and the bridge up yet: no carrier, every packet dropped), so the host's Neighbor Solicitation for the guest was lost and retried only after the 1 s RetransTimer. The agent now waits (≤ 1 s) for the bridge to be operationally up before it registers (docs/guest-link.md).`);
  return out.join('\n');
}

function render(res: Results): string {
  const cfgs = CONFIGS.filter((k) => res.configs[k]).map((k) => res.configs[k]!);
  const anchor: string[] = [
    '| system | interruption per migration | packets lost per migration | |',
    '|---|---|---|---|',
    `| the reference paper (NEMO, figure 5) | ~${PAPER_MS / 1000} s | ~${PAPER_MS / 1000} s of the stream (~${Math.round((PAPER_MS / 1000) * (520 / (1400 * 8)) * 1000)} packets of 1400 B at 520 kbit/s) | reported |`,
    `| Kagemusha | ${KAGEMUSHA} | | reported |`,
    `| LISP-based live migration | ~${LISP_MS} ms | | reported |`,
  ];
  const target: string[] = ['| configuration | lost guest→CN / CN→guest (all streams, all migrations) | of the guest→CN ones: dropped by the netns guest’s own detached eth0 | 0 lost both ways | added gap p50 / max, guest→CN · CN→guest (520 kbit/s) | goal ≤ HA RTT + 5 ms |', '|---|---|---|---|---|---|'];
  for (const r of cfgs) {
    const ups = r.streams.filter((s) => s.dir === 'up');
    const downs = r.streams.filter((s) => s.dir === 'down');
    const l = (xs: StreamResult[]) => sum(xs.map((s) => lostTotals(s).roam6));
    const u = r.streams.find((s) => s.key === 'up')!;
    const d = r.streams.find((s) => s.key === 'down')!;
    const gap = (s: StreamResult) => `${ms(s.added.summary.p50CrossMs)} / ${ms(s.added.summary.maxCrossMs)}`;
    anchor.push(`| **roam6, ${TITLE[r.config]}** | guest→CN ${gap(u)}, CN→guest ${gap(d)} (p50 / max; same segment without roam6: ${ms(u.added.summary.p50BaselineMs)} / ${ms(d.added.summary.p50BaselineMs)} p50) | guest→CN ${r1(lostTotals(u).roam6 / r.migrations)}, CN→guest ${r1(lostTotals(d).roam6 / r.migrations)} (520 kbit/s) | this run, ${r.migrations} migrations |`);
    const paused = r.hypervisor === 'netns' ? droppedByGuest(r) : 0;
    const lostOk = l(ups) === 0 && l(downs) === 0 ? 'met' : l(ups) - paused === 0 && l(downs) === 0 ? 'met, but for what the netns guest sent while detached' : '**not met**';
    const goal = u.added.summary.goalMs;
    const met = (s: StreamResult) => s.added.summary.withinGoal;
    target.push(`| ${TITLE[r.config]} | ${l(ups)} / ${l(downs)} | ${r.hypervisor === 'netns' ? String(paused) : '– (a paused QEMU guest sends nothing)'} | ${lostOk} | ${ms(u.added.summary.p50AddedMs)} / ${ms(u.added.summary.maxAddedMs)} · ${ms(d.added.summary.p50AddedMs)} / ${ms(d.added.summary.maxAddedMs)} | ${ms(goal)}: ${met(u) && met(d) ? 'met' : `**not met** (within at p50: ${(u.added.summary.p50AddedMs ?? Infinity) <= (goal ?? 0) && (d.added.summary.p50AddedMs ?? Infinity) <= (goal ?? 0) ? 'yes' : 'no'})`} |`);
  }
  return `
The reference paper's experiment: a guest streams 520 kbit/s of UDP with sequence numbers **in each direction** while
it is live-migrated ${cfgs[0]?.migrations ?? MIGRATIONS} times between two hosts on different IPv6 segments (host-a ↔ host-b through the
queue: \`Orchestration.requestMigration\` + \`waitFor\`). With the zero-loss handover the source agent asks the HA to
hold the guest's packets right before the pause (netns; QEMU, whose driver decides the switchover); the HA's userspace data plane
queues them until the BU from the new host moves the binding, then sends them there in order, and meanwhile accepts
the guest's packets tunnelled from the new host. The kernel configuration is the same lab with the HA on the
kernel data plane, which cannot hold: the difference.

Each configuration is one run with its own baseline, interleaved with the roam6 migrations: **netns** and **kernel**
move the same netns "VM" (its veth end, over rtnetlink) between two host namespaces bridged onto one L2 segment
with one plain router and no roam6 (bench/one-segment.ts; its streams run at the same rates, probes included);
**qemu** does the same QEMU live migration inside one segment (a second QEMU whose TAP is on the same bridge,
over QMP) and back, then the roam6 migration. Gaps: \`gapsPerMigration\` (the largest receiver silence within
±${SLACK_MS.netns} ms of a netns migration, ±${SLACK_MS.qemu} ms of a QEMU one), added gap: \`mobilityAddedGap\` (paired by index).
Lost: sequence numbers that never arrived, between the last packet before the window and the first after it.
netns/kernel also run a 64 B probe every 2 ms each way (a 520 kbit/s stream only resolves ~21.5 ms). In the QEMU
lab the guest's own r6stream sends guest→CN; CN→guest goes to the guest's UDP echo, which sends each packet back
to the CN, so its gap and losses are seen at the CN one guest→CN hop later (losses on that hop would show in the
guest→CN stream too), and the guest's echo counts its own holes (the last column). HA counters are deltas of the
HA's \`GET /metrics\`; hold and switch times come from its event stream (\`held\`, \`released\`, \`moved\`).

${anchor.join('\n')}

Targets (this run):

${target.join('\n')}

${findings(res)}
${cfgs.map(renderConfig).join('\n')}`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:handover needs root (network namespaces, QEMU)');
  const prevFile = join(ROOT, 'docs/bench/handover.json');
  let res: Results = { configs: {} };
  if ((ONLY.size < CONFIGS.length || process.argv.includes('--render-only')) && existsSync(prevFile)) {
    try {
      res = (JSON.parse(readFileSync(prevFile, 'utf8')) as { results: Results }).results ?? { configs: {} };
    } catch {
      res = { configs: {} };
    }
  }
  const title = 'Zero-loss handover: the paper\'s experiment, netns and QEMU';
  const flags = [...(MIGRATIONS !== 20 ? ['--migrations', String(MIGRATIONS)] : []), ...(CAPTURE ? ['--capture'] : []), ...(PROBES ? [] : ['--no-probes'])];
  let command = `npm run bench:handover${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
  if (process.argv.includes('--render-only')) {
    command = res.command ?? command;
    for (const r of Object.values(res.configs)) for (const st of r?.streams ?? []) if (st.key.endsWith('Probe')) summariseLoss(st);
    // Charts again, from the run's sample logs when they are still there.
    for (const c of CONFIGS) {
      const r = res.configs[c];
      const out = join(OUT, c);
      if (!r || !existsSync(join(out, 'sample-host-a.jsonl'))) continue;
      const up = r.streams.find((x) => x.key === 'up');
      r.charts = drawCharts({
        config: c,
        title: CHART_TITLE[c],
        samples: readSamples(out),
        windows: r.moves.map((m) => ({ startedAt: m.startedAt, endedAt: m.endedAt })),
        moves: r.moves,
        gapOf: (i) => up?.roam6[i]?.gapMs ?? NaN,
        note: CHART_NOTE[c],
      });
    }
  }
  else {
    res.command = command;
    mkdirSync(OUT, { recursive: true });
    const t0 = Date.now();
    for (const c of CONFIGS) {
      if (!ONLY.has(c)) continue;
      res.configs[c] = c === 'qemu' ? await runQemu() : await runNetns(c);
      // Keep what is done, in case a later configuration fails.
      writeSection('handover', title, command, render(res), res);
    }
    say(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  writeSection('handover', title, command, render(res), res);
  process.stdout.write(`${render(res)}\n`);
}

main().catch(async (e: unknown) => {
  process.stderr.write(`bench:handover failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  for (const n of ['hovn', 'hovk']) oneSegmentDown(n);
  for (const n of ['hovn', 'hovk', 'hovq']) await labDown(n).catch(() => {});
  process.exit(1);
});
