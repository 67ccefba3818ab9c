/**
 * Real QEMU live migrations through roam6 (the qemu driver), end to end in a namespace lab:
 * one unmodified Linux guest under TCG (deploy/guest-image) streams 520 kbit/s of
 * sequence-numbered UDP to the correspondent and echoes a stream back, while `roam6 migrate`
 * moves it between hosts on two /64 segments. Then a migration whose destination QEMU dies
 * before the switch must roll back with the guest still running, reachable, on the source.
 *
 * Needs root, qemu-system-x86, linux-image-amd64, busybox-static and gcc (CI installs them).
 * The guest boots once (about 5–10 s under TCG).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job } from 'bullmq';
import { canUseNetns, ensureDistBuilt, JsonLineChild, waitFor } from '../helpers/netns.js';
import { labDown, labUp, qemuGuestConsole, LAB_ADDR, LAB_QEMU_STREAM, type LabState, type QemuGuestConsole } from '../../src/lab/lab.js';
import { readArrivals } from '../../src/lab/stream.js';
import { gapsPerMigration, streamGaps, type MigrationWindow } from '../../src/lab/analysis.js';
import { qemuGuestPaths } from '../../src/platform/qemu/command-line.js';
import { readPidfile, processAlive } from '../../src/platform/hypervisor/process.js';
import { apiRequest } from '../../src/cli/api-client.js';
import { connectRedis } from '../../src/platform/redis/connection.js';
import { Orchestration } from '../../src/orchestrator/runtime.js';
import type { MigrationOutcome, MigrationProgressData } from '../../src/orchestrator/jobs.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'roam6.js');
const NAME = `q${process.pid % 100000}`;

const qemuAvailable = (() => {
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  const kernel = existsSync('/boot') && readdirSync('/boot').some((f) => /^vmlinuz-.*-amd64$/.test(f));
  return has('qemu-system-x86_64') && has('busybox') && has('gcc') && kernel;
})();
if (canUseNetns && !qemuAvailable) console.warn('[roam6 tests] qemu-system-x86, linux-image-amd64, busybox-static or gcc missing; QEMU tests skipped');

interface Row {
  move: string;
  gapMs: number;
  lost: number;
  downtimeMs: number;
  resumeToBaMs: number;
  totalMs: number;
}

describe.skipIf(!canUseNetns || !qemuAvailable)('qemu driver: real live migrations through roam6', () => {
  let lab: LabState;
  let guest: string;
  let out: string;
  const children: JsonLineChild<{ event?: string }>[] = [];
  const windows: MigrationWindow[] = [];
  const rows: Row[] = [];
  let first: QemuGuestConsole;
  const env = () => ({ ...process.env, REDIS_URL: lab.redisUrl, ROAM6_API: lab.haApi });
  const inNs = (ns: string, args: string[]) => {
    const c = new JsonLineChild<{ event?: string }>(spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(c);
    return c;
  };
  const bindings = async () => ((await apiRequest(lab.haApi, 'GET', '/api/v1/bindings')).body as { bindings: { guest: string; coa: string }[] }).bindings;
  const qemuPid = (host: 'host-a' | 'host-b') => {
    const pid = readPidfile(qemuGuestPaths(lab.qemu!.stateDirs[host], guest).pidfile);
    return pid !== null && processAlive(pid) ? pid : null;
  };

  /** `roam6 migrate --json`, with the receiver-side window recorded for the gap analysis. */
  async function migrate(to: 'host-a' | 'host-b'): Promise<MigrationOutcome> {
    const startedAt = Date.now();
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [BIN, 'migrate', guest, '--to', to, '--json'], { env: env() });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    const o = JSON.parse(r.stdout) as MigrationOutcome;
    windows.push({ startedAt, endedAt: Date.now(), label: `${o.from} → ${o.to}` });
    return o;
  }

  function analyse(): { rows: Row[]; lost: number; received: number } {
    const arrivals = readArrivals(join(out, 'guest-to-cn.jsonl'));
    const gaps = gapsPerMigration(arrivals, windows, { slackMs: 400 });
    const all = streamGaps(arrivals);
    return {
      rows: rows.map((r, i) => ({ ...r, gapMs: gaps.migrations[i]?.gapMs ?? NaN, lost: gaps.migrations[i]?.lost ?? NaN })),
      lost: all.lost,
      received: all.received,
    };
  }

  beforeAll(async () => {
    ensureDistBuilt(ROOT, 'dist/src/cli/main.js');
    out = mkdtempSync(join(tmpdir(), 'roam6-qemu-'));
    lab = await labUp({ name: NAME, guests: 1, hypervisor: 'qemu' });
    guest = lab.guests[0]!.id;
    first = (await waitFor(() => {
      const c = qemuGuestConsole(lab, guest);
      return c?.addr && c.router && c.send && c.send.seq > 0 ? c : null;
    }, 90_000, 250))!;
    console.log(`guest ${guest} booted on host-a in ${first.uptimeSec.toFixed(1)} s of guest time; SLAAC ${first.addr}, router ${first.router} (${first.routerMac})`);
    const recv = inNs(lab.namespaces.cn!, ['lab', 'stream', 'recv', '--port', String(LAB_QEMU_STREAM.port), '--out', join(out, 'guest-to-cn.jsonl')]);
    await recv.waitForEvent((e) => e.event === 'listening', 10_000);
    // CN → guest → CN: the guest's echo sends each packet back to port echoReplyPort.
    const echoRecv = inNs(lab.namespaces.cn!, ['lab', 'stream', 'recv', '--port', String(LAB_QEMU_STREAM.echoReplyPort), '--out', join(out, 'echo.jsonl')]);
    await echoRecv.waitForEvent((e) => e.event === 'listening', 10_000);
    const send = inNs(lab.namespaces.cn!, ['lab', 'stream', 'send', '--to', first.addr!, '--port', String(LAB_QEMU_STREAM.echoPort), '--rate-kbit', '520', '--size', '1400', '--stream-id', '77']);
    await send.waitForEvent((e) => e.event === 'sending', 10_000);
    await new Promise((r) => setTimeout(r, 2000));
  }, 150_000);

  let failed = false;
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true;
  });

  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
    if (lab && failed) keepEvidence(lab);
    if (lab) await labDown(lab.name);
    if (out) rmSync(out, { recursive: true, force: true });
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`r6lab-${NAME}-`);
  }, 60_000);

  it('boots an unmodified guest that configures itself by SLAAC from its MNP and streams to the CN through the HA', () => {
    expect(first.addr!.startsWith(lab.guests[0]!.mnp.replace('::/64', ':'))).toBe(true);
    expect(first.router).toMatch(/^fe80::/);
    expect(first.host).toBe('host-a');
    const { received, lost } = analyse();
    expect(received).toBeGreaterThan(40);
    expect(lost).toBe(0);
  });

  it('live-migrates host-a → host-b with roam6 migrate: the stream keeps flowing, nothing lost, same address and router', async () => {
    const o = await migrate('host-b');
    // The driver stopped the guest only once the HA held its packets (make before break).
    expect(o).toMatchObject({ from: 'host-a', to: 'host-b', newCoa: LAB_ADDR['host-b'], held: true });
    rows.push({ move: 'host-a → host-b', gapMs: NaN, lost: NaN, downtimeMs: o.downtimeMs, resumeToBaMs: o.resumeToBaMs, totalMs: o.totalMs });
    // The guest now runs on host-b; the source QEMU (paused in postmigrate) was quit on release.
    const after = (await waitFor(() => {
      const c = qemuGuestConsole(lab, guest);
      return c && c.host === 'host-b' && c.uptimeSec > first.uptimeSec ? c : null;
    }, 15_000, 200))!;
    expect(after.addr).toBe(first.addr);
    expect(after.router).toBe(first.router);
    expect(after.routerMac).toBe(first.routerMac);
    expect(qemuPid('host-a')).toBeNull();
    expect(qemuPid('host-b')).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1500));
    const a = analyse();
    expect(a.lost).toBe(0);
    expect(a.rows[0]!.lost).toBe(0);
    expect(a.rows[0]!.gapMs).toBeLessThan(2000);
  }, 60_000);

  it('migrates back and three more times: still one binding, still no loss', async () => {
    for (const to of ['host-a', 'host-b', 'host-a', 'host-b'] as const) {
      const o = await migrate(to);
      expect(o.held).toBe(true);
      rows.push({ move: `${o.from} → ${o.to}`, gapMs: NaN, lost: NaN, downtimeMs: o.downtimeMs, resumeToBaMs: o.resumeToBaMs, totalMs: o.totalMs });
      await new Promise((r) => setTimeout(r, 1200));
    }
    const b = await bindings();
    expect(b.filter((x) => x.guest === guest)).toHaveLength(1);
    expect(b.find((x) => x.guest === guest)!.coa).toBe(LAB_ADDR['host-b']);
    expect(qemuPid('host-a')).toBeNull();
    const c = qemuGuestConsole(lab, guest)!;
    expect(c).toMatchObject({ host: 'host-b', addr: first.addr, router: first.router, routerMac: first.routerMac });
    expect(c.send!.errors).toBe(0);
    const a = analyse();
    console.log(
      [
        '',
        '  move              receiver gap  lost  QEMU downtime  resume→BA  total',
        ...a.rows.map((r) => `  ${r.move.padEnd(17)} ${`${Math.round(r.gapMs)} ms`.padStart(12)} ${String(r.lost).padStart(5)} ${`${r.downtimeMs} ms`.padStart(14)} ${`${Math.round(r.resumeToBaMs)} ms`.padStart(10)} ${`${r.totalMs} ms`.padStart(8)}`),
        `  guest → CN: ${a.received} packets received, ${a.lost} lost (the guest's own sequence numbers); guest used ${c.send!.seq}, ${c.send!.errors} failed sends`,
        c.echo ? `  CN → guest (the guest's own count): ${c.echo.received} received, ${c.echo.lost} missing sequence numbers` : '',
        '',
      ].join('\n'),
    );
    expect(a.lost).toBe(0);
    // CN → guest: the HA held what arrived from before the guest stopped until it ran at its new
    // host, so the guest's echo saw every sequence number of the CN's stream.
    expect(c.echo?.lost).toBe(0);
    for (const r of a.rows) {
      expect(r.lost).toBe(0);
      expect(r.gapMs).toBeLessThan(2000);
    }
  }, 90_000);

  it('a failed migration (the destination QEMU killed before the switch) rolls back: the guest keeps running on the source, reachable', async () => {
    const redis = await connectRedis({ url: lab.redisUrl, name: 'qemu-test', log: () => {} });
    const orch = new Orchestration(redis);
    const before = qemuGuestConsole(lab, guest)!;
    const sourcePid = qemuPid('host-b');
    let killed: number | null = null;
    try {
      const job = await orch.requestMigration({ guest, to: 'host-a' });
      // The orchestrator reports phase `migrate` once the destination is prepared (its QEMU waits
      // with -incoming); kill that QEMU right then, before the source can finish.
      await waitFor(async () => {
        const j = await Job.fromId(orch.queue('orchestrator'), job.id!);
        const phase = (j?.progress as MigrationProgressData | undefined)?.phase;
        if (phase !== 'migrate') return false;
        killed = qemuPid('host-a');
        if (killed !== null) process.kill(killed, 'SIGKILL');
        return true;
      }, 30_000, 5);
      expect(killed).not.toBeNull();
      await expect(orch.waitFor(job, 60_000)).rejects.toThrow(/rolled back \(guest stays on host-b\)/);
    } finally {
      await orch.close();
      await redis.close();
    }
    // The source QEMU is the same process and runs; the destination has nothing left.
    expect(qemuPid('host-b')).toBe(sourcePid);
    expect(qemuPid('host-a')).toBeNull();
    const b = await bindings();
    expect(b.filter((x) => x.guest === guest)).toHaveLength(1);
    expect(b.find((x) => x.guest === guest)!.coa).toBe(LAB_ADDR['host-b']);
    const after = await waitFor(() => {
      const c = qemuGuestConsole(lab, guest);
      return c && c.uptimeSec > before.uptimeSec + 1 ? c : null;
    }, 10_000, 200);
    expect(after).toMatchObject({ host: 'host-b', addr: first.addr, router: first.router });
    const ping = spawnSync('ip', ['netns', 'exec', lab.namespaces.cn!, 'ping', '-6', '-n', '-c', '5', '-i', '0.2', '-W', '1', first.addr!], { encoding: 'utf8' });
    expect(ping.stdout).toMatch(/5 received/);
    await new Promise((r) => setTimeout(r, 1000));
    const arrivals = readArrivals(join(out, 'guest-to-cn.jsonl'));
    expect(streamGaps(arrivals).lost).toBe(0);
    expect(arrivals.at(-1)!.recvAt).toBeGreaterThan(Date.now() - 1000);
    console.log(`rollback: destination QEMU ${killed} killed before the switch; the guest kept running on host-b (pid ${sourcePid}), binding unchanged, stream intact`);
  }, 90_000);
});

/**
 * A failed run keeps what explains it: the lab's logs and each host's QEMU serial log go to
 * test-artifacts/qemu-<lab>/, and the last lines of the agents' logs are printed (CI keeps only
 * the output).
 */
function keepEvidence(lab: LabState): void {
  const dest = join(ROOT, 'test-artifacts', `qemu-${lab.name}`);
  try {
    cpSync(join(lab.dir, 'logs'), join(dest, 'logs'), { recursive: true });
    for (const [host, dir] of Object.entries(lab.qemu?.stateDirs ?? {})) {
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.serial'))) cpSync(join(dir, f), join(dest, `${host}-${f}`));
    }
    for (const f of readdirSync(join(dest, 'logs')).filter((n) => n.startsWith('agent-'))) {
      const tail = readFileSync(join(dest, 'logs', f), 'utf8').trimEnd().split('\n').slice(-25).join('\n');
      console.log(`--- ${f} (last 25 lines; all in ${dest}) ---\n${tail}`);
    }
  } catch (e) {
    console.log(`could not keep the evidence in ${dest}: ${String(e)}`);
  }
}
