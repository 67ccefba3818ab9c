/** The host agent's move operations against the real HA logic, with fake links and data planes. */
import { beforeEach, describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../../src/wire/ipv6.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../../../src/core/home-agent.js';
import { DEFAULT_HA_POLICY } from '../../../src/core/home-agent-policy.js';
import { HostAgent, GuestUnknownError } from '../../../src/core/host-agent.js';
import type { HypervisorHooks } from '../../../src/ports/hypervisor.js';
import type { GuestRegistryPort, HostGuestRecord } from '../../../src/ports/host.js';
import { FakeClock } from '../../../src/platform/fake/clock.js';
import { FakeHaDataplane, FakeHostDataplane } from '../../../src/platform/fake/dataplane.js';
import { FakeGuestLinks } from '../../../src/platform/fake/guest-links.js';
import { MemoryMobilityState } from '../../../src/platform/fake/mobility-state.js';
import { TestGuestDirectory, testGuest } from '../../helpers/guests.js';

const HA = parseIpv6('2001:db8:1::2');
const g1 = testGuest(1);
const g2 = testGuest(2);

class MemoryRegistry implements GuestRegistryPort {
  readonly records = new Map<string, HostGuestRecord>([[g1.id, g1], [g2.id, g2]]);
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

let clock: FakeClock;
let ha: HomeAgent;
let registry: MemoryRegistry;
let state: MemoryMobilityState;

function agent(hostId: string, coa: Ipv6Address, hypervisor?: HypervisorHooks) {
  const links = new FakeGuestLinks();
  const dataplane = new FakeHostDataplane();
  const a: HostAgent = new HostAgent(
    { hostId, coa, haAddress: HA, lifetimeSec: 400, initialTimeoutMs: 50, useTimestamp: true },
    {
      registry,
      state,
      links,
      dataplane,
      clock,
      ...(hypervisor ? { hypervisor } : {}),
      sender: {
        send: (mh, dst, src) =>
          void ha.handle(mh, src, dst).then((reply) => {
            if (reply) a.onMobilityHeader(reply.mh, reply.from);
          }),
      },
    },
  );
  return { a, links, dataplane };
}

beforeEach(async () => {
  clock = new FakeClock();
  registry = new MemoryRegistry();
  state = new MemoryMobilityState();
  ha = new HomeAgent(
    { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')], requireTimestamp: true }, ...DEFAULT_HA_RUNTIME },
    { guests: new TestGuestDirectory([g1, g2]), dataplane: new FakeHaDataplane(), clock },
  );
  await ha.start();
});

describe('host agent move operations', () => {
  it('prepare builds link and routes without registering; activate registers in one round trip', async () => {
    const A = agent('host-a', parseIpv6('2001:db8:a::2'));
    await A.a.start();
    await A.a.prepare(g1.id);
    expect(A.links.links.has(g1.id)).toBe(true);
    expect(A.dataplane.guests.get(g1.id)).toEqual({ prefixes: ['2001:db8:100:1::/64'], ifname: `fake-${g1.id}` });
    expect(ha.cache.get(g1.id)).toBeUndefined();

    const reg = await A.a.activate(g1.id);
    expect(reg).toMatchObject({ status: 0, attempts: 1 });
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:a::2');
    expect(registry.records.get(g1.id)?.host).toBe('host-a');
    expect(A.links.links.get(g1.id)?.announced).toBe(1);
  });

  it('moves a guest A → B make-before-break: prepare B, activate B, release A; the old host cannot win', async () => {
    const A = agent('host-a', parseIpv6('2001:db8:a::2'));
    const B = agent('host-b', parseIpv6('2001:db8:b::2'));
    await A.a.activate(g1.id);
    await B.a.prepare(g1.id);
    await B.a.activate(g1.id);
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:b::2');
    await A.a.release(g1.id);
    expect(A.dataplane.guests.has(g1.id)).toBe(false);
    expect(A.links.links.has(g1.id)).toBe(false);
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:b::2');
    expect(ha.cache.get(g1.id)?.history?.map((h) => `${h.from}>${h.to}`)).toEqual(['2001:db8:a::2>2001:db8:b::2']);
    expect(registry.records.get(g1.id)?.host).toBe('host-b');
  });

  it('operations are idempotent', async () => {
    const A = agent('host-a', parseIpv6('2001:db8:a::2'));
    await A.a.prepare(g1.id);
    await A.a.prepare(g1.id);
    await A.a.activate(g1.id);
    await A.a.activate(g1.id);
    await A.a.release(g1.id);
    await A.a.release(g1.id);
    expect(A.a.status()).toEqual([]);
  });

  it('adopts the guests the registry says it holds, at start', async () => {
    registry.records.set(g2.id, { ...g2, host: 'host-a' });
    const A = agent('host-a', parseIpv6('2001:db8:a::2'));
    expect(await A.a.start()).toEqual({ adopted: [g2.id], failed: [], gone: [] });
    expect(ha.cache.get(g2.id)?.coa).toBe('2001:db8:a::2');
  });

  it('does not adopt a guest the hypervisor no longer runs here (it died mid-migration): no BU pulls it back', async () => {
    registry.records.set(g1.id, { ...g1, host: 'host-a' });
    registry.records.set(g2.id, { ...g2, host: 'host-a' });
    const B = agent('host-b', parseIpv6('2001:db8:b::2'));
    await B.a.activate(g1.id); // g1 already runs on host-b; the registry still names host-a
    registry.records.set(g1.id, { ...g1, host: 'host-a' });
    const A = agent('host-a', parseIpv6('2001:db8:a::2'), { runsHere: async (g) => g === g2.id });
    expect(await A.a.start()).toEqual({ adopted: [g2.id], failed: [], gone: [g1.id] });
    expect(ha.cache.get(g1.id)?.coa).toBe('2001:db8:b::2');
    expect(A.links.links.has(g1.id)).toBe(false);
  });

  it('an unknown guest is a clear error; another guest is unaffected', async () => {
    const A = agent('host-a', parseIpv6('2001:db8:a::2'));
    await expect(A.a.prepare('nobody@x')).rejects.toBeInstanceOf(GuestUnknownError);
    await expect(A.a.activate(g1.id)).resolves.toMatchObject({ status: 0 });
  });
});
