/** Every BU status path of the HA, with a fake data plane, a memory store and a fake clock. */
import { beforeEach, describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../../src/wire/ipv6.js';
import { BaStatus, MhType, decodeMobilityHeader, encodeMobilityHeader, ntpFromUnixMs, type BindingAck } from '../../../src/wire/mh/index.js';
import { HomeAgent, DEFAULT_HA_RUNTIME, type HaEvent } from '../../../src/core/home-agent.js';
import { DEFAULT_HA_POLICY } from '../../../src/core/home-agent-policy.js';
import { buildBindingUpdate, checkBindingAck } from '../../../src/core/binding-update-builder.js';
import { FakeClock } from '../../../src/platform/fake/clock.js';
import { FakeHaDataplane } from '../../../src/platform/fake/dataplane.js';
import { MemoryBindingStore } from '../../../src/platform/fake/binding-store.js';
import { TestGuestDirectory, testGuest } from '../../helpers/guests.js';

const HA = parseIpv6('2001:db8:1::2');
const COA_A = parseIpv6('2001:db8:a::2');
const COA_B = parseIpv6('2001:db8:b::2');
const g1 = testGuest(1);
const g2 = testGuest(2);
const noRouter = testGuest(3, { mobileRouter: false });
const implicitNone = testGuest(4, { mnps: [] });

let clock: FakeClock;
let dp: FakeHaDataplane;
let store: MemoryBindingStore;
let ha: HomeAgent;
let events: HaEvent[];

function makeHa(policy: Partial<typeof DEFAULT_HA_POLICY> = {}) {
  return new HomeAgent(
    { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')], ...policy }, ...DEFAULT_HA_RUNTIME },
    { guests: new TestGuestDirectory([g1, g2, noRouter, implicitNone]), dataplane: dp, store, clock },
  );
}

beforeEach(async () => {
  clock = new FakeClock();
  dp = new FakeHaDataplane();
  store = new MemoryBindingStore();
  ha = makeHa();
  events = [];
  ha.subscribe((e) => events.push(e));
  await ha.start();
});

type Spec = Parameters<typeof buildBindingUpdate>[0];
function bu(over: Partial<Spec> = {}, guest = g1) {
  return buildBindingUpdate({ guest: guest.id, sa: guest.sas[0]!, seq: 1, lifetimeSec: 400, coa: COA_A, mnps: guest.mnps, ...over }).bytes;
}

async function send(bytes: Uint8Array, from: Ipv6Address = COA_A, guest = g1): Promise<BindingAck | null> {
  const reply = await ha.handle(bytes, from, HA);
  if (!reply) return null;
  expect(reply.to).toEqual(from);
  expect(reply.from).toEqual(HA);
  const check = checkBindingAck(reply.mh, guest.sas[0]!, from);
  if (!check.ok) throw new Error(check.reason);
  return check.ack;
}

describe('registration', () => {
  it('accepts a first registration: BA 0 with R, granted lifetime, BRA, forwarding installed', async () => {
    const ack = await send(bu());
    expect(ack).toMatchObject({ type: MhType.BindingAck, status: 0, seq: 1, lifetimeUnits: 100, flags: { router: true } });
    expect(ack!.options.some((o) => o.type === 2)).toBe(true); // Binding Refresh Advice
    expect(dp.routes.get(g1.id)).toEqual({ coa: '2001:db8:a::2', prefixes: ['2001:db8:100:1::/64'] });
    expect(ha.cache.get(g1.id)).toMatchObject({ coa: '2001:db8:a::2', seq: 1, lifetimeSec: 400 });
    expect(events.map((e) => e.type)).toEqual(['created']);
  });

  it('a BU from a new CoA is a plain update: no de-registration, history recorded, event "moved"', async () => {
    await send(bu());
    const ack = await send(bu({ seq: 2, coa: COA_B }), COA_B);
    expect(ack!.status).toBe(0);
    expect(dp.ops.filter((o) => o.op === 'remove')).toHaveLength(0);
    expect(dp.routes.get(g1.id)!.coa).toBe('2001:db8:b::2');
    expect(ha.cache.get(g1.id)!.history).toEqual([{ from: '2001:db8:a::2', to: '2001:db8:b::2', at: clock.now(), haMs: 0 }]);
    expect(events.map((e) => e.type)).toEqual(['created', 'moved']);
    expect(events[1]).toMatchObject({ from: '2001:db8:a::2', coa: '2001:db8:b::2', durationMs: 0 });
  });

  it('measures the HA side of a handover from the first BU from the new CoA, rejected attempts included', async () => {
    await send(bu());
    expect((await send(bu({ seq: 1, coa: COA_B }), COA_B))!.status).toBe(135); // not newer: the new host retries
    clock.advance(40);
    expect((await send(bu({ seq: 2, coa: COA_B }), COA_B))!.status).toBe(0);
    expect(ha.cache.get(g1.id)!.history!.at(-1)).toMatchObject({ to: '2001:db8:b::2', haMs: 40 });
    expect(events.at(-1)).toMatchObject({ type: 'moved', durationMs: 40 });
  });

  it('caps the lifetime at the configured maximum', async () => {
    const ack = await send(bu({ lifetimeSec: 262_140 }));
    expect(ack!.lifetimeUnits).toBe(DEFAULT_HA_POLICY.maxLifetimeSec / 4);
  });

  it('implicit mode uses the configured prefixes', async () => {
    const ack = await send(bu({ mnps: [] }));
    expect(ack!.status).toBe(0);
    expect(dp.routes.get(g1.id)!.prefixes).toEqual(['2001:db8:100:1::/64']);
  });
});

describe('rejections carry the RFC status and leave the binding unchanged', () => {
  beforeEach(async () => {
    await send(bu({ seq: 10 }));
    events.length = 0;
  });
  const unchanged = () => {
    expect(ha.cache.get(g1.id)).toMatchObject({ coa: '2001:db8:a::2', seq: 10 });
    expect(dp.routes.get(g1.id)!.coa).toBe('2001:db8:a::2');
  };

  it('135 for an old sequence number, carrying the last accepted one', async () => {
    for (const seq of [10, 9, 10 + 32768]) {
      const ack = await send(bu({ seq, coa: COA_B }), COA_B);
      expect(ack).toMatchObject({ status: BaStatus.SequenceNumberOutOfWindow, seq: 10, lifetimeUnits: 0 });
    }
    unchanged();
    expect(events.every((e) => e.type === 'rejected' && e.status === 135)).toBe(true);
  });

  it('146 for a bad authenticator (valid SPI, wrong key)', async () => {
    const forged = bu({ seq: 11, sa: { ...g1.sas[0]!, key: new Uint8Array(16).fill(0xee) }, coa: COA_B });
    const ack = await send(forged, COA_B);
    expect(ack!.status).toBe(BaStatus.AuthenticationFailed);
    unchanged();
  });

  it('146 when another guest\'s valid key claims this identity', async () => {
    const ack = await send(bu({ seq: 11, sa: g2.sas[0]!, coa: COA_B }), COA_B, g2);
    expect(ack!.status).toBe(BaStatus.AuthenticationFailed);
    unchanged();
  });

  it('142 for a valid key asking for another guest\'s prefix', async () => {
    const ack = await send(bu({ seq: 1, mnps: g1.mnps, coa: COA_B }, g2), COA_B, g2);
    expect(ack!.status).toBe(BaStatus.NotAuthorizedForPrefix);
    unchanged();
    expect(ha.cache.get(g2.id)).toBeUndefined();
  });

  it('141 for a prefix outside the served pool, or with host bits set', async () => {
    expect((await send(bu({ seq: 11, mnps: [parsePrefix('2001:db8:900::/64')] })))!.status).toBe(BaStatus.InvalidPrefix);
    const hostBits = { addr: parseIpv6('2001:db8:100:1::1'), len: 64 };
    expect((await send(bu({ seq: 12, mnps: [hostBits] })))!.status).toBe(BaStatus.InvalidPrefix);
    unchanged();
  });

  it('143 in implicit mode with no configured prefix', async () => {
    const ack = await send(bu({ mnps: [] }, implicitNone), COA_A, implicitNone);
    expect(ack!.status).toBe(BaStatus.ForwardingSetupFailed);
  });

  it('140 for R without H, and for a guest with mobile-router support off', async () => {
    expect((await send(bu({ seq: 11, flags: { home: false } })))!.status).toBe(BaStatus.MobileRouterOperationNotPermitted);
    expect((await send(bu({}, noRouter), COA_A, noRouter))!.status).toBe(BaStatus.MobileRouterOperationNotPermitted);
    unchanged();
  });

  it('143 when the data plane fails, and forwarding rolls back to the old CoA', async () => {
    dp.failNext = new Error('netlink: ENOBUFS');
    const ack = await send(bu({ seq: 11, coa: COA_B }), COA_B);
    expect(ack).toMatchObject({ status: BaStatus.ForwardingSetupFailed, flags: { router: false } });
    unchanged();
  });
});

describe('replay protection (RFC 4285 §6)', () => {
  it('145 when the timestamp is required and missing; 144 when stale or replayed; the HA time is echoed', async () => {
    ha = makeHa({ requireTimestamp: true });
    await ha.start();
    expect((await send(bu()))!.status).toBe(BaStatus.MessageIdRequired);

    const ts = ntpFromUnixMs(clock.now());
    expect((await send(bu({ timestamp: ts })))!.status).toBe(0);
    // Same timestamp again (a replayed BU with a fresh sequence number): 144.
    const replay = await send(bu({ seq: 2, timestamp: ts }));
    expect(replay!.status).toBe(BaStatus.IdMismatch);
    // 30 s skew: 144, and the BA tells the MN the HA's time in the high 32 bits.
    const skewed = await send(bu({ seq: 3, timestamp: ntpFromUnixMs(clock.now() - 30_000) }));
    expect(skewed!.status).toBe(BaStatus.IdMismatch);
    const echoed = skewed!.options.find((o) => o.type === 10);
    expect(echoed && 'timestamp' in echoed && echoed.timestamp >> 32n).toBe(ntpFromUnixMs(clock.now()) >> 32n);
    expect(ha.cache.get(g1.id)!.seq).toBe(1);
  });
});

describe('de-registration', () => {
  it('lifetime 0 from the current CoA deletes the binding and answers lifetime 0', async () => {
    await send(bu());
    const ack = await send(bu({ seq: 2, lifetimeSec: 0 }));
    expect(ack).toMatchObject({ status: 0, lifetimeUnits: 0 });
    expect(ha.cache.get(g1.id)).toBeUndefined();
    expect(dp.routes.has(g1.id)).toBe(false);
  });

  it('lifetime 0 from an old CoA is ignored (RFC 5213 §5.3.5), with no answer', async () => {
    await send(bu());
    await send(bu({ seq: 2, coa: COA_B }), COA_B);
    expect(await send(bu({ seq: 3, lifetimeSec: 0 }), COA_A)).toBeNull();
    expect(ha.cache.get(g1.id)!.coa).toBe('2001:db8:b::2');
    expect(ha.counters.dropped['dereg-from-old-coa']).toBe(1);
  });

  it('133 for a de-registration without a binding', async () => {
    expect((await send(bu({ lifetimeSec: 0 })))!.status).toBe(BaStatus.NotHomeAgentForThisMobileNode);
  });
});

describe('silent drops and rate limits', () => {
  it('drops malformed input and counts it by reason', async () => {
    expect(await ha.handle(Uint8Array.from([1, 2, 3]), COA_A, HA)).toBeNull();
    expect(await ha.handle(new Uint8Array(16), COA_A, HA)).toBeNull();
    expect(ha.counters.malformed).toEqual({ truncated: 1, 'bad-payload-proto': 1 });
  });

  it('drops a BU with an unknown SPI or without an authentication option, without answering', async () => {
    expect(await send(bu({ sa: { spi: 999_999, algorithm: 'hmac-sha1-96', key: new Uint8Array(16) } }))).toBeNull();
    const plain = encodeMobilityHeader({ type: MhType.BindingUpdate, seq: 1, lifetimeUnits: 1, flags: { ack: true, home: true, linkLocal: false, key: false, map: false, router: true, proxy: false }, options: [] });
    expect(await send(plain)).toBeNull();
    expect(ha.counters.dropped).toMatchObject({ 'unknown-spi': 1, 'no-auth-option': 1 });
  });

  it('answers an unknown MH type with a Binding Error (status 2)', async () => {
    const reply = await ha.handle(Uint8Array.from([59, 0, 99, 0, 0, 0, 0, 0]), COA_A, HA);
    const r = decodeMobilityHeader(reply!.mh);
    expect(r.ok && r.value.type === MhType.BindingError && r.value.status).toBe(2);
  });

  it('rate-limits a flooding guest without starving another guest', async () => {
    let accepted = 0;
    for (let seq = 1; seq <= 200; seq++) if ((await send(bu({ seq })))?.status === 0) accepted++;
    expect(accepted).toBe(DEFAULT_HA_RUNTIME.rateLimit.burst);
    expect(ha.counters.dropped['rate-limited']).toBe(200 - accepted);
    expect((await send(bu({}, g2), COA_A, g2))!.status).toBe(0);
    clock.advance(1000);
    expect((await send(bu({ seq: 201 })))!.status).toBe(0);
  });

  it('stops answering a forged-BU flood with 146 after a few (no reflection)', async () => {
    const forgedSa = { ...g1.sas[0]!, key: new Uint8Array(16).fill(1) };
    let answered = 0;
    for (let seq = 1; seq <= 50; seq++) if (await ha.handle(bu({ seq, sa: forgedSa }), COA_A, HA)) answered++;
    expect(answered).toBe(DEFAULT_HA_RUNTIME.authFailLimit.burst);
    expect((await send(bu()))!.status).toBe(0);
  });

  it('a replay flood of a captured BU neither starves the guest nor reflects a stream of 135s', async () => {
    const captured = bu({ seq: 10 });
    expect((await send(captured))!.status).toBe(0);
    // Replayed from the guest's own CoA (spoofed), far beyond the guest's rate limit.
    const replies: (BindingAck | null)[] = [];
    for (let i = 0; i < 500; i++) replies.push(await send(captured));
    const answered = replies.filter((r) => r !== null);
    expect(answered.length).toBe(DEFAULT_HA_RUNTIME.staleLimit.burst);
    expect(answered.every((r) => r!.status === BaStatus.SequenceNumberOutOfWindow && r!.seq === 10)).toBe(true);
    expect(ha.counters.dropped['stale-limited']).toBe(500 - answered.length);
    expect(ha.counters.dropped['rate-limited']).toBeUndefined();
    // The guest's real updates still go through, at once and later, under the flood.
    expect((await send(bu({ seq: 11 })))!.status).toBe(0);
    for (let i = 0; i < 100; i++) await send(captured);
    expect((await send(bu({ seq: 12, coa: COA_B }), COA_B))!.status).toBe(0);
    expect(ha.cache.get(g1.id)).toMatchObject({ seq: 12, coa: '2001:db8:b::2' });
    // A de-registration replayed from the old CoA is stale too: limited the same way, and ignored.
    const dereg = bu({ seq: 11, lifetimeSec: 0 });
    for (let i = 0; i < 50; i++) expect(await send(dereg)).toBeNull();
    expect(ha.cache.get(g1.id)).toMatchObject({ seq: 12 });
    // The stale bucket refills like the others.
    clock.advance(1000);
    expect((await send(captured))!.status).toBe(BaStatus.SequenceNumberOutOfWindow);
  });
});

describe('expiry, persistence and restart', () => {
  it('expires on the injected clock and removes forwarding', async () => {
    await send(bu({ lifetimeSec: 8 }));
    clock.advance(7000);
    expect(ha.cache.get(g1.id)).toBeDefined();
    clock.advance(2000);
    await Promise.resolve();
    expect(ha.cache.get(g1.id)).toBeUndefined();
    await ha.flush();
    expect(dp.routes.has(g1.id)).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: 'expired', guest: g1.id });
  });

  it('writes bindings in batches and a new HA forwards for all of them at start', async () => {
    for (let n = 1; n <= 2; n++) await send(bu({}, testGuest(n)), COA_A, testGuest(n));
    await ha.flush();
    expect(store.data.size).toBe(2);
    expect(store.batches).toBe(1);

    const dp2 = new FakeHaDataplane();
    const ha2 = new HomeAgent(
      { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')] }, ...DEFAULT_HA_RUNTIME },
      { guests: new TestGuestDirectory([g1, g2]), dataplane: dp2, store, clock },
    );
    expect(await ha2.start()).toEqual({ restored: 2, expired: 0 });
    expect([...dp2.routes.keys()].sort()).toEqual([g1.id, g2.id]);
    // The restored binding keeps its sequence number: an old BU still gets 135.
    const reply = await ha2.handle(bu({ seq: 1 }), COA_A, HA);
    expect(checkBindingAck(reply!.mh, g1.sas[0]!, COA_A)).toMatchObject({ ok: true, ack: { status: 135 } });
  });

  it('keeps working while the store fails, and writes once it is back', async () => {
    store.failing = new Error('redis down');
    expect((await send(bu()))!.status).toBe(0);
    await ha.flush();
    expect(ha.counters.persistFailures).toBe(1);
    store.failing = null;
    await ha.flush();
    expect(store.data.has(g1.id)).toBe(true);
  });

  it('serialises two BUs of one guest: the later sequence number wins', async () => {
    const [a, b] = await Promise.all([ha.handle(bu({ seq: 5, coa: COA_B }), COA_B, HA), ha.handle(bu({ seq: 6 }), COA_A, HA)]);
    expect(a && b).toBeTruthy();
    expect(ha.cache.get(g1.id)).toMatchObject({ seq: 6, coa: '2001:db8:a::2' });
  });
});

describe('key rollover', () => {
  it('accepts BUs under either of two SAs during a rollover, and answers under the SA the BU used', async () => {
    const oldSa = { spi: 7001, algorithm: 'hmac-sha1-96' as const, key: new Uint8Array(16).fill(1) };
    const newSa = { spi: 7002, algorithm: 'hmac-sha256-128' as const, key: new Uint8Array(32).fill(2) };
    const rolling = testGuest(9, { sas: [oldSa, newSa] });
    const ha2 = new HomeAgent(
      { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')] }, ...DEFAULT_HA_RUNTIME },
      { guests: new TestGuestDirectory([rolling]), dataplane: new FakeHaDataplane(), clock },
    );
    await ha2.start();
    for (const [seq, sa] of [[1, oldSa], [2, newSa], [3, oldSa]] as const) {
      const { bytes } = buildBindingUpdate({ guest: rolling.id, sa, seq, lifetimeSec: 400, coa: COA_A, mnps: rolling.mnps });
      const reply = await ha2.handle(bytes, COA_A, HA);
      const check = checkBindingAck(reply!.mh, sa, COA_A);
      expect(check.ok && check.ack.status).toBe(0);
    }
    expect(ha2.cache.get(rolling.id)?.seq).toBe(3);
  });
});
