/**
 * RawSocket over the native addon, between two namespaces joined by a veth pair:
 *
 *   a: a0 2001:db8:1::1/64, 2001:db8:1::11/64  <-->  b: b0 2001:db8:1::2/64
 *
 * Each side runs test/fixtures/raw-socket-peer.mjs (the compiled wrapper from dist/),
 * driven by JSON lines.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { loadNative } from '../../src/platform/linux/native.js';
import { RawSocket } from '../../src/platform/linux/raw-socket.js';
import { parseIpv6 } from '../../src/wire/ipv6.js';
import { canUseNetns, ensureDistBuilt, JsonLineChild, NetnsLab } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEER = fileURLToPath(new URL('../fixtures/raw-socket-peer.mjs', import.meta.url));

const A = '2001:db8:1::1';
const A2 = '2001:db8:1::11';
const B = '2001:db8:1::2';

/** Binding Update (A|H|R, seq 0x1234, lifetime 256 units, MNP 2001:db8:100::/48), checksum zero. */
const BU_HEX = '3b03050000001234c40001000612003020010db8010000000000000000000000';
const IPPROTO_MH = 135;
const IPPROTO_ICMPV6 = 58;

interface PeerError {
  name: string;
  message: string;
  errno: number;
  code: string;
  syscall: string;
  isSystemError: boolean;
}

interface MessageEvent {
  ev: 'message';
  hex: string;
  address: string;
  localAddress: string;
  ifindex: number;
  hopLimit: number;
  size: number;
}

type PeerEvent =
  | { ev: 'ready' }
  | { ev: 'open-error'; error: PeerError }
  | MessageEvent
  | { ev: 'sent' }
  | { ev: 'send-error'; error: PeerError }
  | { ev: 'closed'; sendError: PeerError | null }
  | { ev: 'close' }
  | { ev: 'error'; error: PeerError }
  | { ev: 'pong' };

interface PeerConfig {
  protocol: number;
  bindAddress?: string;
  device?: string;
  checksumOffset?: number;
  hopLimit?: number;
  icmp6Filter?: number[];
}

const isMessage = (e: PeerEvent): e is MessageEvent => e.ev === 'message';

/**
 * One's-complement sum (folded to 16 bits) of the RFC 8200 §8.1 pseudo-header (src, dst,
 * upper-layer length, next header) plus the upper-layer data. A packet whose checksum
 * field is filled in correctly sums to 0xffff.
 */
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

describe('RawSocket argument checks (no namespace needed)', () => {
  it('rejects a protocol outside 0..255 before opening anything', () => {
    expect(() => RawSocket.open({ protocol: 256 })).toThrow(expect.objectContaining({
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
    }));
  });
});

describe('ifIndex (if_nametoindex, no rtnetlink)', () => {
  it('resolves lo, answers 0 for an unknown name, and rejects a name longer than IFNAMSIZ', () => {
    const native = loadNative();
    expect(native.ifIndex('lo')).toBe(1);
    expect(native.ifIndex('r6none0')).toBe(0);
    expect(() => native.ifIndex('x'.repeat(16))).toThrow(RangeError);
  });
});

