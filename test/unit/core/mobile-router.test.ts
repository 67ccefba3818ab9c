/**
 * The per-guest MR state machine against the real HA logic, in process: fake clock, fake
 * data plane, memory state, and a "network" that can drop or delay packets.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../../src/wire/ipv6.js';
import { BaStatus } from '../../../src/wire/mh/index.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../../../src/core/home-agent.js';
import { DEFAULT_HA_POLICY } from '../../../src/core/home-agent-policy.js';
import { MobileRouter, RegistrationError, type MobileRouterConfig } from '../../../src/core/mobile-router.js';
import { checkBindingAck } from '../../../src/core/binding-update-builder.js';
import { FakeClock } from '../../../src/platform/fake/clock.js';
import { FakeHaDataplane } from '../../../src/platform/fake/dataplane.js';
import { MemoryMobilityState } from '../../../src/platform/fake/mobility-state.js';
import { TestGuestDirectory, testGuest } from '../../helpers/guests.js';

const HA = parseIpv6('2001:db8:1::2');
const COA_A = parseIpv6('2001:db8:a::2');
const COA_B = parseIpv6('2001:db8:b::2');
const g1 = testGuest(1);
const noRouter = testGuest(3, { mobileRouter: false });

let clock: FakeClock;
let ha: HomeAgent;
let state: MemoryMobilityState;
let dropNext: number;
let sent: number;

async function makeHa(policy: Partial<typeof DEFAULT_HA_POLICY> = {}, haClock = clock) {
  ha = new HomeAgent(
    { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')], ...policy }, ...DEFAULT_HA_RUNTIME },
    { guests: new TestGuestDirectory([g1, noRouter]), dataplane: new FakeHaDataplane(), clock: haClock },
  );
  await ha.start();
}

/** An MR whose BUs reach the HA (unless dropped) and whose BAs come back verified. */
function mr(guest = g1, coa: Ipv6Address = COA_A, over: Partial<MobileRouterConfig> = {}, mrClock = clock): MobileRouter {
  const sa = guest.sas[0]!;
  const router: MobileRouter = new MobileRouter(
    { guest: guest.id, mnps: guest.mnps, sa, coa, haAddress: HA, lifetimeSec: 400, initialTimeoutMs: 50, ...over },
    {
      state,
      clock: mrClock,
      sender: {
        send(mh, dst, src) {
          sent++;
          if (dropNext > 0) {
            dropNext--;
            return;
          }
          void ha.handle(mh, src, dst).then((reply) => {
            if (!reply) return;
            const check = checkBindingAck(reply.mh, sa, coa);
            if (check.ok) router.onAck(check.ack);
          });
        },
      },
    },
  );
  return router;
}

/** Let promise callbacks run, then move the fake clock. */
async function tick(ms = 0) {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  if (ms) clock.advance(ms);
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

beforeEach(async () => {
  clock = new FakeClock();
  state = new MemoryMobilityState();
  dropNext = 0;
  sent = 0;
  await makeHa();
});

describe('mobile router registration', () => {
  it('registers in one round trip', async () => {
    const r = mr();
    const reg = await r.register();
    expect(reg).toMatchObject({ status: 0, attempts: 1, lifetimeSec: 400 });
    expect(r.state).toBe('registered');
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:a::2');
  });

  it('retransmits with exponential backoff and a new sequence number each time', async () => {
    dropNext = 3;
    const r = mr();
    const p = r.register();
    await tick(50); // 1st timeout: 50 ms
    await tick(100); // 2nd: 100 ms
    await tick(200); // 3rd: 200 ms; the 4th BU gets through
    const reg = await p;
    expect(reg.attempts).toBe(4);
    expect(reg.elapsedMs).toBe(350);
    expect(reg.seq).toBe(3);
  });

  it('adopts the HA\'s sequence number after 135 and succeeds with the next one', async () => {
    // Another host registered the guest with a high sequence number the local counter lags.
    state.seq.set(g1.id, 499);
    await mr(g1, COA_B).register();
    state.seq.set(g1.id, 5);
    const r = mr(g1, COA_A);
    const reg = await r.register();
    expect(reg).toMatchObject({ status: 0, attempts: 2, seq: 501 });
    expect(ha.cache.get(g1.id)).toMatchObject({ coa: '2001:db8:a::2', seq: 501 });
  });

  it('treats 140–146 as fatal: the promise rejects with the status and the state says so', async () => {
    const r = mr(noRouter);
    await expect(r.register()).rejects.toMatchObject({ status: BaStatus.MobileRouterOperationNotPermitted });
    expect(r.state).toBe('failed');
    expect(r.status().error).toMatch(/140/);
  });

  it('refreshes before expiry (Binding Refresh Advice) and keeps the binding alive', async () => {
    const r = mr();
    await r.register();
    const first = ha.cache.get(g1.id)!.seq;
    await tick(400 * 0.8 * 1000 + 10);
    await tick();
    expect(ha.cache.get(g1.id)!.seq).toBeGreaterThan(first);
    expect(r.state).toBe('registered');
  });

  it('resynchronises after 144 when its clock is 30 s ahead of the HA', async () => {
    await makeHa({ requireTimestamp: true });
    const skewed = new FakeClock(clock.now() + 30_000);
    const r = mr(g1, COA_A, { useTimestamp: true }, skewed);
    const reg = await r.register();
    expect(reg).toMatchObject({ status: 0, attempts: 2 });
  });

  it('stops without a de-registration', async () => {
    const r = mr();
    await r.register();
    const before = sent;
    const seq = ha.cache.get(g1.id)!.seq;
    r.stop();
    await tick(1_000_000);
    expect(sent).toBe(before);
    expect(ha.counters.dropped['dereg-from-old-coa'] ?? 0).toBe(0);
    expect(ha.cache.get(g1.id)?.seq ?? seq).toBe(seq); // it only expires, never de-registers
    await expect(r.register()).rejects.toBeInstanceOf(RegistrationError);
  });

  it('keeps retrying while the shared state is unreachable, and registers once it is back', async () => {
    state.failing = new Error('redis down');
    const r = mr();
    const p = r.register();
    await tick(50);
    await tick(100);
    expect(r.status().error).toMatch(/redis down/);
    state.failing = null;
    await tick(200);
    expect((await p).status).toBe(0);
  });
});
