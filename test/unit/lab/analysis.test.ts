import { describe, expect, it } from 'vitest';

import {
  binTraffic,
  estimateIntervalMs,
  gapsPerMigration,
  mobilityAddedGap,
  quantile,
  streamGaps,
  trafficPoints,
  type Arrival,
  type TrafficSample,
} from '../../../src/lab/analysis.js';

const T0 = 1_700_000_000_000;
const IV = 20; // ms between packets in these synthetic streams

/** A steady stream seq 0…n-1, sent every IV ms, arriving `delay` ms later, minus `drop`. */
function stream(n: number, opts: { drop?: (seq: number) => boolean; delay?: (seq: number) => number } = {}): Arrival[] {
  const out: Arrival[] = [];
  for (let seq = 0; seq < n; seq++) {
    if (opts.drop?.(seq)) continue;
    const sentAt = T0 + seq * IV;
    out.push({ seq, sentAt, recvAt: sentAt + (opts.delay?.(seq) ?? 1) });
  }
  return out;
}

describe('quantile', () => {
  it('interpolates between ranks and ignores order', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([7], 0.5)).toBe(7);
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 1)).toBe(4);
    expect(quantile([1, 2, 3, 4], 0)).toBe(1);
    expect(quantile([5, Infinity], 1)).toBe(Infinity);
  });
});

describe('streamGaps', () => {
  it('finds nothing in a clean stream and estimates the interval', () => {
    const a = stream(100);
    expect(estimateIntervalMs(a)).toBe(IV);
    const r = streamGaps(a);
    expect(r).toMatchObject({ intervalMs: IV, thresholdMs: 3 * IV, gaps: [], received: 100, unique: 100, duplicates: 0, outOfOrder: 0, lost: 0, firstSeq: 0, lastSeq: 99 });
  });

  it('reports one gap with its bounds and the sequence numbers lost in it', () => {
    // seqs 40…64 lost: 25 packets, silence from seq 39 to seq 65 = 26 intervals
    const r = streamGaps(stream(100, { drop: (s) => s >= 40 && s < 65 }), { intervalMs: IV });
    expect(r.gaps).toEqual([
      { startsAt: T0 + 39 * IV + 1, endsAt: T0 + 65 * IV + 1, gapMs: 26 * IV, lastSeqBefore: 39, firstSeqAfter: 65, lostSeqs: 25, reordered: false },
    ]);
    expect(r.lost).toBe(25);
  });

  it('applies the k × interval threshold', () => {
    // two lost packets = a 60 ms silence: a gap at k = 2, not at k = 3
    const a = stream(50, { drop: (s) => s === 10 || s === 11 });
    expect(streamGaps(a, { intervalMs: IV, k: 3 }).gaps).toHaveLength(0);
    expect(streamGaps(a, { intervalMs: IV, k: 2 }).gaps).toHaveLength(1);
    expect(streamGaps(a, { intervalMs: IV }).lost).toBe(2);
  });

  it('counts duplicates once and measures silences between first copies', () => {
    const a = stream(20);
    a.push({ ...(a[5] as Arrival), recvAt: (a[5] as Arrival).recvAt + 3 });
    a.push({ ...(a[6] as Arrival), recvAt: T0 + 10_000 }); // a very late copy: not a resumption
    const r = streamGaps(a, { intervalMs: IV });
    expect(r.duplicates).toBe(2);
    expect(r.received).toBe(22);
    expect(r.unique).toBe(20);
    expect(r.gaps).toHaveLength(0);
  });

  it('flags reordering around a gap, and a packet that arrives late is not lost', () => {
    // seqs 30…39 delayed by 300 ms (they arrive after 40…); nothing is lost
    const a = stream(60, { delay: (s) => (s >= 30 && s < 40 ? 300 : 1) });
    const r = streamGaps(a, { intervalMs: IV });
    expect(r.lost).toBe(0);
    expect(r.outOfOrder).toBe(10);
    expect(r.gaps.length).toBeGreaterThan(0);
    for (const g of r.gaps) expect(g.lostSeqs).toBe(0);
  });

  it('marks a gap after which an older packet arrives first as reordered', () => {
    const a: Arrival[] = [
      { seq: 0, sentAt: T0, recvAt: T0 + 1 },
      { seq: 1, sentAt: T0 + 20, recvAt: T0 + 21 },
      { seq: 5, sentAt: T0 + 100, recvAt: T0 + 101 },
      // silence of 300 ms, then seq 3 (lower than 5) arrives
      { seq: 3, sentAt: T0 + 60, recvAt: T0 + 401 },
      { seq: 6, sentAt: T0 + 120, recvAt: T0 + 402 },
    ];
    const r = streamGaps(a, { intervalMs: IV });
    expect(r.gaps).toEqual([
      // 1 → 5 (80 ms): 2 and 4 missing, 3 arrives elsewhere, so this is reordering too
      expect.objectContaining({ lastSeqBefore: 1, firstSeqAfter: 5, lostSeqs: 2, reordered: true, gapMs: 80 }),
      expect.objectContaining({ lastSeqBefore: 5, firstSeqAfter: 3, lostSeqs: 1, reordered: true, gapMs: 300 }),
    ]);
    // 2 and 4 never arrived
    expect(r.lost).toBe(2);
    expect(r.outOfOrder).toBe(1);
  });

  it('counts head and tail losses when the sender count is known', () => {
    const a = stream(100, { drop: (s) => s < 3 || s >= 95 });
    expect(streamGaps(a, { intervalMs: IV }).lost).toBe(0);
    expect(streamGaps(a, { intervalMs: IV, sent: 100 }).lost).toBe(8);
  });

  it('handles empty and one-packet logs', () => {
    expect(streamGaps([], { intervalMs: IV })).toMatchObject({ gaps: [], lost: 0, unique: 0, firstSeq: null, lastSeq: null });
    expect(streamGaps([], { intervalMs: IV, sent: 10 }).lost).toBe(10);
    expect(streamGaps([{ seq: 0, sentAt: T0, recvAt: T0 }]).intervalMs).toBe(0);
    expect(() => streamGaps([], { intervalMs: 0 })).toThrow(RangeError);
  });
});

