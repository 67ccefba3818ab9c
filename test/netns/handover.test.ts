/**
 * Zero-loss make-before-break, end to end: a lab guest streams sequence-numbered UDP to the CN
 * and the CN streams back (one packet every 2 ms each way) while the guest is migrated back and
 * forth through the queue. With the HA on the userspace data plane the source agent asks it to
 * hold the guest's packets as the guest pauses, and the BU from the new host releases them
 * there: not one CN→guest packet may be lost. Guest→CN, a netns guest keeps sending while its
 * link moves (a real VM is paused then), so the packets it sends while it has no link are the
 * only ones allowed to be lost: at most the downtime the flow reports, in packets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { canUseNetns, JsonLineChild, waitFor } from '../helpers/netns.js';
import { labDown, labUp, guestAddress, LAB_ADDR, type LabState } from '../../src/lab/lab.js';
import { readArrivals } from '../../src/lab/stream.js';
import { apiRequest } from '../../src/cli/api-client.js';

const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;
const NAME = `h${process.pid % 100000}`;
const INTERVAL_MS = 2; // 64-byte packets at 256 kbit/s
const MIGRATIONS = 4;

interface Ev {
  event?: string;
  [k: string]: unknown;
}

describe.skipIf(!canUseNetns)('zero-loss handover (userspace HA holds over the switch)', () => {
  let lab: LabState;
  let addr = '';
  const inNs = (ns: string, args: string[]) => new JsonLineChild<Ev>(spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args]));

  beforeAll(async () => {
    lab = await labUp({ name: NAME, guests: 1 });
    addr = (await waitFor(() => guestAddress(lab.guests[0]!), 15_000, 100))!;
  }, 90_000);

  afterAll(async () => {
    if (lab) await labDown(lab.name);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`r6lab-${NAME}-`);
  }, 30_000);

  it(`${MIGRATIONS} migrations under a 2 ms stream each way: no CN→guest packet lost; guest→CN only while it had no link`, async () => {
    const g = lab.guests[0]!;
    const cn = lab.namespaces.cn!;
    const down = join(lab.dir, 'down.jsonl');
    const up = join(lab.dir, 'up.jsonl');
    const rxGuest = inNs(g.ns, ['lab', 'stream', 'recv', '--port', '5202', '--out', down]);
    const rxCn = inNs(cn, ['lab', 'stream', 'recv', '--port', '5201', '--out', up]);
    await rxGuest.waitForEvent((e) => e.event === 'listening', 10_000);
    await rxCn.waitForEvent((e) => e.event === 'listening', 10_000);
    const stream = ['--rate-kbit', '256', '--size', '64'];
    const txCn = inNs(cn, ['lab', 'stream', 'send', '--to', addr, '--port', '5202', ...stream, '--stream-id', '2']);
    const txGuest = inNs(g.ns, ['lab', 'stream', 'send', '--to', LAB_ADDR.cn, '--port', '5201', ...stream, '--stream-id', '1']);
    await txCn.waitForEvent((e) => e.event === 'sending', 10_000);
    await txGuest.waitForEvent((e) => e.event === 'sending', 10_000);

    const outcomes: { downtimeMs: number; held: boolean; to: string }[] = [];
    try {
      await new Promise((r) => setTimeout(r, 800));
      for (let i = 0; i < MIGRATIONS; i++) {
        const to = i % 2 === 0 ? 'host-b' : 'host-a';
        const r = spawnSync(process.execPath, [BIN, 'migrate', g.id, '--to', to, '--json'], { encoding: 'utf8', env: { ...process.env, REDIS_URL: lab.redisUrl }, timeout: 60_000 });
        expect(r.status, r.stderr).toBe(0);
        outcomes.push(JSON.parse(r.stdout) as { downtimeMs: number; held: boolean; to: string });
        await new Promise((res) => setTimeout(res, 700));
      }
    } finally {
      txCn.child.kill('SIGTERM');
      txGuest.child.kill('SIGTERM');
    }
    const sentDown = (await txCn.waitForEvent((e) => e.event === 'done', 5000)).sent as number;
    const sentUp = (await txGuest.waitForEvent((e) => e.event === 'done', 5000)).sent as number;
    await new Promise((r) => setTimeout(r, 300));
    rxGuest.child.kill('SIGTERM');
    rxCn.child.kill('SIGTERM');
    await rxGuest.waitForEvent((e) => e.event === 'done', 5000);
    await rxCn.waitForEvent((e) => e.event === 'done', 5000);

    const seqs = (file: string) => new Set(readArrivals(file).map((a) => a.seq));
    const gotDown = seqs(down);
    const gotUp = seqs(up);
    const lostDown = sentDown - gotDown.size;
    const lostUp = sentUp - gotUp.size;
    const runs = (got: Set<number>, sent: number) => {
      const out: string[] = [];
      for (let s = 0; s < sent; s++) {
        if (got.has(s)) continue;
        let e = s;
        while (e + 1 < sent && !got.has(e + 1)) e++;
        out.push(s === e ? `${s}` : `${s}-${e}`);
        s = e;
      }
      return out.join(' ') || 'none';
    };
    console.log(`lost CN→guest: ${runs(gotDown, sentDown)}; guest→CN: ${runs(gotUp, sentUp)}`);
    const allowedUp = outcomes.reduce((n, o) => n + Math.ceil(o.downtimeMs / INTERVAL_MS) + 1, 0);
    const metrics = String((await apiRequest(lab.haApi, 'GET', '/metrics')).body);
    const heldPackets = Number(/^roam6_ha_handover_held_packets_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    const released = Number(/^roam6_ha_handover_holds_released_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    console.log(
      `${MIGRATIONS} migrations, downtime ${outcomes.map((o) => o.downtimeMs).join('/')} ms: CN→guest lost ${lostDown} of ${sentDown} ` +
        `(${heldPackets} held at the HA and delivered at the new host over ${released} holds); guest→CN lost ${lostUp} of ${sentUp} (allowed ${allowedUp})`,
    );
    expect(outcomes.every((o) => o.held)).toBe(true);
    expect(released).toBe(MIGRATIONS);
    expect(heldPackets).toBeGreaterThan(0); // the hold really carried traffic over the switch
    expect(lostDown).toBe(0);
    expect(lostUp).toBeLessThanOrEqual(allowedUp);
  }, 180_000);

  it('the switch ahead of the BU needs the token, and says why not without a hold', async () => {
    const path = `/api/v1/bindings/${encodeURIComponent(lab.guests[0]!.id)}/hold/switch`;
    const anon = await apiRequest(lab.haApi, 'POST', path);
    expect([401, 403]).toContain(anon.status);
    const bad = await apiRequest(lab.haApi, 'POST', path, { authorization: 'Bearer not-the-token' });
    expect([401, 403]).toContain(bad.status);
    const ok = await apiRequest(lab.haApi, 'POST', path, { authorization: `Bearer ${lab.haToken}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ switched: false, reason: 'no-hold' });
  });
});
