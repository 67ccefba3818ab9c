/**
 * A host whose wall clock is 30 s off. The lab's HA requires the RFC 4285 timestamp option
 * (window 7 s), so the first BU from a skewed host is answered 144 with the HA's own time; the
 * mobile router resynchronises and registers, and its refreshes keep the learned offset.
 *
 * The orchestrator, comparing the two hosts' times for the downtime and resume→BA, sees the skew
 * in the queue's timestamps and corrects for it (migration.ts clockBounds).
 *
 * The skew is real: agent-host-b runs under libfaketime (LD_PRELOAD, FAKETIME="-30s", monotonic
 * clock left alone so Node's timers keep working); its heartbeat in Redis carries its Date.now().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { canUseNetns, waitFor } from '../helpers/netns.js';
import { labDown, labUp, guestAddress, restartLabProcess, nsExec, LAB_ADDR, type LabState } from '../../src/lab/lab.js';
import { apiRequest } from '../../src/cli/api-client.js';
import { connectRedis, type RedisHandle } from '../../src/platform/redis/connection.js';
import { RedisHostRegistry } from '../../src/platform/redis/host-registry.js';
import { roam6, waitForExit } from '../helpers/lab-cli.js';

const NAME = `k${process.pid % 100000}`;

/** libfaketime's preload library (Debian: package `faketime`, /usr/lib/<triplet>/faketime/). */
const LIBFAKETIME = ((): string | null => {
  const dirs = ['/usr/lib/faketime', '/usr/local/lib/faketime'];
  try {
    for (const d of readdirSync('/usr/lib')) dirs.push(`/usr/lib/${d}/faketime`);
  } catch {
    /* no /usr/lib */
  }
  for (const d of dirs) for (const f of ['libfaketimeMT.so.1', 'libfaketime.so.1']) if (existsSync(`${d}/${f}`)) return `${d}/${f}`;
  return null;
})();
if (canUseNetns && !LIBFAKETIME) console.warn('[roam6 tests] libfaketime not installed (apt-get install faketime); clock-skew tests skipped');

/** `env` execs the agent, so the pid the lab records is the agent's own. */
const skewed = (offset: string): string[] => ['env', `LD_PRELOAD=${LIBFAKETIME}`, `FAKETIME=${offset}`, 'FAKETIME_DONT_FAKE_MONOTONIC=1'];

interface MigrateOut {
  from: string;
  to: string;
  newCoa: string;
  totalMs: number;
  downtimeMs: number;
  resumeToBaMs: number;
  clockSkewMs?: Record<string, number>;
}

