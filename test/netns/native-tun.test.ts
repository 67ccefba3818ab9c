/**
 * TunDevice over the native addon, in one namespace. The device is opened by
 * test/fixtures/tun-peer.mjs (the compiled wrapper from dist/) running inside the
 * namespace, so it is created there; the test configures it with `ip`.
 */
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { parseIpv6 } from '../../src/wire/ipv6.js';
import { canUseNetns, ensureDistBuilt, JsonLineChild, NetnsLab } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEER = fileURLToPath(new URL('../fixtures/tun-peer.mjs', import.meta.url));

const TUN_LOCAL = '2001:db8:5::1'; // the namespace's address on the TUN
const TUN_REMOTE = '2001:db8:5::2'; // a host "behind" the TUN (the test plays it)
const VIA_TUN = '2001:db8:6::9'; // routed out of the TUN

const NH_ICMPV6 = 58;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;

interface PeerError {
  name: string;
  message: string;
  errno: number;
  code: string;
  syscall: string;
  isSystemError: boolean;
}

interface PacketEvent {
  ev: 'packet';
  hex: string;
}

type PeerEvent =
  | { ev: 'ready'; name: string; mode: 'tun' | 'tap' }
  | { ev: 'open-error'; error: PeerError }
  | PacketEvent
  | { ev: 'written' }
  | { ev: 'write-error'; error: PeerError }
  | { ev: 'open-again-ok' }
  | { ev: 'open-again-error'; error: PeerError }
  | { ev: 'closed'; writeError: PeerError | null }
  | { ev: 'close' }
  | { ev: 'error'; error: PeerError }
  | { ev: 'pong' };

const isPacket = (e: PeerEvent): e is PacketEvent => e.ev === 'packet';

/** Matches a packet event carrying an ICMPv6 echo message of `type` (and `id`, if given). */
const isEcho = (type: number, id?: number) => (e: PeerEvent): e is PacketEvent => {
  const m = isPacket(e) ? parseIcmpv6(e.hex) : null;
  return m !== null && m.type === type && (id === undefined || m.id === id);
};

