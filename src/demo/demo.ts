/**
 * `npm run demo`: the paper's experiment on this machine. A lab guest streams 520 kbit/s of
 * sequence-numbered UDP to the correspondent while it is migrated back and forth between two
 * hosts on different /64 segments, through the queue. The receiver's log gives the gap and the
 * lost packets per migration; the hosts' uplink counters give the figure-5 chart.
 *
 * With `hypervisor: 'qemu'` the guest is a real QEMU guest under TCG that streams by itself from
 * boot (deploy/guest-image: the same packet layout), and every migration is a QEMU live
 * migration over QMP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labDown, labUp, guestAddress, nsExec, qemuGuestConsole, LAB_ADDR, LAB_QEMU_STREAM, type LabHypervisor, type LabState } from '../lab/lab.js';
import { readArrivals } from '../lab/stream.js';
import { readTrafficSamples } from '../lab/traffic-sampler.js';
import { binTraffic, gapsPerMigration, trafficPoints, type MigrationWindow } from '../lab/analysis.js';
import { figure5Svg } from '../lab/chart.js';
import { connectRedis } from '../platform/redis/connection.js';
import { Orchestration } from '../orchestrator/runtime.js';
import type { MigrationOutcome } from '../orchestrator/jobs.js';

export interface DemoOptions {
  readonly migrations: number;
  readonly intervalMs: number;
  readonly out: string;
  readonly keepLab: boolean;
  /** netns (default) or qemu. */
  readonly hypervisor?: LabHypervisor;
  readonly log: (line: string) => void;
}

export interface DemoResult {
  readonly migrations: (MigrationOutcome & { gapMs: number; lost: number })[];
  readonly sent: number;
  readonly received: number;
  readonly chart: string;
  readonly results: string;
  readonly hypervisor: LabHypervisor;
  /** qemu: the guest's own count at the end (its console): sequence numbers used, failed sends. */
  readonly guestSent?: { seq: number; errors: number; skipped: number } | null;
  /**
   * netns: packets the guest's own eth0 dropped during the migrations. A namespace "VM" keeps
   * running while the driver moves its link (a paused VM sends nothing), so what it sends then
   * never leaves it: the hypervisor's pause, not the handover.
   */
  readonly guestLinkDrops?: number;
}

const PAPER_GAP_MS = 6000;
const STREAM_PORT = 5001;

function repoBin(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, 'bin', 'roam6.js');
}