describe.skipIf(!canUseNetns || !LIBFAKETIME)('a host agent with a skewed clock (libfaketime), HA requiring RFC 4285 timestamps', () => {
  let lab: LabState;
  let redis: RedisHandle;
  let hosts: RedisHostRegistry;

  const migrate = (guest: string, to: string) => roam6(['migrate', guest, '--to', to, '--json'], { REDIS_URL: lab.redisUrl });
  const binding = async (guest: string) =>
    (await apiRequest(lab.haApi, 'GET', `/api/v1/bindings/${encodeURIComponent(guest)}`)).body as { coa: string; seq: number };
  /** BAs the HA sent with `status`: roam6_ha_binding_acks_total{status=…} over every reason. */
  const acks = async (status: number): Promise<number> => {
    const text = String((await apiRequest(lab.haApi, 'GET', '/metrics')).body);
    let n = 0;
    for (const m of text.matchAll(/^roam6_ha_binding_acks_total\{([^}]*)\} (\d+)/gm)) if (m[1]!.includes(`status="${status}"`)) n += Number(m[2]);
    return n;
  };
  const agentLog = () => readFileSync(`${lab.dir}/logs/agent-host-b.log`, 'utf8');
  const skewNotes = () => [...agentLog().matchAll(/^.*clock skew with the home agent; adjusted.*$/gm)].map((m) => JSON.parse(m[0]) as { guest: string; offsetMs: number });

  /** Stop agent-host-b and start it again (under `wrapper`); resolves with its clock minus ours. */
  async function restartHostB(wrapper: string[] | undefined): Promise<number> {
    const pid = lab.pids['agent-host-b']!;
    process.kill(pid, 'SIGTERM');
    await waitForExit(pid);
    const started = Date.now();
    restartLabProcess(lab, 'agent-host-b', wrapper ? { wrapper } : {});
    await waitFor(async () => (await apiRequest(lab.agentApis['host-b'], 'GET', '/api/v1/health').catch(() => null))?.status === 200, 20_000, 50);
    // Its heartbeat carries its Date.now(); a beat written after the restart tells its skew.
    // (Heartbeats are 1 s apart; take the freshest of a few.)
    let skew = -Infinity;
    await waitFor(async () => {
      const hb = await hosts.alive('host-b');
      if (!hb || Date.now() - started < 1200) return false;
      skew = Math.max(skew, hb.at - Date.now());
      return true;
    }, 10_000, 100);
    return skew;
  }

  /** The agent's own refresh path (MobileRouter.register) for a guest it holds, on demand. */
  async function refresh(guest: string) {
    const r = await apiRequest(lab.agentApis['host-b'], 'POST', `/api/v1/guests/${encodeURIComponent(guest)}/activate`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as { seq: number; attempts: number };
  }

  async function migrateToSkewedHost(guest: string, expectedOffsetMs: number) {
    const before144 = await acks(144);
    const notesBefore = skewNotes().length;
    const r = await migrate(guest, 'host-b');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as MigrateOut;
    console.log(`host-b ${expectedOffsetMs > 0 ? 'behind' : 'ahead'} by 30 s: migration total ${out.totalMs} ms, downtime ${out.downtimeMs} ms, resume→BA ${out.resumeToBaMs} ms; skew seen by the orchestrator ${JSON.stringify(out.clockSkewMs)}`);
    expect(out).toMatchObject({ from: 'host-a', to: 'host-b', newCoa: LAB_ADDR['host-b'] });
    // The orchestrator saw the skew (HA minus host-b = −(host-b minus us)) and corrected for it.
    expect(Object.keys(out.clockSkewMs ?? {})).toEqual(['host-b']);
    expect(Math.abs(out.clockSkewMs!['host-b']! + expectedOffsetMs)).toBeLessThan(1000);
    // Timings that mix both hosts' clocks must not carry the 30 s skew.
    expect(out.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(out.downtimeMs).toBeLessThan(2000);
    expect(out.resumeToBaMs).toBeGreaterThanOrEqual(0);
    expect(out.resumeToBaMs).toBeLessThan(2000);
    expect((await binding(guest)).coa).toBe(LAB_ADDR['host-b']);
    // The first BU from host-b was refused for its timestamp, and the MR resynchronised.
    expect(await acks(144)).toBeGreaterThan(before144);
    const notes = skewNotes().slice(notesBefore).filter((n) => n.guest === guest);
    expect(notes.length).toBeGreaterThanOrEqual(1);
    expect(Math.abs(notes.at(-1)!.offsetMs - expectedOffsetMs)).toBeLessThan(2000);
    // The guest is reachable through the HA at its new host.
    expect(nsExec(lab.namespaces.cn!, 'ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', guestAddress(lab.guests.find((g) => g.id === guest)!)!)).toContain('2 received');
  }

  /** A refresh from the skewed host is accepted at once: no 144, one BU, the HA's seq moves. */
  async function refreshKeepsWorking(guest: string) {
    const before144 = await acks(144);
    const seq = (await binding(guest)).seq;
    const reg = await refresh(guest);
    expect(reg.attempts).toBe(1);
    expect(await acks(144)).toBe(before144);
    expect(await binding(guest)).toMatchObject({ coa: LAB_ADDR['host-b'], seq: reg.seq });
    expect(reg.seq).not.toBe(seq);
  }

  beforeAll(async () => {
    lab = await labUp({ name: NAME, guests: 2 });
    for (const g of lab.guests) await waitFor(() => guestAddress(g), 15_000, 100);
    redis = await connectRedis({ url: lab.redisUrl, name: 'test', log: () => {} });
    hosts = new RedisHostRegistry(redis.client);
  }, 90_000);

  afterAll(async () => {
    await redis?.close();
    if (lab) await labDown(lab.name);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`r6lab-${NAME}-`);
  }, 30_000);

  it('host-b 30 s behind: a guest migrates there; the HA answers 144, the MR resynchronises, refreshes need no 144', async () => {
    const skew = await restartHostB(skewed('-30s'));
    console.log(`agent-host-b clock under FAKETIME=-30s: ${skew} ms from ours`);
    expect(skew).toBeGreaterThan(-31_500);
    expect(skew).toBeLessThan(-28_500);
    await migrateToSkewedHost(lab.guests[0]!.id, 30_000);
    await refreshKeepsWorking(lab.guests[0]!.id);
  }, 60_000);

  it('host-b 30 s ahead: it re-registers the guest it holds at start and takes another by migration', async () => {
    const g1 = lab.guests[0]!.id;
    const seq = (await binding(g1)).seq;
    const before144 = await acks(144);
    const skew = await restartHostB(skewed('+30s'));
    console.log(`agent-host-b clock under FAKETIME=+30s: ${skew} ms from ours`);
    expect(skew).toBeGreaterThan(28_500);
    expect(skew).toBeLessThan(31_500);
    // Adoption at start registers g1 again from the skewed clock: 144 first, then accepted.
    await waitFor(async () => (await binding(g1)).seq !== seq, 10_000, 100);
    expect(await acks(144)).toBeGreaterThan(before144);
    await migrateToSkewedHost(lab.guests[1]!.id, -30_000);
    await refreshKeepsWorking(g1);
    await refreshKeepsWorking(lab.guests[1]!.id);
  }, 60_000);

  it('back on a true clock, host-b registers again and a guest migrates back to host-a', async () => {
    const g1 = lab.guests[0]!.id;
    const seq = (await binding(g1)).seq;
    const skew = await restartHostB(undefined);
    expect(Math.abs(skew)).toBeLessThan(1500);
    await waitFor(async () => (await binding(g1)).seq !== seq, 10_000, 100);
    await refreshKeepsWorking(g1);
    const r = await migrate(g1, 'host-a');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as MigrateOut;
    console.log(`clocks agree: migration total ${out.totalMs} ms, downtime ${out.downtimeMs} ms, resume→BA ${out.resumeToBaMs} ms`);
    expect(out.clockSkewMs).toBeUndefined();
    expect((await binding(g1)).coa).toBe(LAB_ADDR['host-a']);
  }, 60_000);
});
