/**
 * The host agent's hypervisor hooks (QEMU): prepare with `arriving` starts the incoming guest
 * and attaches its TAP before the migration; the guest's RESUME registers it at once, and the
 * orchestrator's activate step joins that registration; release discards what is left.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../../src/wire/ipv6.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../../../src/core/home-agent.js';
import { DEFAULT_HA_POLICY } from '../../../src/core/home-agent-policy.js';
import { GUEST_LINK_UP_WAIT_MS, HostAgent } from '../../../src/core/host-agent.js';
import type { GuestRegistryPort, HostGuestRecord } from '../../../src/ports/host.js';
import type { HypervisorHooks, IncomingOptions } from '../../../src/ports/hypervisor.js';
import { FakeClock } from '../../../src/platform/fake/clock.js';
import { FakeHaDataplane, FakeHostDataplane } from '../../../src/platform/fake/dataplane.js';
import { FakeGuestLinks } from '../../../src/platform/fake/guest-links.js';
import { MemoryMobilityState } from '../../../src/platform/fake/mobility-state.js';
import { TestGuestDirectory, testGuest } from '../../helpers/guests.js';

const HA = parseIpv6('2001:db8:1::2');
const g1 = testGuest(1);

class MemoryRegistry implements GuestRegistryPort {
  readonly records = new Map<string, HostGuestRecord>([[g1.id, { ...g1, host: 'host-a' }]]);
  async get(id: string) {
    return this.records.get(id);
  }
  async setHost(id: string, host: string) {
    const r = this.records.get(id);
    if (r) this.records.set(id, { ...r, host });
  }
  async heldBy(host: string) {
    return [...this.records.values()].filter((r) => r.host === host).map((r) => r.id);
  }
}

class FakeHypervisorHooks implements HypervisorHooks {
  readonly calls: string[] = [];
  onResumed: ((at: number) => void) | undefined;
  constructor(private readonly links: FakeGuestLinks) {}
  async prepareIncoming(guest: string, opts?: IncomingOptions) {
    this.calls.push(`prepareIncoming ${guest}`);
    this.links.present.add(guest); // the incoming QEMU's TAP exists now
    this.onResumed = opts?.onResumed;
    return { uri: `unix:/state/${guest}.migrate` };
  }
  async discardGuest(guest: string) {
    this.calls.push(`discardGuest ${guest}`);
  }
}

let clock: FakeClock;
let ha: HomeAgent;
let registry: MemoryRegistry;
let bus: number;

function agent(hostId: string, coa: Ipv6Address) {
  const links = new FakeGuestLinks();
  const hooks = new FakeHypervisorHooks(links);
  const a: HostAgent = new HostAgent(
    { hostId, coa, haAddress: HA, lifetimeSec: 400, initialTimeoutMs: 50, useTimestamp: true },
    {
      registry,
      state: new MemoryMobilityState(),
      links,
      dataplane: new FakeHostDataplane(),
      clock,
      hypervisor: hooks,
      sender: {
        send: (mh, dst, src) => {
          bus++;
          void ha.handle(mh, src, dst).then((reply) => {
            if (reply) a.onMobilityHeader(reply.mh, reply.from);
          });
        },
      },
    },
  );
  return { a, links, hooks };
}

beforeEach(async () => {
  clock = new FakeClock();
  registry = new MemoryRegistry();
  bus = 0;
  ha = new HomeAgent(
    { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')], requireTimestamp: true }, ...DEFAULT_HA_RUNTIME },
    { guests: new TestGuestDirectory([g1]), dataplane: new FakeHaDataplane(), clock },
  );
  await ha.start();
});

describe('host agent with hypervisor hooks', () => {
  it('prepare(arriving) starts the incoming guest and attaches its interface; prepare alone does not', async () => {
    const B = agent('host-b', parseIpv6('2001:db8:b::2'));
    expect(await B.a.prepare(g1.id)).toEqual({ ifname: `fake-${g1.id}` });
    expect(B.hooks.calls).toEqual([]);
    const p = await B.a.prepare(g1.id, { arriving: true });
    expect(p).toEqual({ ifname: `fake-${g1.id}`, incoming: `unix:/state/${g1.id}.migrate` });
    expect(B.links.links.get(g1.id)?.attached).toBe(true);
    expect(ha.cache.get(g1.id)).toBeUndefined(); // no BU before the guest runs here
  });

  it('registers the moment the hypervisor reports the resume; the activate step returns that registration', async () => {
    const B = agent('host-b', parseIpv6('2001:db8:b::2'));
    await B.a.prepare(g1.id, { arriving: true });
    const attachedAt = clock.now();
    clock.advance(500);
    B.hooks.onResumed!(clock.now());
    await B.a.status(); // let the serialised registration run
    await new Promise((r) => setTimeout(r, 10));
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:b::2');
    const sent = bus;
    const act = await B.a.activate(g1.id);
    expect(bus).toBe(sent); // joined: no second BU
    expect(act).toMatchObject({ status: 0, attachedAt });
    expect(registry.records.get(g1.id)?.host).toBe('host-b');
    // a later activate is a real refresh
    clock.advance(1000);
    await B.a.activate(g1.id);
    expect(bus).toBeGreaterThan(sent);
  });

  it('prepare attaches without waiting; the registration waits until the guest link carries packets, then sends the BU', async () => {
    const B = agent('host-b', parseIpv6('2001:db8:b::2'));
    await B.a.prepare(g1.id, { arriving: true });
    expect(B.links.attachCalls).toEqual([{ guest: g1.id, waitUpMs: undefined }]);
    let up!: () => void;
    B.links.linkUp = new Promise<void>((r) => (up = r));
    const sent = bus;
    const act = B.a.activate(g1.id);
    await new Promise((r) => setTimeout(r, 20));
    expect(B.links.attachCalls[1]).toEqual({ guest: g1.id, waitUpMs: GUEST_LINK_UP_WAIT_MS });
    expect(bus).toBe(sent); // no BU while the link is not up: the HA keeps holding the packets
    expect(ha.cache.get(g1.id)).toBeUndefined();
    up();
    expect(await act).toMatchObject({ status: 0 });
    expect(bus).toBeGreaterThan(sent);
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:b::2');
  });

  it('release discards what the hypervisor still holds, after the guest left or a rollback', async () => {
    const A = agent('host-a', parseIpv6('2001:db8:a::2'));
    await A.a.prepare(g1.id, { arriving: true });
    await A.a.release(g1.id);
    expect(A.hooks.calls).toEqual([`prepareIncoming ${g1.id}`, `discardGuest ${g1.id}`]);
    expect(A.links.links.has(g1.id)).toBe(false);
  });
});