describe.skipIf(!canUseNetns)('RawSocket between namespaces', () => {
  const lab = new NetnsLab('raw');
  const peers: JsonLineChild<PeerEvent>[] = [];
  let bIfindex = 0;

  async function startPeer(role: 'a' | 'b', config: PeerConfig): Promise<JsonLineChild<PeerEvent>> {
    const peer = new JsonLineChild<PeerEvent>(lab.spawn(role, process.execPath, [PEER, JSON.stringify(config)]));
    peers.push(peer);
    await peer.waitForEvent((e) => e.ev === 'ready' || e.ev === 'open-error');
    return peer;
  }

  async function send(peer: JsonLineChild<PeerEvent>, hex: string, dst: string, src?: string): Promise<void> {
    const from = peer.events.length;
    peer.send({ cmd: 'send', hex, dst, src });
    const result = await peer.waitForEvent((e) => e.ev === 'sent' || e.ev === 'send-error', 5000, from);
    expect(result).toEqual({ ev: 'sent' });
  }

  beforeAll(() => {
    ensureDistBuilt(ROOT, 'dist/src/platform/linux/raw-socket.js');
    lab.addNs('a');
    lab.addNs('b');
    lab.link('a', 'a0', `${A}/64`, 'b', 'b0', `${B}/64`);
    lab.exec('a', 'ip', ['-6', 'addr', 'add', `${A2}/64`, 'dev', 'a0', 'nodad']);
    const links = JSON.parse(lab.exec('b', 'ip', ['-j', 'link', 'show', 'b0'])) as { ifindex: number }[];
    bIfindex = links[0]?.ifindex ?? 0;
  });

  afterEach(async () => {
    await Promise.all(peers.map((p) => p.end().catch(() => undefined)));
    peers.length = 0;
  });

  afterAll(async () => {
    await lab.destroy();
  });

  it("ifIndex answers for the caller's namespace", () => {
    const script = `import(${JSON.stringify(`${ROOT}dist/src/platform/linux/native.js`)}).then((m) => { const n = m.loadNative(); console.log(JSON.stringify([n.ifIndex('b0'), n.ifIndex('a0')])); })`;
    expect(JSON.parse(lab.exec('b', process.execPath, ['-e', script]))).toEqual([bIfindex, 0]);
  });

  it('delivers a Mobility Header with source, pktinfo destination and a kernel-filled checksum', async () => {
    const rx = await startPeer('b', { protocol: IPPROTO_MH, bindAddress: B });
    const tx = await startPeer('a', { protocol: IPPROTO_MH, bindAddress: A });
    await send(tx, BU_HEX, B);

    const msg = await rx.waitForEvent(isMessage);
    expect(msg).toMatchObject({ address: A, localAddress: B, ifindex: bIfindex, hopLimit: 64, size: 32 });

    const sent = Buffer.from(BU_HEX, 'hex');
    const got = Buffer.from(msg.hex, 'hex');
    // Everything but the checksum field (offset 4, filled by the kernel) arrives as sent.
    expect(got.subarray(0, 4)).toEqual(sent.subarray(0, 4));
    expect(got.subarray(6)).toEqual(sent.subarray(6));
    expect(got.readUInt16BE(4)).not.toBe(0);
    expect(pseudoHeaderSum(parseIpv6(A), parseIpv6(B), IPPROTO_MH, got)).toBe(0xffff);
  });

  it('pins the source of one datagram with IPV6_PKTINFO', async () => {
    const rx = await startPeer('b', { protocol: IPPROTO_MH, bindAddress: B });
    const tx = await startPeer('a', { protocol: IPPROTO_MH });
    await send(tx, BU_HEX, B, A2);

    const msg = await rx.waitForEvent(isMessage);
    expect(msg).toMatchObject({ address: A2, localAddress: B });
    expect(pseudoHeaderSum(parseIpv6(A2), parseIpv6(B), IPPROTO_MH, Buffer.from(msg.hex, 'hex'))).toBe(0xffff);
  });

  it('checksumOffset -1 turns the kernel MH checksum off on both ends', async () => {
    const rxDefault = await startPeer('b', { protocol: IPPROTO_MH });
    const rxRaw = await startPeer('b', { protocol: IPPROTO_MH, checksumOffset: -1 });
    const txRaw = await startPeer('a', { protocol: IPPROTO_MH, bindAddress: A, checksumOffset: -1 });
    const txDefault = await startPeer('a', { protocol: IPPROTO_MH, bindAddress: A });

    // First a BU left with checksum 0, then a valid one with another sequence number.
    const second = `${BU_HEX.slice(0, 12)}beef${BU_HEX.slice(16)}`;
    await send(txRaw, BU_HEX, B);
    await send(txDefault, second, B);

    // The checksum-off receiver gets both, the zero checksum untouched ...
    await rxRaw.waitForEvent((e) => isMessage(e) && e.hex.slice(12, 16) === 'beef');
    const raw = rxRaw.events.filter(isMessage);
    expect(raw.map((m) => m.hex.slice(12, 16))).toEqual(['1234', 'beef']);
    expect(raw[0]?.hex).toBe(BU_HEX);
    // ... the default receiver (kernel offset 4) silently dropped the bad one.
    await rxDefault.waitForEvent((e) => isMessage(e) && e.hex.slice(12, 16) === 'beef');
    expect(rxDefault.events.filter(isMessage).map((m) => m.hex.slice(12, 16))).toEqual(['beef']);
  });

  it('fails to bind a non-local address with SystemError EADDRNOTAVAIL', async () => {
    const peer = await startPeer('a', { protocol: IPPROTO_MH, bindAddress: '2001:db8:1::dead' });
    const failed = await peer.waitForEvent((e) => e.ev === 'open-error');
    expect(failed).toEqual({
      ev: 'open-error',
      error: {
        name: 'SystemError',
        message: 'bind EADDRNOTAVAIL 2001:db8:1::dead',
        errno: -99,
        code: 'EADDRNOTAVAIL',
        syscall: 'bind',
        isSystemError: true,
      },
    });
  });

  it('receives IPv6-in-IPv6 (proto 41) starting at the inner header, with the outer addresses', async () => {
    const rx = await startPeer('b', { protocol: 41, bindAddress: B });
    const tx = await startPeer('a', { protocol: 41, bindAddress: A });
    // Inner packet: 2001:db8:100::1 -> 2001:db8:200::1, No Next Header, 8 bytes "roam6-41".
    const inner =
      '6000000000083b40' +
      '20010db8010000000000000000000001' +
      '20010db8020000000000000000000001' +
      Buffer.from('roam6-41').toString('hex');
    await send(tx, inner, B);

    const msg = await rx.waitForEvent(isMessage);
    expect(msg).toMatchObject({ hex: inner, address: A, localAddress: B, ifindex: bIfindex, size: 48 });
  });

  it('sends to ff02::1 out of the bound device with hopLimit 255; icmp6Filter passes only the listed types', async () => {
    // ICMPv6 types 200/201 are private experimentation: the kernel itself ignores them.
    const icmp = (type: number, text: string): string =>
      `${type.toString(16)}000000${Buffer.from(text).toString('hex')}`;
    const rx = await startPeer('b', { protocol: IPPROTO_ICMPV6, device: 'b0', icmp6Filter: [200] });
    const tx255 = await startPeer('a', { protocol: IPPROTO_ICMPV6, device: 'a0', hopLimit: 255 });
    const txDefault = await startPeer('a', { protocol: IPPROTO_ICMPV6, device: 'a0' });

    await send(tx255, icmp(201, 'blocked'), 'ff02::1');
    await send(tx255, icmp(200, 'hl-255'), 'ff02::1');
    await send(txDefault, icmp(200, 'hl-default'), 'ff02::1');

    await rx.waitForEvent((e) => isMessage(e) && e.hex.endsWith(Buffer.from('hl-default').toString('hex')));
    const got = rx.events.filter(isMessage);
    const aLinkLocal = (JSON.parse(lab.exec('a', 'ip', ['-j', '-6', 'addr', 'show', 'dev', 'a0'])) as
      { addr_info?: { local: string; scope: string }[] }[])
      .flatMap((l) => l.addr_info ?? []).find((a) => a.scope === 'link')?.local;
    expect(aLinkLocal).toMatch(/^fe80::/);
    // Type 201 never arrived; both type-200 messages did, from a0's link-local address, on b0.
    expect(got.map((m) => Buffer.from(m.hex, 'hex').subarray(4).toString())).toEqual(['hl-255', 'hl-default']);
    for (const m of got) {
      expect(m).toMatchObject({ address: aLinkLocal, localAddress: 'ff02::1', ifindex: bIfindex });
      expect(m.hex.slice(0, 4)).toBe('c800');
    }
    // hopLimit sets the multicast hop limit; the kernel default for multicast is 1.
    expect(got.map((m) => m.hopLimit)).toEqual([255, 1]);
  });

  it('rejects a hopLimit outside 1..255 and icmp6Filter on a non-ICMPv6 socket', async () => {
    expect(() => RawSocket.open({ protocol: IPPROTO_ICMPV6, hopLimit: 256 })).toThrow(expect.objectContaining({
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
    }));
    const peer = await startPeer('a', { protocol: IPPROTO_MH, icmp6Filter: [133] });
    const failed = await peer.waitForEvent((e) => e.ev === 'open-error');
    expect(failed).toMatchObject({ error: { name: 'SystemError', errno: -95, syscall: 'setsockopt', message: 'setsockopt ENOTSUP ICMP6_FILTER' } });
  });

  it('stops delivering after close; double close is a no-op; send after close throws EBADF', async () => {
    const rx = await startPeer('b', { protocol: IPPROTO_MH, bindAddress: B });
    const tx = await startPeer('a', { protocol: IPPROTO_MH, bindAddress: A });
    await send(tx, BU_HEX, B);
    await rx.waitForEvent(isMessage);

    rx.send({ cmd: 'close' });
    const closed = await rx.waitForEvent((e) => e.ev === 'closed');
    expect(closed).toMatchObject({ sendError: { name: 'SystemError', code: 'EBADF', syscall: 'sendmsg', isSystemError: true } });
    await rx.waitForEvent((e) => e.ev === 'close');

    await send(tx, `${BU_HEX.slice(0, 12)}beef${BU_HEX.slice(16)}`, B);
    await new Promise((r) => setTimeout(r, 300));
    rx.send({ cmd: 'ping' });
    await rx.waitForEvent((e) => e.ev === 'pong');
    expect(rx.events.filter(isMessage)).toHaveLength(1);
    expect(rx.events.filter((e) => e.ev === 'close')).toHaveLength(1);
    expect(rx.events.filter((e) => e.ev === 'error')).toHaveLength(0);
  });

  it('unref() lets the process exit while the socket is open; ref() keeps it alive', () => {
    const script = (call: string): string =>
      `const { RawSocket } = await import(${JSON.stringify(new URL('dist/src/platform/linux/raw-socket.js', `file://${ROOT}`).href)});` +
      `RawSocket.open({ protocol: ${IPPROTO_MH} })${call};`;
    const run = (call: string) =>
      spawnSync('ip', ['netns', 'exec', lab.ns('a'), process.execPath, '--input-type=module', '-e', script(call)], {
        timeout: 1500,
        encoding: 'utf8',
      });

    const unrefd = run('.unref()');
    expect(unrefd.stderr).toBe('');
    expect(unrefd.status).toBe(0);

    const refd = run('');
    expect(refd.signal).toBe('SIGTERM'); // still running when the timeout hit
  });
});
