/**
 * DESIGN §4 with a real guest: the gap the mobility layer adds to a QEMU live migration.
 *
 *   npm run build && node dist/bench/migrate-qemu.js [--migrations 20] [--keep-lab]
 *
 * One QEMU guest under TCG (deploy/guest-image) streams 520 kbit/s of sequence-numbered UDP to
 * the CN in a `roam6 lab --hypervisor qemu`. Each round, in the same run:
 *   cross   roam6 migrates it to the other host (other /64 segment) through the queue;
 *   base    the same QEMU migration inside one segment with no roam6: a second QEMU on the
 *           same host, its TAP on the same bridge, driven over QMP directly (then back, so the
 *           agent's driver finds the guest where it left it).
 * The receiver's gap around each migration, QEMU's own downtime, and cross − base ("added")
 * are reported per migration and summarised; the goal is added ≤ one HA round trip + 5 ms.
 * Writes its section of docs/benchmarks.md and docs/bench/migrate-qemu.json.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { labDown, labUp, qemuGuestConsole, LAB_ADDR, LAB_QEMU_STREAM, type LabHost, type LabState } from '../src/lab/lab.js';
import { readArrivals } from '../src/lab/stream.js';
import { gapsPerMigration, mobilityAddedGap, quantile, streamGaps, type MigrationWindow } from '../src/lab/analysis.js';
import { qemuGuestPaths, type QemuGuestPaths } from '../src/platform/qemu/command-line.js';
import { connectRedis } from '../src/platform/redis/connection.js';
import { Orchestration } from '../src/orchestrator/runtime.js';
import type { MigrationOutcome } from '../src/orchestrator/jobs.js';
import { writeSection } from './report.js';
import { sameSegmentMigration, type SameSegmentResult } from './handover-lib.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const N = Number(arg('--migrations', '20'));
const KEEP = args.includes('--keep-lab');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


function inNs(ns: string, argv: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, new URL('../../bin/roam6.js', import.meta.url).pathname, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces, QEMU)');
  const out = '/tmp/roam6-bench-migrate-qemu';
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  console.log('building the lab with one QEMU guest…');
  const lab = await labUp({ name: 'bq', guests: 1, hypervisor: 'qemu' });
  const guest = lab.guests[0]!.id;
  const children: ChildProcess[] = [];
  try {
    const t0 = Date.now();
    const up = () => {
      const c = qemuGuestConsole(lab, guest);
      return !!(c?.addr && c.send?.seq);
    };
    while (!up() && Date.now() - t0 < 90_000) await sleep(250);
    const boot = qemuGuestConsole(lab, guest);
    if (!boot?.addr) throw new Error('the guest did not come up');
    console.log(`guest up: ${boot.addr} (booted in ${boot.uptimeSec.toFixed(1)} s guest time)`);
    const recvLog = join(out, 'receiver.jsonl');
    const recv = inNs(lab.namespaces.cn!, ['lab', 'stream', 'recv', '--port', String(LAB_QEMU_STREAM.port), '--out', recvLog]);
    children.push(recv);
    await sleep(2000);
    const rtt = Number(/= [\d.]+\/([\d.]+)\//.exec(execFileSync('ip', ['netns', 'exec', lab.namespaces['host-a']!, 'ping', '-6', '-c', '5', '-i', '0.2', '-q', LAB_ADDR.ha], { encoding: 'utf8' }))?.[1] ?? NaN);

    const redis = await connectRedis({ url: lab.redisUrl, name: 'bench', log: () => {} });
    const orch = new Orchestration(redis);
    const cross: (MigrationWindow & { o: MigrationOutcome })[] = [];
    const base: (MigrationWindow & SameSegmentResult)[] = [];
    let host: LabHost = 'host-a';
    try {
      for (let i = 0; i < N; i++) {
        // same segment, no roam6: stem → alt → stem on the current host
        const stem = qemuGuestPaths(lab.qemu!.stateDirs[host], guest);
        const altDir = join(lab.qemu!.stateDirs[host], 'baseline');
        mkdirSync(altDir, { recursive: true });
        const alt: QemuGuestPaths = { ...qemuGuestPaths(altDir, guest), tap: `r6vb${stem.stem.slice(3)}` };
        let startedAt = Date.now();
        const b = await sameSegmentMigration(lab, host, guest, stem, alt);
        base.push({ startedAt, endedAt: Date.now(), label: `base ${host}`, ...b });
        await sleep(1500);
        await sameSegmentMigration(lab, host, guest, alt, stem);
        await sleep(1500);
        // across segments, with roam6
        const to: LabHost = host === 'host-a' ? 'host-b' : 'host-a';
        startedAt = Date.now();
        const job = await orch.requestMigration({ guest, to });
        const o = await orch.waitFor<MigrationOutcome>(job, 120_000);
        cross.push({ startedAt, endedAt: Date.now(), label: `${o.from} → ${o.to}`, o });
        host = to;
        console.log(`${i + 1}/${N}: base downtime ${b.downtimeMs} ms; roam6 ${o.from} → ${o.to}: downtime ${Math.round(o.downtimeMs)} ms, resume→BA ${Math.round(o.resumeToBaMs)} ms`);
        await sleep(1500);
      }
    } finally {
      await orch.close();
      await redis.close();
    }
    await sleep(1000);
    const guestEnd = qemuGuestConsole(lab, guest);
    for (const c of children) c.kill('SIGTERM');
    await sleep(500);

    const arrivals = readArrivals(recvLog);
    const all = streamGaps(arrivals);
    const cg = gapsPerMigration(arrivals, cross, { slackMs: 400 }).migrations;
    const bg = gapsPerMigration(arrivals, base, { slackMs: 400 }).migrations;
    const added = mobilityAddedGap(cg, bg, Number.isFinite(rtt) ? { haRttMs: rtt } : {});
    // The guest's own silence inside each gap, on its clock (which stops while QEMU is paused):
    // how long the guest itself did not send after it resumed — TCG's cold start. The rest of
    // the gap is the pause plus the network.
    const byRecv = new Map(arrivals.map((a) => [a.recvAt, a]));
    const silence = (g: { startsAt: number | null; endsAt: number | null } | undefined) => {
      const a = g?.startsAt == null ? undefined : byRecv.get(g.startsAt);
      const b = g?.endsAt == null ? undefined : byRecv.get(g.endsAt);
      return a && b ? b.sentAt - a.sentAt : NaN;
    };
    const netShare = (g: { gapMs: number; startsAt: number | null; endsAt: number | null } | undefined) => (g ? g.gapMs - silence(g) : NaN);
    const addedNet = mobilityAddedGap(cg.map((g) => ({ gapMs: netShare(g) })), bg.map((g) => ({ gapMs: netShare(g) })), Number.isFinite(rtt) ? { haRttMs: rtt } : {});
    const rows = cross.map((c, i) => ({
      i: i + 1,
      move: c.label ?? '',
      crossGapMs: Math.round(cg[i]?.gapMs ?? NaN),
      crossLost: cg[i]?.lost ?? NaN,
      qemuDowntimeMs: Math.round(c.o.downtimeMs),
      resumeToBaMs: Math.round(c.o.resumeToBaMs),
      baseGapMs: Math.round(bg[i]?.gapMs ?? NaN),
      baseDowntimeMs: base[i]?.downtimeMs ?? NaN,
      addedMs: Math.round(added.perMigration[i]?.addedMs ?? NaN),
      crossNetMs: Math.round(netShare(cg[i])),
      baseNetMs: Math.round(netShare(bg[i])),
      addedNetMs: Math.round(addedNet.perMigration[i]?.addedMs ?? NaN),
    }));
    const med = (xs: number[]) => Math.round(quantile(xs, 0.5) ?? NaN);
    const table = [
      '| # | move | receiver gap | lost | QEMU downtime | resume→BA | same-segment gap (no roam6) | its QEMU downtime | added by roam6 | gap − guest silence: roam6 / same segment / added |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.i} | ${r.move} | ${r.crossGapMs} ms | ${r.crossLost} | ${r.qemuDowntimeMs} ms | ${r.resumeToBaMs} ms | ${r.baseGapMs} ms | ${r.baseDowntimeMs} ms | ${r.addedMs} ms | ${r.crossNetMs} / ${r.baseNetMs} / ${r.addedNetMs} ms |`),
    ].join('\n');
    const summary = [
      `${N} QEMU live migrations (TCG, 128 MiB guest) across two /64 segments through roam6, each paired with the same migration inside one segment without roam6, in the same run.`,
      '',
      `| | median | max |`,
      `|---|---|---|`,
      `| receiver gap, across segments (roam6) | ${med(rows.map((r) => r.crossGapMs))} ms | ${Math.max(...rows.map((r) => r.crossGapMs))} ms |`,
      `| receiver gap, one segment (no roam6) | ${med(rows.map((r) => r.baseGapMs))} ms | ${Math.max(...rows.map((r) => r.baseGapMs))} ms |`,
      `| added by the mobility layer | ${Math.round(added.summary.p50AddedMs ?? NaN)} ms | ${Math.round(added.summary.maxAddedMs ?? NaN)} ms |`,
      `| added, without the guest's own silence (TCG cold start) | ${Math.round(addedNet.summary.p50AddedMs ?? NaN)} ms | ${Math.round(addedNet.summary.maxAddedMs ?? NaN)} ms |`,
      `| QEMU downtime (roam6 runs) | ${med(rows.map((r) => r.qemuDowntimeMs))} ms | ${Math.max(...rows.map((r) => r.qemuDowntimeMs))} ms |`,
      `| resume → BA | ${med(rows.map((r) => r.resumeToBaMs))} ms | ${Math.max(...rows.map((r) => r.resumeToBaMs))} ms |`,
      '',
      `Packets lost (guest → CN, the guest's own sequence numbers): ${all.lost} of ${all.received + all.lost}; lost beyond the same-segment baseline: ${added.summary.totalAddedLost}. ` +
        `HA round trip from host-a: ${rtt.toFixed(2)} ms, so the goal is added ≤ ${(rtt + 5).toFixed(1)} ms: ${added.summary.withinGoal ? 'met' : 'not met'} (max).` +
        (guestEnd?.send ? ` The guest used ${guestEnd.send.seq} sequence numbers, ${guestEnd.send.errors} failed sends.` : ''),
      '',
      "The receiver gap includes TCG's cold start after RESUME: the guest's own clock (sentAt) shows how long the guest itself did not send once it ran again, and that share swings with the machine's load (2 vCPUs, shared). \"gap − guest silence\" removes it: what is left is QEMU's pause plus the network path, the part roam6 can influence. Same-segment and cross-segment runs alternate, so both see the same load.",
    ].join('\n');
    console.log(`\n${summary}\n\n${table}\n`);
    writeSection('migrate-qemu', 'Mobility-added gap with a real QEMU guest', 'npm run build && node dist/bench/migrate-qemu.js --migrations 20', `${summary}\n\n${table}`, { rttMs: rtt, rows, added: added.summary, addedWithoutGuestSilence: addedNet.summary, lost: all.lost, received: all.received });
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (!KEEP) await labDown('bq');
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exitCode = 1;
});
