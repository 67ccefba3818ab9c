/**
 * RaSender's timing and error handling, on a fake clock and a fake socket (no kernel): what
 * is sent when, answers to Router Solicitations, rate limiting, the announce rounds, and the
 * "link has no carrier yet" case the kernel reports as ENETUNREACH.
 */
import { describe, expect, it } from 'vitest';

import { guestLinkIdentity } from '../../../src/core/guest-link-identity.js';
import { FakeClock } from '../../../src/platform/fake/clock.js';
import { RaSender, RaSenderError, type NdSocket, type NdSocketHandlers } from '../../../src/platform/linux/ra-sender.js';
import { formatIpv6, parseIpv6, parsePrefix, type Ipv6Address } from '../../../src/wire/ipv6.js';
import { decodeNdMessage, encodeNdMessage, Icmpv6Type, NdOptionType, type NdMessage } from '../../../src/wire/nd.js';
import { GuestRaConfigError } from '../../../src/core/guest-router-advertisement.js';

const id = guestLinkIdentity('g1@example.net');
const MNP = parsePrefix('2001:db8:100::/64');
const GUEST_LL = parseIpv6('fe80::e807:ddff:fed1:74c7');

interface Sent { at: number; msg: NdMessage; dst: string; src: string }

/** A socket that records sends and can be told to fail; `deliver` plays a received packet. */
class FakeNet {
  readonly sent: Sent[] = [];
  opened = 0;
  closed = 0;
  failWith: string | null = null;
  openFails: string | null = null;
  handlers: NdSocketHandlers | null = null;
  constructor(private readonly clock: FakeClock) {}

  open = (device: string, handlers: NdSocketHandlers): NdSocket => {
    if (this.openFails) throw Object.assign(new Error(`setsockopt ${this.openFails} SO_BINDTODEVICE ${device}`), { code: this.openFails });
    this.opened++;
    this.handlers = handlers;
    return {
      send: (msg: Uint8Array, dst: Ipv6Address, src: Ipv6Address) => {
        if (this.failWith) throw Object.assign(new Error(`sendmsg ${this.failWith}`), { code: this.failWith });
        const d = decodeNdMessage(msg);
        if (!d.ok) throw d.error;
        this.sent.push({ at: this.clock.now(), msg: d.value, dst: formatIpv6(dst), src: formatIpv6(src) });
      },
      close: () => { this.closed++; },
    };
  };

  rs(hopLimit = 255, src: Ipv6Address = GUEST_LL): void {
    const bytes = encodeNdMessage({ type: Icmpv6Type.RouterSolicitation, options: [] });
    this.handlers?.message(bytes, { address: src, localAddress: parseIpv6('ff02::2'), hopLimit });
  }

  ras(): Sent[] { return this.sent.filter((s) => s.msg.type === Icmpv6Type.RouterAdvertisement); }
  nas(): Sent[] { return this.sent.filter((s) => s.msg.type === Icmpv6Type.NeighborAdvertisement); }
}

function setup(extra: Partial<Parameters<typeof RaSender.start>[0]> = {}) {
  const clock = new FakeClock(0);
  const net = new FakeNet(clock);
  const ra = RaSender.start({ identity: id, prefixes: [MNP], clock, random: () => 0.5, openSocket: net.open, ...extra });
  return { clock, net, ra };
}