describe('gapsPerMigration', () => {
  // 60 s of stream; migrations at 10 s (gap 6 s, the paper), 30 s (gap 100 ms), 50 s (no disruption)
  const lostA = (s: number): boolean => s * IV >= 10_000 && s * IV < 16_000;
  const lostB = (s: number): boolean => s * IV >= 30_000 && s * IV < 30_100;
  const arrivals = stream(3000, { drop: (s) => lostA(s) || lostB(s) });
  const migrations = [
    { startedAt: T0 + 9_800, endedAt: T0 + 10_200 },
    { startedAt: T0 + 29_900, endedAt: T0 + 30_050 },
    { startedAt: T0 + 49_900, endedAt: T0 + 50_100 },
  ];

  it('finds the largest silence around each migration and the packets lost', () => {
    const r = gapsPerMigration(arrivals, migrations);
    expect(r.intervalMs).toBe(IV);
    const [a, b, c] = r.migrations;
    expect(a).toMatchObject({ index: 0, gapMs: 6000 + IV, lostSeqs: 300, lost: 300, resumed: true });
    expect(b).toMatchObject({ index: 1, gapMs: 100 + IV, lostSeqs: 5, lost: 5, resumed: true });
    expect(c).toMatchObject({ index: 2, gapMs: IV, lostSeqs: 0, lost: 0, resumed: true });
    expect(a?.startsAt).toBe(T0 + 9_980 + 1);
    expect(a?.endsAt).toBe(T0 + 16_000 + 1);
    expect(r.summary).toEqual({ count: 3, p50GapMs: 100 + IV, maxGapMs: 6000 + IV, totalLost: 305 });
  });

  it('counts a gap that starts inside the slack before the recorded migration', () => {
    // the traffic stopped 600 ms before the driver's timestamp
    const r = gapsPerMigration(arrivals, [{ startedAt: T0 + 10_600, endedAt: T0 + 10_700 }], { slackMs: 1000 });
    expect(r.migrations[0]?.gapMs).toBe(6000 + IV);
    const narrow = gapsPerMigration(arrivals, [{ startedAt: T0 + 20_600, endedAt: T0 + 20_700 }], { slackMs: 100 });
    expect(narrow.migrations[0]?.gapMs).toBe(IV);
  });

  it('reports a stream that never resumed as an infinite, unresumed gap', () => {
    const dead = stream(600); // ends at 12 s
    const r = gapsPerMigration(dead, [{ startedAt: T0 + 11_000, endedAt: T0 + 13_000 }]);
    expect(r.migrations[0]).toMatchObject({ gapMs: Infinity, resumed: false, endsAt: null, startsAt: T0 + 599 * IV + 1 });
    expect(r.summary.maxGapMs).toBe(Infinity);
    expect(gapsPerMigration([], [{ startedAt: T0, endedAt: T0 + 1 }]).migrations[0]).toMatchObject({ gapMs: Infinity, resumed: false });
  });

  it('returns an empty summary without migrations', () => {
    expect(gapsPerMigration(arrivals, []).summary).toEqual({ count: 0, p50GapMs: null, maxGapMs: null, totalLost: 0 });
  });
});

