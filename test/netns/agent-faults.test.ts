/**
 * An agent dies at every step of a migration. A failpoint (util/failpoints.ts) makes the source
 * or the destination agent SIGKILL itself right before or right after each step it runs; the
 * agent is restarted as a supervisor would, 300 ms later. Each migration must still finish
 * (the step is taken up again once its lock lapses, or the flow rolls forward), and end with
 * the guest reachable on exactly one host, the HA agreeing with Redis, and no job left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { canUseNetns, waitFor } from '../helpers/netns.js';
import { labDown, labUp, guestAddress, restartLabProcess, nsExec, labFailpointFile, LAB_ADDR, type LabState } from '../../src/lab/lab.js';
import { guestLinkIdentity, guestPortName } from '../../src/core/guest-link-identity.js';
import { apiRequest } from '../../src/cli/api-client.js';
import { connectRedis, type RedisHandle } from '../../src/platform/redis/connection.js';
import { RedisGuestRegistry } from '../../src/platform/redis/guest-registry.js';
import { Orchestration } from '../../src/orchestrator/runtime.js';
import { roam6, unfinishedJobs, waitForExit } from '../helpers/lab-cli.js';

const NAME = `f${process.pid % 100000}`;
type Host = 'host-a' | 'host-b';
const other = (h: Host): Host => (h === 'host-a' ? 'host-b' : 'host-a');

/** Who dies, and where: every step either host runs, right before and right after its work. */
const CASES: { who: 'source' | 'destination'; point: string }[] = [
  { who: 'destination', point: 'host.prepare.before' },
  { who: 'destination', point: 'host.prepare.after' },
  { who: 'source', point: 'host.migrate.before' },
  { who: 'source', point: 'host.migrate.after' },
  { who: 'destination', point: 'host.activate.before' },
  { who: 'destination', point: 'host.activate.after' },
  { who: 'source', point: 'host.release.before' },
  { who: 'source', point: 'host.release.after' },
];

describe.skipIf(!canUseNetns)('an agent SIGKILLed at each step of a migration', () => {
  let lab: LabState;
  let redis: RedisHandle;
  let orch: Orchestration;
  let registry: RedisGuestRegistry;
  let addr = '';

  const migrate = (guest: string, to: string) => roam6(['migrate', guest, '--to', to, '--json'], { REDIS_URL: lab.redisUrl });

  /** Where the guest is, by every account: registry, HA API, persisted binding, links on each host. */
  async function whereabouts(guest: string) {
    const rec = await registry.get(guest);
    const api = (await apiRequest(lab.haApi, 'GET', `/api/v1/bindings/${encodeURIComponent(guest)}`)).body as { coa?: string };
    const stored = await redis.client.hget(orch.keys.bindings, guest);
    const on = (h: Host) => nsExec(lab.namespaces[h]!, 'ip', '-o', 'link', 'show');
    const links = { 'host-a': on('host-a'), 'host-b': on('host-b') };
    const holders = (name: string) => (['host-a', 'host-b'] as const).filter((h) => links[h].includes(`${name}:`) || links[h].includes(`${name}@`));
    return {
      registry: rec?.host,
      haCoa: api.coa,
      storedCoa: stored ? (JSON.parse(stored) as { coa: string }).coa : undefined,
      port: holders(guestPortName(guest)),
      bridge: holders(guestLinkIdentity(guest).ifname),
    };
  }

  const unfinished = () => unfinishedJobs(orch);

  beforeAll(async () => {
    lab = await labUp({ name: NAME, guests: 1 });
    addr = (await waitFor(() => guestAddress(lab.guests[0]!), 15_000, 100))!;
    redis = await connectRedis({ url: lab.redisUrl, name: 'test', log: () => {} });
    orch = new Orchestration(redis);
    registry = new RedisGuestRegistry(redis.client);
  }, 90_000);

  afterAll(async () => {
    await orch?.close();
    await redis?.close();
    if (lab) await labDown(lab.name);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`r6lab-${NAME}-`);
  }, 30_000);

  for (const { who, point } of CASES) {
    it(`the ${who} agent dies at ${point}: the migration completes, the guest is on one host, the HA agrees with Redis`, async () => {
      const g = lab.guests[0]!;
      const from = (await registry.get(g.id))!.host as Host;
      const to = other(from);
      const victim = `agent-${who === 'source' ? from : to}`;
      const pid = lab.pids[victim]!;
      writeFileSync(labFailpointFile(lab, victim), `${point} kill\n`);

      const t0 = Date.now();
      const pending = migrate(g.id, to);
      // The failpoint really fired: the agent is gone (SIGKILL; no cleanup ran).
      await waitForExit(pid, 20_000).catch(() => expect.fail(`${victim} did not reach ${point}`));
      await new Promise((r) => setTimeout(r, 300));
      restartLabProcess(lab, victim);

      const r = await pending;
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ guest: g.id, from, to, newCoa: LAB_ADDR[to] });
      console.log(`${point} (${who}): migration done in ${Date.now() - t0} ms`);

      const w = await waitFor(async () => {
        const x = await whereabouts(g.id);
        return x.storedCoa === LAB_ADDR[to] && x.bridge.length === 1 ? x : null;
      }, 15_000, 100).catch(() => whereabouts(g.id)); // on timeout, show what disagrees
      expect(w).toEqual({ registry: to, haCoa: LAB_ADDR[to], storedCoa: LAB_ADDR[to], port: [to], bridge: [to] });
      expect(nsExec(lab.namespaces.cn!, 'ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', addr)).toContain('2 received');
      expect(await waitFor(async () => (Object.keys(await unfinished()).length === 0 ? {} : null), 10_000, 100).catch(unfinished)).toEqual({});
      // The restarted agent holds the guest (destination) or nothing (source), and says so.
      const holds = (h: Host) =>
        apiRequest(lab.agentApis[h], 'GET', '/api/v1/guests').then((x) => (x.body as { guests: { guest: string; phase: string }[] }).guests);
      expect(await waitFor(async () => ((await holds(to)).find((x) => x.guest === g.id)?.phase === 'active' ? true : null), 10_000, 100)).toBe(true);
      expect((await holds(from)).map((x) => x.guest)).not.toContain(g.id);
    }, 90_000);
  }
});