describe('RaSender', () => {
  it('sends a first RA at once, from the derived link-local address to ff02::1', () => {
    const { net, ra } = setup();
    expect(net.ras()).toHaveLength(1);
    expect(net.sent[0]).toMatchObject({ at: 0, dst: 'ff02::1', src: 'fe80::d7:31ff:febe:cdc4' });
    const first = net.sent[0]!.msg;
    expect(first.type === Icmpv6Type.RouterAdvertisement && first.options.map((o) => o.type))
      .toEqual([NdOptionType.SourceLinkLayerAddress, NdOptionType.Mtu, NdOptionType.PrefixInformation]);
    expect(ra.stats).toMatchObject({ rasSent: 1, sendErrors: 0 });
    ra.stop();
  });

  it('repeats every MinRtrAdvInterval + random × (Max − Min)', () => {
    const { clock, net, ra } = setup({ timing: { minIntervalMs: 1000, maxIntervalMs: 3000 } });
    clock.advance(10_000);
    expect(net.ras().map((s) => s.at)).toEqual([0, 2000, 4000, 6000, 8000, 10_000]);
    ra.stop();
  });

  it('answers a Router Solicitation at once and restarts the periodic timer', () => {
    const { clock, net, ra } = setup();
    clock.advance(1000);
    net.rs();
    expect(net.ras().map((s) => s.at)).toEqual([0, 1000]);
    clock.advance(6499);
    expect(net.ras()).toHaveLength(2);
    clock.advance(1);
    expect(net.ras().map((s) => s.at)).toEqual([0, 1000, 7500]);
    expect(ra.stats.solicitations).toBe(1);
    ra.stop();
  });

  it('rate-limits answers to one per MinDelayBetweenRAs, and owes one answer at most', () => {
    const { clock, net, ra } = setup({ timing: { minDelayBetweenRasMs: 100 } });
    for (let i = 0; i < 10; i++) { net.rs(); clock.advance(10); }
    clock.advance(200);
    expect(net.ras().map((s) => s.at)).toEqual([0, 100]);
    expect(ra.stats.solicitations).toBe(10);
    ra.stop();
  });

  it('drops solicitations with a hop limit other than 255, or malformed ones', () => {
    const { net, ra } = setup();
    net.rs(64);
    net.handlers?.message(Uint8Array.of(133, 0, 0, 0), { address: GUEST_LL, localAddress: parseIpv6('ff02::2'), hopLimit: 255 });
    expect(net.ras()).toHaveLength(1);
    expect(ra.stats.dropped).toBe(2);
    ra.stop();
  });

  it('announce(): RA + an NA per gateway address, now and at each repeat', () => {
    const { clock, net, ra } = setup({ announceRepeatsMs: [100, 300] });
    clock.advance(50);
    expect(ra.announce()).toBe('sent');
    clock.advance(1000);
    expect(net.ras().map((s) => s.at)).toEqual([0, 50, 150, 350]);
    const nas = net.nas();
    expect(nas.map((s) => s.at)).toEqual([50, 50, 150, 150, 350, 350]);
    expect(nas.slice(0, 2).map((s) => s.msg.type === Icmpv6Type.NeighborAdvertisement && formatIpv6(s.msg.target)))
      .toEqual(['fe80::d7:31ff:febe:cdc4', '2001:db8:100::1']);
    const na = nas[0]!.msg;
    expect(na.type === Icmpv6Type.NeighborAdvertisement && na.flags).toEqual({ router: true, solicited: false, override: true });
    ra.stop();
  });

  it('a link without carrier (ENETUNREACH) is normal: counted, never thrown; an RS answer is retried', () => {
    const clock = new FakeClock(0);
    const net = new FakeNet(clock);
    net.failWith = 'ENETUNREACH';
    const ra = RaSender.start({ identity: id, prefixes: [MNP], clock, random: () => 0.5, openSocket: net.open });
    clock.advance(1000);
    net.rs();
    clock.advance(250);
    net.failWith = null; // the carrier came up
    clock.advance(100);
    expect(net.ras().map((s) => s.at)).toEqual([1300]); // retried every 100 ms until it went out
    expect(ra.stats).toMatchObject({ linkDown: 4, sendErrors: 0, rasSent: 1 });
    ra.stop();
  });

  it('announce() on a link without carrier yet: the later rounds get through', () => {
    const clock = new FakeClock(0);
    const net = new FakeNet(clock);
    net.failWith = 'ENETUNREACH';
    const ra = RaSender.start({ identity: id, prefixes: [MNP], clock, random: () => 0.5, openSocket: net.open });
    expect(ra.announce()).toBe('link-down');
    clock.advance(500);
    net.failWith = null;
    clock.advance(2000);
    expect(net.ras().map((s) => s.at)).toEqual([700, 1500]);
    expect(net.nas().map((s) => s.at)).toEqual([700, 700, 1500, 1500]);
    ra.stop();
  });

  it('reopens the socket after the device went away (ENODEV)', () => {
    const { clock, net, ra } = setup();
    net.failWith = 'ENODEV';
    clock.advance(6500);
    expect(net.closed).toBe(1);
    expect(ra.stats.sendErrors).toBe(1);
    net.failWith = null;
    clock.advance(6500);
    expect(net.opened).toBe(2);
    expect(net.ras()).toHaveLength(2);
    ra.stop();
  });

  it('start() and announce() throw RaSenderError when the socket cannot be opened', () => {
    const clock = new FakeClock(0);
    const net = new FakeNet(clock);
    net.openFails = 'ENODEV';
    expect(() => RaSender.start({ identity: id, prefixes: [MNP], clock, openSocket: net.open })).toThrow(RaSenderError);
  });

  it('refuses timing the RFCs forbid', () => {
    expect(() => setup({ timing: { minIntervalMs: 9000, maxIntervalMs: 10_000 } })).toThrow(GuestRaConfigError);
    expect(() => setup({ announceRepeatsMs: [0] })).toThrow(GuestRaConfigError);
  });

  it('setPrefixes() advertises the new set at once; stop() cancels everything and closes', () => {
    const { clock, net, ra } = setup();
    ra.setPrefixes([MNP, parsePrefix('2001:db8:101::/64')]);
    const last = net.ras().at(-1)!.msg;
    expect(last.type === Icmpv6Type.RouterAdvertisement && last.options.filter((o) => o.type === NdOptionType.PrefixInformation)).toHaveLength(2);
    expect(ra.gatewayAddresses.map(formatIpv6)).toEqual(['fe80::d7:31ff:febe:cdc4', '2001:db8:100::1', '2001:db8:101::1']);
    ra.announce();
    ra.stop();
    ra.stop();
    const count = net.sent.length;
    clock.advance(60_000);
    expect(net.sent.length).toBe(count);
    expect(net.closed).toBe(1);
    expect(() => ra.announce()).toThrow(RaSenderError);
  });
});