function inNs(ns: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, repoBin(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Resolve on the child's first JSON event of this kind (ready lines), or reject when it exits. */
function ready(child: ChildProcess, ev: string): Promise<void> {
  return new Promise((res, rej) => {
    let buf = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(`"${ev}"`)) res();
    });
    child.on('exit', (code) => rej(new Error(`${ev} process exited (${code}): ${err.trim()}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null) return res();
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const say = opts.log;
  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });
  const hypervisor = opts.hypervisor ?? 'netns';
  say(`building the lab (namespaces, Redis, HA, two hosts, one ${hypervisor === 'qemu' ? 'QEMU guest under TCG' : 'guest'})…`);
  const lab: LabState = await labUp({ name: 'demo', guests: 1, hypervisor, log: (l) => say(`  ${l}`) });
  const children: ChildProcess[] = [];
  try {
    const guest = lab.guests[0]!;
    const deadline = Date.now() + (hypervisor === 'qemu' ? 90_000 : 15_000);
    let addr: string | null = null;
    if (hypervisor === 'qemu') say('the guest boots (about 5–10 s under TCG) and configures itself by SLAAC…');
    while (!(addr = guestAddress(guest, lab)) && Date.now() < deadline) await sleep(hypervisor === 'qemu' ? 250 : 100);
    if (!addr) throw new Error('the guest did not configure an address from the router advertisements');
    say(`guest ${guest.id} configured ${addr} by SLAAC from its MNP ${guest.mnp}`);

    const recvLog = join(out, 'receiver.jsonl');
    const receiver = inNs(lab.namespaces.cn!, ['lab', 'stream', 'recv', '--port', String(STREAM_PORT), '--out', recvLog]);
    children.push(receiver);
    await ready(receiver, 'listening');
    const samplers = (['host-a', 'host-b'] as const).map((h) => {
      const c = inNs(lab.namespaces[h]!, ['lab', 'sample', '--iface', h === 'host-a' ? 'a-c' : 'b-c', '--label', h, '--interval-ms', '50', '--out', join(out, `${h}.jsonl`)]);
      children.push(c);
      return ready(c, 'sampling');
    });
    await Promise.all(samplers);
    if (hypervisor === 'qemu') {
      // The guest's own sender (r6stream, started by its init) streams to the CN from boot.
      say(`the guest streams ${LAB_QEMU_STREAM.rateKbit} kbit/s of UDP to the correspondent ${LAB_ADDR.cn} by itself`);
    } else {
      const sender = inNs(guest.ns, ['lab', 'stream', 'send', '--to', LAB_ADDR.cn, '--port', String(STREAM_PORT), '--rate-kbit', '520', '--size', '1400']);
      children.push(sender);
      await ready(sender, 'sending');
      say(`streaming 520 kbit/s of UDP from the guest to the correspondent ${LAB_ADDR.cn}`);
    }
    await sleep(2000);
    const txDropped = () => (hypervisor === 'qemu' ? 0 : Number(nsExec(guest.ns, 'cat', '/sys/class/net/eth0/statistics/tx_dropped').trim()));
    const droppedBefore = txDropped();

    const redis = await connectRedis({ url: lab.redisUrl, name: 'roam6-demo', log: () => {} });
    const orch = new Orchestration(redis);
    const windows: MigrationWindow[] = [];
    const outcomes: MigrationOutcome[] = [];
    try {
      for (let i = 0; i < opts.migrations; i++) {
        const to = i % 2 === 0 ? 'host-b' : 'host-a';
        const startedAt = Date.now();
        const job = await orch.requestMigration({ guest: guest.id, to });
        const o = await orch.waitFor<MigrationOutcome>(job, 60_000);
        windows.push({ startedAt, endedAt: Date.now(), label: `${o.from} → ${o.to}` });
        outcomes.push(o);
        say(`migration ${i + 1}/${opts.migrations}: ${o.from} → ${o.to} in ${Math.round(o.totalMs)} ms (pause ${Math.round(o.downtimeMs)} ms, resume→BA ${Math.round(o.resumeToBaMs)} ms)`);
        await sleep(opts.intervalMs);
      }
    } finally {
      await orch.close();
      await redis.close();
    }
    await sleep(1000);
    const guestLinkDrops = hypervisor === 'qemu' ? undefined : txDropped() - droppedBefore;
    const guestSent = hypervisor === 'qemu' ? qemuGuestConsole(lab, guest.id)?.send ?? null : undefined;
    for (const c of children.reverse()) await stop(c);
    children.length = 0;

    const arrivals = readArrivals(recvLog);
    const gaps = gapsPerMigration(arrivals, windows, { slackMs: 500 });
    const migrations = outcomes.map((o, i) => ({ ...o, gapMs: gaps.migrations[i]?.gapMs ?? NaN, lost: gaps.migrations[i]?.lost ?? 0 }));
    const samples = [...readTrafficSamples(join(out, 'host-a.jsonl')), ...readTrafficSamples(join(out, 'host-b.jsonl'))];
    const series = binTraffic(samples, 250).map((s) => ({ label: s.label ?? s.iface, points: trafficPoints(s, 'tx') }));
    const maxSeq = arrivals.reduce((m, a) => Math.max(m, a.seq), 0);
    // A QEMU guest streamed before the receiver listened: count from the first packet received.
    const minSeq = hypervisor === 'qemu' ? arrivals.reduce((m, a) => Math.min(m, a.seq), Infinity) : 0;
    const sent = Number.isFinite(minSeq) ? maxSeq - minSeq + 1 : 0;
    const svg = figure5Svg({
      title: hypervisor === 'qemu' ? 'roam6: a QEMU guest streaming 520 kbit/s, migrated across two IPv6 segments' : 'roam6: a guest streaming 520 kbit/s, migrated between hosts on two IPv6 segments',
      subtitle: `traffic leaving each host toward the Home Agent (250 ms bins); ${migrations.length} migrations through the queue`,
      series: series.sort((a, b) => a.label.localeCompare(b.label)),
      migrations: migrations.map((m, i) => ({ at: windows[i]!.startedAt, label: `${m.from.replace('host-', '').toUpperCase()}→${m.to.replace('host-', '').toUpperCase()} · gap ${Math.round(m.gapMs)} ms` })),
      yLabel: 'kbit/s',
    });
    const chart = join(out, 'figure5.svg');
    writeFileSync(chart, svg);
    const results = join(out, 'results.json');
    writeFileSync(results, `${JSON.stringify({ date: new Date().toISOString(), hypervisor, migrations, sent, received: arrivals.length, summary: gaps.summary, ...(guestSent !== undefined ? { guestSent } : {}), ...(guestLinkDrops !== undefined ? { guestLinkDrops } : {}) }, null, 2)}\n`);
    return {
      migrations, sent, received: arrivals.length, chart, results, hypervisor,
      ...(guestSent !== undefined ? { guestSent } : {}),
      ...(guestLinkDrops !== undefined ? { guestLinkDrops } : {}),
    };
  } finally {
    for (const c of children) await stop(c);
    if (!opts.keepLab) await labDown('demo');
  }
}

export function demoReport(r: DemoResult): string {
  const rows = r.migrations.map(
    (m, i) =>
      `  ${String(i + 1).padStart(2)}  ${`${m.from} → ${m.to}`.padEnd(17)} ${String(Math.round(m.gapMs)).padStart(6)} ms ${String(m.lost).padStart(6)}   ${String(Math.round(m.downtimeMs)).padStart(5)} ms ${String(Math.round(m.resumeToBaMs)).padStart(5)} ms`,
  );
  const worst = Math.max(...r.migrations.map((m) => m.gapMs));
  const lost = r.migrations.reduce((n, m) => n + m.lost, 0);
  return [
    '',
    '   #  move              gap at the   lost   hypervisor  resume',
    '                        receiver             pause       → BA',
    ...rows,
    '',
    `stream: ${r.received} of ${r.sent} packets received; ${lost} lost during migrations`,
    ...(r.guestLinkDrops !== undefined
      ? [`the guest's own eth0 dropped ${r.guestLinkDrops} packets while the netns driver moved its link (they never left the guest; a paused VM sends nothing then)`]
      : []),
    ...(r.hypervisor === 'qemu' && r.guestSent ? [`the guest's own count: ${r.guestSent.seq} sequence numbers used, ${r.guestSent.errors} failed sends (QEMU live migration under TCG)`] : []),
    `largest gap ${Math.round(worst)} ms per migration, against the paper's ~6 s: ${(PAPER_GAP_MS / Math.max(1, worst)).toFixed(0)}× shorter`,
    `chart: ${r.chart}`,
    `data:  ${r.results}`,
    '',
  ].join('\n');
}
