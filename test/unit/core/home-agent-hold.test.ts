/**
 * Make-before-break at the HA: a hold asked for as the guest pauses, released to the new CoA by
 * the BU that moves the binding; with a data plane that cannot buffer, a clear 'unsupported'.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix, formatIpv6, type Ipv6Address } from '../../../src/wire/ipv6.js';
import { HomeAgent, DEFAULT_HA_RUNTIME, type HaEvent } from '../../../src/core/home-agent.js';
import { DEFAULT_HA_POLICY } from '../../../src/core/home-agent-policy.js';
import { buildBindingUpdate, checkBindingAck } from '../../../src/core/binding-update-builder.js';
import type { HandoverHold } from '../../../src/ports/dataplane.js';
import { FakeClock } from '../../../src/platform/fake/clock.js';
import { FakeHaDataplane } from '../../../src/platform/fake/dataplane.js';
import { TestGuestDirectory, testGuest } from '../../helpers/guests.js';

const HA = parseIpv6('2001:db8:1::2');
const COA_A = parseIpv6('2001:db8:a::2');
const COA_B = parseIpv6('2001:db8:b::2');
const g1 = testGuest(1);

/** A fake that buffers like the userspace backend: the log says what was held and where it went. */
class HoldingFake extends FakeHaDataplane {
  readonly log: string[] = [];
  holding: HandoverHold | null = null;
  async hold(guest: string, h: HandoverHold): Promise<boolean> {
    if (!this.routes.has(guest)) return false;
    this.holding = h;
    this.log.push(`hold ${guest} next=${h.nextCoa ? formatIpv6(h.nextCoa) : '-'} ${h.maxMs}ms`);
    return true;
  }
  async release(guest: string): Promise<number> {
    this.log.push(`release ${guest} to ${this.routes.get(guest)?.coa}`);
    this.holding = null;
    return 7;
  }
}

let clock: FakeClock;
let events: HaEvent[];