/** One's-complement sum of the IPv6 pseudo-header plus data, folded to 16 bits. */
function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, nextHeader: number, data: Uint8Array): number {
  let sum = 0;
  const words = (bytes: Uint8Array): void => {
    for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  };
  words(src);
  words(dst);
  sum += (data.length >>> 16) + (data.length & 0xffff) + nextHeader;
  words(data);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** An IPv6 packet carrying an ICMPv6 echo message with a correct checksum. */
function icmpv6Echo(src: string, dst: string, type: number, id: number, seq: number, payload: Uint8Array): Buffer {
  const icmp = Buffer.alloc(8 + payload.length);
  icmp.writeUInt8(type, 0);
  icmp.writeUInt16BE(id, 4);
  icmp.writeUInt16BE(seq, 6);
  icmp.set(payload, 8);
  const s = parseIpv6(src);
  const d = parseIpv6(dst);
  icmp.writeUInt16BE(~pseudoHeaderSum(s, d, NH_ICMPV6, icmp) & 0xffff, 2);

  const ip = Buffer.alloc(40);
  ip.writeUInt32BE(0x60000000, 0);
  ip.writeUInt16BE(icmp.length, 4);
  ip.writeUInt8(NH_ICMPV6, 6);
  ip.writeUInt8(64, 7);
  ip.set(s, 8);
  ip.set(d, 24);
  return Buffer.concat([ip, icmp]);
}

interface ParsedIcmpv6 {
  src: Uint8Array;
  dst: Uint8Array;
  type: number;
  id: number;
  seq: number;
  body: Buffer;
}

/** An IPv6 + ICMPv6 echo packet read from the TUN, or null for anything else. */
function parseIcmpv6(hex: string): ParsedIcmpv6 | null {
  const p = Buffer.from(hex, 'hex');
  if (p.length < 48 || p[0]! >> 4 !== 6 || p[6] !== NH_ICMPV6) return null;
  const body = p.subarray(40);
  return {
    src: p.subarray(8, 24),
    dst: p.subarray(24, 40),
    type: body[0]!,
    id: body.readUInt16BE(4),
    seq: body.readUInt16BE(6),
    body,
  };
}

describe.skipIf(!canUseNetns)('TunDevice in a namespace', () => {
  const lab = new NetnsLab('tun');
  const peers: JsonLineChild<PeerEvent>[] = [];

  async function openPeer(name: string, mode: 'tun' | 'tap'): Promise<JsonLineChild<PeerEvent>> {
    const peer = new JsonLineChild<PeerEvent>(lab.spawn('t', process.execPath, [PEER, JSON.stringify({ name, mode })]));
    peers.push(peer);
    const first = await peer.waitForEvent((e) => e.ev === 'ready' || e.ev === 'open-error');
    expect(first).toMatchObject({ ev: 'ready', mode });
    return peer;
  }

  /** Open a TUN, bring it up with TUN_LOCAL/64 and a route to 2001:db8:6::/64. */
  async function openConfiguredTun(name: string): Promise<JsonLineChild<PeerEvent>> {
    const peer = await openPeer(name, 'tun');
    lab.exec('t', 'ip', ['link', 'set', name, 'up']);
    lab.exec('t', 'ip', ['-6', 'addr', 'add', `${TUN_LOCAL}/64`, 'dev', name, 'nodad']);
    lab.exec('t', 'ip', ['-6', 'route', 'add', '2001:db8:6::/64', 'dev', name]);
    return peer;
  }

  beforeAll(() => {
    ensureDistBuilt(ROOT, 'dist/src/platform/linux/tun.js');
    lab.addNs('t');
  });

  afterEach(async () => {
    await Promise.all(peers.map((p) => p.end().catch(() => undefined)));
    peers.length = 0;
  });

  afterAll(async () => {
    await lab.destroy();
  });

  it('a packet written to the TUN reaches the kernel, whose reply is read back', async () => {
    const tun = await openConfiguredTun('r6tun0');
    const payload = Buffer.from('roam6-tun');
    tun.send({ cmd: 'write', hex: icmpv6Echo(TUN_REMOTE, TUN_LOCAL, ICMPV6_ECHO_REQUEST, 0x7236, 1, payload).toString('hex') });
    expect(await tun.waitForEvent((e) => e.ev === 'written' || e.ev === 'write-error')).toEqual({ ev: 'written' });

    // The kernel also sends its own MLD/RS out of a fresh link: pick our reply.
    const reply = await tun.waitForEvent(isEcho(ICMPV6_ECHO_REPLY, 0x7236));
    const m = parseIcmpv6(reply.hex)!;
    expect(m.src).toEqual(Buffer.from(parseIpv6(TUN_LOCAL)));
    expect(m.dst).toEqual(Buffer.from(parseIpv6(TUN_REMOTE)));
    expect(m.seq).toBe(1);
    expect(m.body.subarray(8)).toEqual(payload);
    expect(pseudoHeaderSum(m.src, m.dst, NH_ICMPV6, m.body)).toBe(0xffff);
  });

  it('a ping routed via the TUN shows up as a packet event (IP header first, no PI)', async () => {
    const tun = await openConfiguredTun('r6tun0');
    lab.spawn('t', 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '1', VIA_TUN]);

    const request = await tun.waitForEvent(isEcho(ICMPV6_ECHO_REQUEST));
    const m = parseIcmpv6(request.hex)!;
    expect(m.dst).toEqual(Buffer.from(parseIpv6(VIA_TUN)));
    expect(m.src).toEqual(Buffer.from(parseIpv6(TUN_LOCAL)));
  });

  it('TAP mode delivers Ethernet frames (no PI prefix)', async () => {
    const tap = await openPeer('r6tap0', 'tap');
    lab.exec('t', 'ip', ['link', 'set', 'r6tap0', 'up']);
    // A fresh link sends MLD reports / router solicitations: IPv6 in Ethernet.
    const frame = await tap.waitForEvent(isPacket, 10_000);
    const bytes = Buffer.from(frame.hex, 'hex');
    expect(bytes.readUInt16BE(12)).toBe(0x86dd);
    expect(bytes[14]! >> 4).toBe(6);
  });

  it('an empty name lets the kernel choose; a second open of a busy device fails with EBUSY', async () => {
    const peer = await openPeer('', 'tun');
    const ready = await peer.waitForEvent((e) => e.ev === 'ready');
    expect(ready).toMatchObject({ name: expect.stringMatching(/^tun\d+$/) });

    peer.send({ cmd: 'open-again' });
    const again = await peer.waitForEvent((e) => e.ev === 'open-again-error' || e.ev === 'open-again-ok');
    expect(again).toMatchObject({
      ev: 'open-again-error',
      error: { name: 'SystemError', code: 'EBUSY', errno: -16, syscall: 'ioctl', isSystemError: true },
    });
  });

  it('close stops packet events, frees the device, and is safe to repeat', async () => {
    const tun = await openConfiguredTun('r6tun1');
    tun.send({ cmd: 'close' });
    const closed = await tun.waitForEvent((e) => e.ev === 'closed');
    expect(closed).toMatchObject({ writeError: { code: 'EBADF', syscall: 'write', isSystemError: true } });
    await tun.waitForEvent((e) => e.ev === 'close');

    // The fd is really closed: a non-persistent TUN disappears with it.
    expect(() => lab.exec('t', 'ip', ['link', 'show', 'r6tun1'])).toThrow();

    const before = tun.events.filter(isPacket).length;
    await new Promise((r) => setTimeout(r, 300));
    tun.send({ cmd: 'ping' });
    await tun.waitForEvent((e) => e.ev === 'pong');
    expect(tun.events.filter(isPacket)).toHaveLength(before);
    expect(tun.events.filter((e) => e.ev === 'close')).toHaveLength(1);
  });

  it('deleting the device reports a read error and closes the TunDevice', async () => {
    const tun = await openConfiguredTun('r6tun2');
    lab.exec('t', 'ip', ['link', 'del', 'r6tun2']);
    const failed = await tun.waitForEvent((e) => e.ev === 'error');
    expect(failed).toMatchObject({ error: { code: 'EBADFD', syscall: 'read', isSystemError: true } });
    await tun.waitForEvent((e) => e.ev === 'close');
    tun.send({ cmd: 'ping' });
    await tun.waitForEvent((e) => e.ev === 'pong');
  });
});
