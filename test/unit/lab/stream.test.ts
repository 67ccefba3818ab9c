import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { streamGaps } from '../../../src/lab/analysis.js';
import {
  decodeStreamPacket,
  dueSlots,
  encodeStreamPacket,
  formatArrival,
  packetIntervalMs,
  parseArrivals,
  readArrivals,
  receiveStream,
  sendStream,
  STREAM_HEADER_LENGTH,
} from '../../../src/lab/stream.js';
import { parseTrafficSamples, readInterfaceCounters, readTrafficSamples, runTrafficSampler } from '../../../src/lab/traffic-sampler.js';

const dir = mkdtempSync(join(tmpdir(), 'r6lab-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stream packet', () => {
  it('has the documented layout', () => {
    const b = encodeStreamPacket({ streamId: 0x01020304, seq: 0xfffffffe, sentAt: 1.5 }, 32);
    expect(b.length).toBe(32);
    expect(Buffer.from(b).toString('hex')).toBe(
      '52365354' + '01' + '00' + '0018' + '01020304' + 'fffffffe' + '3ff8000000000000' + '0000000000000000',
    );
  });

  it('round-trips and rejects what is not a stream packet', () => {
    const p = { streamId: 7, seq: 123456, sentAt: 1_760_000_000_123.456 };
    expect(decodeStreamPacket(encodeStreamPacket(p, 1400))).toEqual(p);
    expect(decodeStreamPacket(encodeStreamPacket(p, STREAM_HEADER_LENGTH))).toEqual(p);
    const bad = encodeStreamPacket(p, 100);
    bad[0] = 0;
    expect(decodeStreamPacket(bad)).toBeNull();
    expect(decodeStreamPacket(new Uint8Array(23))).toBeNull();
    const v2 = encodeStreamPacket(p, 100);
    v2[4] = 2;
    expect(decodeStreamPacket(v2)).toBeNull();
    expect(() => encodeStreamPacket(p, 23)).toThrow(RangeError);
  });

  it('paces 1400-byte packets at 520 kbit/s about 46 per second', () => {
    expect(packetIntervalMs(1400, 520)).toBeCloseTo(21.538, 3);
    expect(1000 / packetIntervalMs(1400, 520)).toBeCloseTo(46.43, 2);
  });
});

describe('dueSlots (drift-free schedule)', () => {
  it('sends what is due by the clock, never accumulating timer lateness', () => {
    // start 1000, interval 10: slot i is due at 1000 + 10 i
    expect(dueSlots(1000, 10, 0, 1000, 8)).toEqual({ due: 1, send: 1, skipped: 0, nextSlot: 1 });
    expect(dueSlots(1000, 10, 1, 1009.9, 8)).toEqual({ due: 0, send: 0, skipped: 0, nextSlot: 1 }); // early wake-up
    expect(dueSlots(1000, 10, 1, 1013, 8)).toEqual({ due: 1, send: 1, skipped: 0, nextSlot: 2 }); // 3 ms late…
    expect(dueSlots(1000, 10, 2, 1020.5, 8)).toEqual({ due: 1, send: 1, skipped: 0, nextSlot: 3 }); // …and back on the grid
    expect(dueSlots(1000, 10, 3, 1055, 8)).toEqual({ due: 3, send: 3, skipped: 0, nextSlot: 6 }); // catch up
    expect(dueSlots(1000, 10, 6, 1200, 8)).toEqual({ due: 15, send: 8, skipped: 7, nextSlot: 21 }); // stalled: cap the burst
  });
});

describe('arrival log', () => {
  it('formats one JSON line per packet and parses it back, tolerating a torn last line', () => {
    const a = { stream: 1, seq: 3, sentAt: 1_760_000_000_000.1234, recvAt: 1_760_000_000_000.5678 };
    const line = formatArrival(a);
    expect(JSON.parse(line)).toEqual({ stream: 1, seq: 3, sentAt: 1_760_000_000_000.123, recvAt: 1_760_000_000_000.568 });
    const text = `${line}\n\n${formatArrival({ seq: 4, sentAt: 1, recvAt: 2 })}\n{"seq":5,"sen`;
    expect(parseArrivals(text).map((x) => x.seq)).toEqual([3, 4]);
    expect(() => parseArrivals('{"seq":1}\n{"seq":2,"sentAt":1,"recvAt":2}\n')).toThrow(/line 1/);
    expect(() => parseArrivals('nope\n{"seq":2,"sentAt":1,"recvAt":2}\n')).toThrow(/line 1/);
  });
});

describe('sender and receiver on loopback', () => {
  it('delivers a counted stream in order, logged per packet', async () => {
    const out = join(dir, 'arrivals.jsonl');
    const ac = new AbortController();
    let port = 0;
    const recv = receiveStream({ port: 0, bind: '::1', out, streamId: 9, onListening: (a) => { port = a.port; } }, ac.signal);
    while (port === 0) await new Promise((r) => setTimeout(r, 5));
    // 200 B at 800 kbit/s = one packet every 2 ms
    const sent = await sendStream({ to: '::1', port, rateKbit: 800, size: 200, count: 50, streamId: 9 });
    expect(sent).toMatchObject({ sent: 50, sendErrors: 0, skippedSlots: 0, streamId: 9, intervalMs: 2 });
    // ~98 ms of schedule; allow for a slow machine but not for accumulated drift
    expect(sent.endedAt - sent.startedAt).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    const summary = await recv;
    expect(summary).toMatchObject({ received: 50, ignored: 0, firstSeq: 0, lastSeq: 49 });
    const arrivals = readArrivals(out);
    expect(arrivals.map((a) => a.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(arrivals.every((a) => a.stream === 9 && a.recvAt >= a.sentAt - 1)).toBe(true);
    expect(streamGaps(arrivals, { sent: 50 })).toMatchObject({ lost: 0, duplicates: 0, intervalMs: expect.closeTo(2, 0) });
  });

  it('ignores other streams and stops after --count', async () => {
    const out = join(dir, 'count.jsonl');
    let port = 0;
    const recv = receiveStream({ port: 0, bind: '::1', out, streamId: 2, count: 5, onListening: (a) => { port = a.port; } });
    while (port === 0) await new Promise((r) => setTimeout(r, 5));
    await sendStream({ to: '::1', port, rateKbit: 800, size: 100, count: 5, streamId: 1 });
    await sendStream({ to: '::1', port, rateKbit: 800, size: 100, count: 8, streamId: 2 });
    const s = await recv;
    expect(s.received).toBe(5);
    expect(s.ignored).toBe(5);
    expect(readArrivals(out)).toHaveLength(5);
  });

  it('rejects bad options', async () => {
    await expect(sendStream({ to: 'not-an-ip', port: 9, rateKbit: 1 })).rejects.toThrow(RangeError);
    await expect(sendStream({ to: '::1', port: 9, rateKbit: 0 })).rejects.toThrow(RangeError);
    await expect(sendStream({ to: '::1', port: 9, rateKbit: 1, size: 9000 })).rejects.toThrow(RangeError);
  });
});

describe('traffic sampler', () => {
  function fakeSys(root: string, iface: string, c: { tx: number; rx: number }): void {
    const d = join(root, iface, 'statistics');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'tx_packets'), `${c.tx}\n`);
    writeFileSync(join(d, 'tx_bytes'), `${c.tx * 1000}\n`);
    writeFileSync(join(d, 'rx_packets'), `${c.rx}\n`);
    writeFileSync(join(d, 'rx_bytes'), `${c.rx * 1000}\n`);
  }

  it('reads the four counters, or null for a missing interface', () => {
    const sys = join(dir, 'sys1');
    fakeSys(sys, 'veth0', { tx: 3, rx: 4 });
    expect(readInterfaceCounters('veth0', sys)).toEqual({ txPackets: 3, txBytes: 3000, rxPackets: 4, rxBytes: 4000 });
    expect(readInterfaceCounters('nope0', sys)).toBeNull();
    expect(() => readInterfaceCounters('../etc', sys)).toThrow(RangeError);
    // the real loopback exists in every namespace
    expect(readInterfaceCounters('lo')).not.toBeNull();
  });

  it('logs samples on schedule, skipping an interface while it is missing', async () => {
    const sys = join(dir, 'sys2');
    fakeSys(sys, 'a0', { tx: 1, rx: 0 });
    const out = join(dir, 'samples.jsonl');
    const s = await runTrafficSampler({ ifaces: ['a0', 'b0'], intervalMs: 20, out, durationSec: 0.2, label: 'host-a', sysClassNet: sys });
    expect(s.rounds).toBeGreaterThanOrEqual(8);
    expect(s.missing.b0).toBe(s.rounds);
    const samples = readTrafficSamples(out);
    expect(samples.length).toBe(s.samples);
    expect(samples[0]).toMatchObject({ iface: 'a0', label: 'host-a', txPackets: 1, txBytes: 1000, rxPackets: 0, rxBytes: 0 });
    const steps = samples.slice(1).map((x, i) => x.t - (samples[i]?.t ?? 0));
    // drift-free grid: no interval is far off 20 ms except the final extra sample
    expect(steps.slice(0, -1).every((d) => d > 5 && d < 60)).toBe(true);
    expect(parseTrafficSamples('{"t":1,"iface":"x","txPackets":1,"txBytes":1,"rxPackets":1,"rxBytes":1}\n{"t":')).toHaveLength(1);
  });
});