function makeHa(dp: FakeHaDataplane) {
  const ha = new HomeAgent(
    { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')] }, ...DEFAULT_HA_RUNTIME },
    { guests: new TestGuestDirectory([g1]), dataplane: dp, clock },
  );
  ha.subscribe((e) => events.push(e));
  return ha;
}

async function register(ha: HomeAgent, seq: number, coa: Ipv6Address): Promise<number> {
  const { bytes } = buildBindingUpdate({ guest: g1.id, sa: g1.sas[0]!, seq, lifetimeSec: 400, coa, mnps: g1.mnps });
  const reply = await ha.handle(bytes, coa, HA);
  const check = checkBindingAck(reply!.mh, g1.sas[0]!, coa);
  if (!check.ok) throw new Error(check.reason);
  return check.ack.status;
}

beforeEach(() => {
  clock = new FakeClock();
  events = [];
});

describe('handover hold at the HA', () => {
  it('holds from the pause and releases to the new CoA when its BU moves the binding', async () => {
    const dp = new HoldingFake();
    const ha = makeHa(dp);
    await ha.start();
    expect(await register(ha, 1, COA_A)).toBe(0);
    expect(await ha.holdForHandover(g1.id, { nextCoa: COA_B, maxMs: 2000, maxPackets: 100 })).toEqual({ held: true, coa: '2001:db8:a::2', until: clock.now() + 2000 });
    expect(dp.holding).toMatchObject({ maxPackets: 100, maxMs: 2000 });
    clock.advance(40);
    expect(await register(ha, 2, COA_B)).toBe(0);
    // The binding moved first, then the held packets went after it: to the new CoA.
    expect(dp.log).toEqual([`hold ${g1.id} next=2001:db8:b::2 2000ms`, `release ${g1.id} to 2001:db8:b::2`]);
    expect(events.map((e) => e.type)).toEqual(['created', 'held', 'moved', 'released']);
    expect(events.at(-1)).toMatchObject({ packets: 7, durationMs: 40, coa: '2001:db8:b::2' });
  });

  it('a refresh from the old CoA does not end the hold; an explicit release does, once', async () => {
    const dp = new HoldingFake();
    const ha = makeHa(dp);
    await ha.start();
    await register(ha, 1, COA_A);
    await ha.holdForHandover(g1.id, { maxMs: 2000, maxPackets: 100 });
    await register(ha, 2, COA_A);
    expect(dp.holding).not.toBeNull();
    expect(await ha.releaseHold(g1.id)).toBe(7);
    expect(await ha.releaseHold(g1.id)).toBe(0);
    expect(dp.log.filter((l) => l.startsWith('release'))).toHaveLength(1);
  });

  it('a hold that ran out is not released again by a late move', async () => {
    const dp = new HoldingFake();
    const ha = makeHa(dp);
    await ha.start();
    await register(ha, 1, COA_A);
    await ha.holdForHandover(g1.id, { maxMs: 100, maxPackets: 100 });
    clock.advance(500);
    await register(ha, 2, COA_B);
    expect(dp.log.filter((l) => l.startsWith('release'))).toEqual([]);
  });

  it('says why not: no binding, or a data plane that cannot buffer', async () => {
    const holding = makeHa(new HoldingFake());
    await holding.start();
    expect(await holding.holdForHandover(g1.id, { maxMs: 100, maxPackets: 1 })).toEqual({ held: false, reason: 'no-binding' });
    const kernelLike = makeHa(new FakeHaDataplane());
    await kernelLike.start();
    await register(kernelLike, 1, COA_A);
    expect(await kernelLike.holdForHandover(g1.id, { maxMs: 100, maxPackets: 1 })).toEqual({ held: false, reason: 'unsupported' });
  });

  it('the guest left: held packets go to the next CoA ahead of its BU; a refresh from the old CoA does not pull them back', async () => {
    const dp = new HoldingFake();
    const ha = makeHa(dp);
    await ha.start();
    await register(ha, 1, COA_A);
    await ha.holdForHandover(g1.id, { nextCoa: COA_B, maxMs: 2000, maxPackets: 100 });
    clock.advance(30);
    expect(await ha.switchHold(g1.id)).toEqual({ switched: true, coa: '2001:db8:b::2', packets: 7 });
    // forwarding (and the release) went to the next CoA; the binding still says the old one
    expect(dp.log.at(-1)).toBe(`release ${g1.id} to 2001:db8:b::2`);
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:a::2');
    expect(events.at(-1)).toMatchObject({ type: 'released', coa: '2001:db8:b::2', packets: 7, durationMs: 30, detail: 'ahead of the BU' });
    // the old host's refresh timer fires before the new host's BU: still the new host
    expect(await register(ha, 2, COA_A)).toBe(0);
    expect(dp.routes.get(g1.id)!.coa).toBe('2001:db8:b::2');
    // the BU from there confirms: moved, and from then on the usual rules
    expect(await register(ha, 3, COA_B)).toBe(0);
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:b::2');
    expect(events.map((e) => e.type)).toEqual(['created', 'held', 'released', 'updated', 'moved']);
    expect(await ha.switchHold(g1.id)).toEqual({ switched: false, reason: 'no-hold' }); // once
  });

  it('switching needs a hold that names the next CoA; after the hold ran out a refresh from the old CoA counts again', async () => {
    const dp = new HoldingFake();
    const ha = makeHa(dp);
    await ha.start();
    await register(ha, 1, COA_A);
    expect(await ha.switchHold(g1.id)).toEqual({ switched: false, reason: 'no-hold' });
    await ha.holdForHandover(g1.id, { maxMs: 2000, maxPackets: 100 });
    expect(await ha.switchHold(g1.id)).toEqual({ switched: false, reason: 'no-next-coa' });
    await ha.releaseHold(g1.id);
    await ha.holdForHandover(g1.id, { nextCoa: COA_B, maxMs: 500, maxPackets: 100 });
    expect((await ha.switchHold(g1.id)).switched).toBe(true);
    clock.advance(600); // the new host never registered (its agent died): the old CoA's refresh rules again
    expect(await register(ha, 2, COA_A)).toBe(0);
    expect(dp.routes.get(g1.id)!.coa).toBe('2001:db8:a::2');
  });

  it('forwarded ahead to one host, a move to a third host wins at once', async () => {
    const COA_C = parseIpv6('2001:db8:c::2');
    const dp = new HoldingFake();
    const ha = makeHa(dp);
    await ha.start();
    await register(ha, 1, COA_A);
    await ha.holdForHandover(g1.id, { nextCoa: COA_B, maxMs: 2000, maxPackets: 100 });
    await ha.switchHold(g1.id);
    expect(await register(ha, 2, COA_C)).toBe(0);
    expect(dp.routes.get(g1.id)!.coa).toBe('2001:db8:c::2');
    expect(await register(ha, 3, COA_A)).toBe(0); // and then the usual rules: a move back
    expect(dp.routes.get(g1.id)!.coa).toBe('2001:db8:a::2');
  });
});