describe('mobilityAddedGap', () => {
  it('subtracts the baseline migration from the cross-segment one, pairwise', () => {
    const cross = [{ gapMs: 120, lost: 0 }, { gapMs: 130, lost: 2 }, { gapMs: 200, lost: 1 }];
    const base = [{ gapMs: 100, lost: 0 }, { gapMs: 110, lost: 0 }, { gapMs: 105, lost: 1 }];
    const r = mobilityAddedGap(cross, base, { haRttMs: 1 });
    expect(r.perMigration.map((m) => m.addedMs)).toEqual([20, 20, 95]);
    expect(r.perMigration.map((m) => m.addedLost)).toEqual([0, 2, 0]);
    expect(r.perMigration.map((m) => m.withinGoal)).toEqual([false, false, false]);
    expect(r.unpaired).toBe(0);
    expect(r.summary).toEqual({
      count: 3, p50AddedMs: 20, maxAddedMs: 95, p50CrossMs: 130, p50BaselineMs: 105, maxCrossMs: 200, maxBaselineMs: 110,
      totalAddedLost: 2, goalMs: 6, withinGoal: false,
    });
  });

  it('accepts gapsPerMigration results directly and pairs only what both runs have', () => {
    const arrivals = stream(1000, { drop: (s) => s >= 100 && s < 105 });
    const withRoam6 = gapsPerMigration(arrivals, [{ startedAt: T0 + 2000, endedAt: T0 + 2050 }]).migrations;
    const baseline = gapsPerMigration(stream(1000), [
      { startedAt: T0 + 2000, endedAt: T0 + 2050 },
      { startedAt: T0 + 9000, endedAt: T0 + 9050 },
    ]).migrations;
    const r = mobilityAddedGap(withRoam6, baseline, { haRttMs: 0.2 });
    expect(r.unpaired).toBe(1);
    expect(r.perMigration).toEqual([
      { index: 0, crossGapMs: 6 * IV, baselineGapMs: IV, addedMs: 5 * IV, crossLost: 5, baselineLost: 0, addedLost: 5, withinGoal: false },
    ]);
  });

  it('has no goal fields without haRttMs, and nulls when empty', () => {
    const r = mobilityAddedGap([], []);
    expect(r.summary).toEqual({
      count: 0, p50AddedMs: null, maxAddedMs: null, p50CrossMs: null, p50BaselineMs: null, maxCrossMs: null, maxBaselineMs: null, totalAddedLost: 0,
    });
    expect(mobilityAddedGap([{ gapMs: 10 }], [{ gapMs: 8 }], { haRttMs: 0 }).perMigration[0]?.withinGoal).toBe(true);
  });
});

describe('binTraffic', () => {
  /** Counter samples every `step` ms over [0, durationMs], counting `kbps` on tx (and 0 on rx). */
  function counters(kbps: (t: number) => number, durationMs: number, step = 100, iface = 'eth0', label?: string): TrafficSample[] {
    const out: TrafficSample[] = [];
    let bytes = 0;
    for (let t = 0; t <= durationMs; t += step) {
      if (t > 0) bytes += (kbps(t - step) * step) / 8; // bytes in (t-step, t]
      out.push({ t: T0 + t, iface, ...(label ? { label } : {}), txPackets: Math.round(bytes / 1000), txBytes: bytes, rxPackets: 0, rxBytes: 0 });
    }
    return out;
  }

  it('turns counter deltas into kbit/s per bin', () => {
    const [s] = binTraffic(counters(() => 520, 2000), 500);
    expect(s?.key).toBe('eth0');
    expect(s?.bins.map((b) => b.t - T0)).toEqual([0, 500, 1000, 1500]);
    for (const b of s?.bins ?? []) {
      expect(b.txKbps).toBeCloseTo(520, 6);
      expect(b.rxKbps).toBe(0);
    }
  });

  it('spreads a sample interval across the bins it overlaps', () => {
    // samples every 300 ms, bins of 200 ms: each bin still sees the true rate
    const [s] = binTraffic(counters(() => 800, 1800, 300), 200);
    for (const b of s?.bins ?? []) expect(b.txKbps).toBeCloseTo(800, 6);
  });

  it('follows a stream that moves from one host to the other (figure 5)', () => {
    const a = counters((t) => (t < 1000 ? 520 : 0), 2000, 100, 'uplink', 'host-a');
    const b = counters((t) => (t < 1000 ? 0 : 520), 2000, 100, 'uplink', 'host-b');
    const series = binTraffic([...b, ...a], 500);
    expect(series.map((s) => s.key)).toEqual(['host-a/uplink', 'host-b/uplink']);
    expect(series[0]?.label).toBe('host-a');
    expect(series[0]?.bins.map((x) => Math.round(x.txKbps ?? -1))).toEqual([520, 520, 0, 0]);
    expect(series[1]?.bins.map((x) => Math.round(x.txKbps ?? -1))).toEqual([0, 0, 520, 520]);
    expect(trafficPoints(series[0] as (typeof series)[0], 'tx')[0]).toEqual([T0 + 250, 520]);
  });

  it('rates a partly covered first bin over the covered part only', () => {
    // samples start 250 ms into a bin
    const samples = counters(() => 400, 1000).map((s) => ({ ...s, t: s.t + 250 }));
    const [s] = binTraffic(samples, 500, { originMs: T0 });
    expect(s?.bins[0]?.t).toBe(T0);
    expect(s?.bins[0]?.txKbps).toBeCloseTo(400, 6);
  });

  it('treats a counter that goes down as a reset, not a negative rate', () => {
    const samples: TrafficSample[] = [
      { t: T0, iface: 'v', txPackets: 10, txBytes: 10_000, rxPackets: 0, rxBytes: 0 },
      { t: T0 + 100, iface: 'v', txPackets: 20, txBytes: 20_000, rxPackets: 0, rxBytes: 0 },
      { t: T0 + 200, iface: 'v', txPackets: 5, txBytes: 5_000, rxPackets: 0, rxBytes: 0 }, // re-created
      { t: T0 + 300, iface: 'v', txPackets: 15, txBytes: 15_000, rxPackets: 0, rxBytes: 0 },
    ];
    const [s] = binTraffic(samples, 100);
    expect(s?.bins.map((b) => b.txKbps)).toEqual([800, 400, 800]);
    expect(s?.bins.map((b) => b.txPps)).toEqual([100, 50, 100]);
  });

  it('leaves a break in sampling empty instead of inventing a plateau', () => {
    const all = counters(() => 520, 3000);
    // the interface was missing from 1000 to 2500 ms
    const samples = all.filter((s) => s.t - T0 <= 1000 || s.t - T0 >= 2500);
    const [s] = binTraffic(samples, 500);
    expect(s?.bins.map((b) => (b.txKbps === null ? null : Math.round(b.txKbps)))).toEqual([520, 520, null, null, null, 520]);
    // …unless the caller allows long gaps: then the delta is spread evenly
    const [spread] = binTraffic(samples, 500, { maxSampleGapMs: 10_000 });
    expect(spread?.bins.every((b) => b.txKbps !== null && Math.round(b.txKbps) === 520)).toBe(true);
  });

  it('handles no samples, one sample, and rejects a bad bin size', () => {
    expect(binTraffic([], 100)).toEqual([]);
    const [one] = binTraffic([{ t: T0 + 50, iface: 'x', txPackets: 1, txBytes: 1, rxPackets: 1, rxBytes: 1 }], 100);
    expect(one?.bins).toEqual([{ t: T0, txKbps: null, rxKbps: null, txPps: null, rxPps: null }]);
    expect(() => binTraffic([], 0)).toThrow(RangeError);
  });
});
