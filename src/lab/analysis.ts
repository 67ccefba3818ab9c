/**
 * Measurement analysis for the lab and the benchmarks. PURE: plain data in, plain data out;
 * no I/O, no clock. Every time is a number of milliseconds on one shared time base (the stream
 * tools use Unix epoch ms with sub-ms precision, see src/lab/stream.ts), so receiver logs,
 * migration timestamps and counter samples from different namespaces line up.
 *
 * - `streamGaps`: the silences a receiver saw, with the packets lost in each.
 * - `gapsPerMigration`: the largest silence around each migration.
 * - `mobilityAddedGap`: DESIGN §4's number: the gap with roam6 across segments minus the gap of
 *   the same migration inside one segment with no roam6.
 * - `binTraffic`: interface counter samples → kbit/s per bin (figure 5).
 */

/** One received packet, as `roam6 lab stream recv` logs it. */
export interface Arrival {
  /** Sequence number (u32; the sender starts at 0). Wrap-around (2^32 packets) is not handled. */
  seq: number;
  /** Sender's clock when it sent the packet (ms). */
  sentAt: number;
  /** Receiver's clock when the packet reached the receiving process (ms). */
  recvAt: number;
  /** Stream id, when the log carries it. */
  stream?: number;
}

export interface StreamGapOptions {
  /** Nominal packet interval (ms); estimated from the arrivals' send times when omitted. */
  intervalMs?: number;
  /** A silence counts as a gap when it is longer than k × the nominal interval (default 3). */
  k?: number;
  /**
   * Packets the sender sent (seq 0 … sent-1), when known. Losses before the first and after the
   * last received packet then count too; otherwise only the range first…last received counts.
   */
  sent?: number;
}

export interface StreamGap {
  /** recvAt of the last packet before the silence. */
  startsAt: number;
  /** recvAt of the first packet after it. */
  endsAt: number;
  gapMs: number;
  lastSeqBefore: number;
  firstSeqAfter: number;
  /** Sequence numbers strictly between the two that never arrived (not before, not later). */
  lostSeqs: number;
  /**
   * True when the packets around the silence are out of order: the first packet after it has a
   * lower sequence number, or some number in between arrived at another time.
   */
  reordered: boolean;
}

export interface StreamGapsResult {
  intervalMs: number;
  /** Silences longer than this (k × interval) are gaps. */
  thresholdMs: number;
  gaps: StreamGap[];
  /** Packets in the log, duplicates included. */
  received: number;
  /** Distinct sequence numbers received. */
  unique: number;
  /** Copies of a sequence number already received. */
  duplicates: number;
  /** Arrivals with a lower sequence number than one received before them. */
  outOfOrder: number;
  /** Sequence numbers never received (in 0…sent-1 when `sent` is given, else first…last received). */
  lost: number;
  firstSeq: number | null;
  lastSeq: number | null;
}

/** A migration as the demo driver records it (same clock as the receiver). */
export interface MigrationWindow {
  startedAt: number;
  endedAt: number;
  label?: string;
}

export interface MigrationGapOptions {
  /** Widen each window by this much on both sides (ms, default 1000): the traffic effect trails the control steps. */
  slackMs?: number;
  /** Nominal interval (ms); estimated when omitted. */
  intervalMs?: number;
}

export interface MigrationGap {
  index: number;
  migration: MigrationWindow;
  /** recvAt of the last packet before the largest silence overlapping the window (null: none before it). */
  startsAt: number | null;
  /** recvAt of the first packet after it (null: the stream never resumed). */
  endsAt: number | null;
  /**
   * The largest silence overlapping the window (ms). With no disruption this is about one packet
   * interval. Infinity when the stream did not resume (or never started) around the window.
   */
  gapMs: number;
  resumed: boolean;
  /** Sequence numbers lost inside that largest silence. */
  lostSeqs: number;
  /** Sequence numbers lost anywhere between the last packet before the window and the first after it. */
  lost: number;
}

export interface MigrationGapsResult {
  intervalMs: number;
  migrations: MigrationGap[];
  summary: {
    count: number;
    p50GapMs: number | null;
    maxGapMs: number | null;
    /** Sum of `lost` over the migrations. */
    totalLost: number;
  };
}

/** Anything with a gap and (optionally) a loss count: a MigrationGap, or a hand-made sample. */
export interface GapSample {
  gapMs: number;
  lost?: number;
}

export interface AddedGap {
  index: number;
  crossGapMs: number;
  baselineGapMs: number;
  /** crossGapMs − baselineGapMs: the share of the gap that the mobility layer adds. */
  addedMs: number;
  crossLost: number;
  baselineLost: number;
  /** Packets lost beyond the hypervisor pause (DESIGN §4 goal: 0). */
  addedLost: number;
  /** Only with `haRttMs`: addedMs ≤ haRttMs + 5 (DESIGN §4 goal). */
  withinGoal?: boolean;
}

export interface AddedGapResult {
  perMigration: AddedGap[];
  /** Migrations present in only one of the two runs (paired by index). */
  unpaired: number;
  summary: {
    count: number;
    /** Median and maximum of the per-migration differences. */
    p50AddedMs: number | null;
    maxAddedMs: number | null;
    p50CrossMs: number | null;
    p50BaselineMs: number | null;
    maxCrossMs: number | null;
    maxBaselineMs: number | null;
    totalAddedLost: number;
    /** Only with `haRttMs`: one HA round trip + 5 ms. */
    goalMs?: number;
    withinGoal?: boolean;
  };
}

/** One read of an interface's counters, as `roam6 lab sample` logs it. */
export interface TrafficSample {
  /** Sampling time (ms). */
  t: number;
  iface: string;
  /** Set with `lab sample --label`, e.g. the host the sampler runs on. */
  label?: string;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

export interface TrafficBin {
  /** Bin start (ms); the bin is [t, t + binMs). */
  t: number;
  /** Rates over the part of the bin covered by samples; null when no sample interval covers it. */
  txKbps: number | null;
  rxKbps: number | null;
  txPps: number | null;
  rxPps: number | null;
}

export interface TrafficSeries {
  /** `label/iface` when the samples carry a label, else `iface`. */
  key: string;
  iface: string;
  label?: string;
  binMs: number;
  bins: TrafficBin[];
}

export interface BinTrafficOptions {
  /** Align bins to this time (ms); default: the first sample of all series, rounded down to binMs. */
  originMs?: number;
  /**
   * Two samples further apart than this are a break (the interface was missing or the sampler
   * stalled): their delta is not spread and the bins in between stay null.
   * Default: 10 × the median sampling interval of the series.
   */
  maxSampleGapMs?: number;
}

// ---------------------------------------------------------------------------------------------
// small statistics

/** Quantile with linear interpolation between closest ranks (numpy's default); null when empty. */
export function quantile(values: readonly number[], q: number): number | null {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const pos = (v.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = v[lo] as number;
  const b = v[hi] as number;
  if (lo === hi || a === b) return a;
  return a + (b - a) * (pos - lo);
}

function maxOrNull(values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((m, x) => (x > m ? x : m), -Infinity);
}

/** First index in sorted `a` with a[i] > x. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in sorted `a` with a[i] >= x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// stream gaps

/** The receive log prepared once: first copy of each seq in arrival order, and the sorted seqs. */
interface PreparedLog {
  /** First arrival of each sequence number, ordered by recvAt. */
  firsts: Arrival[];
  /** Distinct sequence numbers, ascending. */
  seqs: number[];
  received: number;
  duplicates: number;
  outOfOrder: number;
}

function prepare(arrivals: readonly Arrival[]): PreparedLog {
  const ordered = [...arrivals].sort((a, b) => a.recvAt - b.recvAt);
  const seen = new Set<number>();
  const firsts: Arrival[] = [];
  let duplicates = 0;
  let outOfOrder = 0;
  let maxSeq = -Infinity;
  for (const a of ordered) {
    if (seen.has(a.seq)) {
      duplicates++;
      continue;
    }
    seen.add(a.seq);
    if (a.seq < maxSeq) outOfOrder++;
    else maxSeq = a.seq;
    firsts.push(a);
  }
  const seqs = [...seen].sort((a, b) => a - b);
  return { firsts, seqs, received: arrivals.length, duplicates, outOfOrder };
}

/** Sequence numbers strictly between `a` and `b` (either order) that never arrived. */
function lostBetween(seqs: readonly number[], a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (hi - lo <= 1) return 0;
  const receivedInside = lowerBound(seqs, hi) - upperBound(seqs, lo);
  return hi - lo - 1 - receivedInside;
}

function receivedBetween(seqs: readonly number[], a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  return hi - lo <= 1 ? 0 : lowerBound(seqs, hi) - upperBound(seqs, lo);
}

/**
 * The nominal packet interval from the send times: the median of (Δ sentAt / Δ seq) over
 * consecutive in-order arrivals. Null with fewer than two usable packets.
 */
export function estimateIntervalMs(arrivals: readonly Arrival[]): number | null {
  const bySeq = [...arrivals].sort((a, b) => a.seq - b.seq);
  const steps: number[] = [];
  for (let i = 1; i < bySeq.length; i++) {
    const p = bySeq[i - 1] as Arrival;
    const c = bySeq[i] as Arrival;
    const dSeq = c.seq - p.seq;
    if (dSeq <= 0) continue;
    const dt = (c.sentAt - p.sentAt) / dSeq;
    if (dt > 0) steps.push(dt);
  }
  return quantile(steps, 0.5);
}

function resolveInterval(arrivals: readonly Arrival[], given: number | undefined): number {
  if (given !== undefined) {
    if (!(given > 0)) throw new RangeError(`intervalMs must be > 0 (got ${given})`);
    return given;
  }
  return estimateIntervalMs(arrivals) ?? 0;
}

/**
 * The receiver's gaps: every silence longer than k × the nominal interval between two
 * consecutive (first-copy) arrivals, with the packets lost inside it; plus totals.
 */
export function streamGaps(arrivals: readonly Arrival[], opts: StreamGapOptions = {}): StreamGapsResult {
  const intervalMs = resolveInterval(arrivals, opts.intervalMs);
  const k = opts.k ?? 3;
  const thresholdMs = k * intervalMs;
  const log = prepare(arrivals);
  const gaps: StreamGap[] = [];
  if (intervalMs > 0) {
    for (let i = 1; i < log.firsts.length; i++) {
      const a = log.firsts[i - 1] as Arrival;
      const b = log.firsts[i] as Arrival;
      const gapMs = b.recvAt - a.recvAt;
      if (gapMs <= thresholdMs) continue;
      gaps.push({
        startsAt: a.recvAt,
        endsAt: b.recvAt,
        gapMs,
        lastSeqBefore: a.seq,
        firstSeqAfter: b.seq,
        lostSeqs: lostBetween(log.seqs, a.seq, b.seq),
        reordered: b.seq < a.seq || receivedBetween(log.seqs, a.seq, b.seq) > 0,
      });
    }
  }
  const firstSeq = log.seqs[0] ?? null;
  const lastSeq = log.seqs[log.seqs.length - 1] ?? null;
  let lost: number;
  if (opts.sent !== undefined) {
    const inRange = lowerBound(log.seqs, opts.sent) - lowerBound(log.seqs, 0);
    lost = Math.max(0, opts.sent - inRange);
  } else {
    lost = firstSeq === null || lastSeq === null ? 0 : lastSeq - firstSeq + 1 - log.seqs.length;
  }
  return {
    intervalMs,
    thresholdMs,
    gaps,
    received: log.received,
    unique: log.seqs.length,
    duplicates: log.duplicates,
    outOfOrder: log.outOfOrder,
    lost,
    firstSeq,
    lastSeq,
  };
}

// ---------------------------------------------------------------------------------------------
// per migration

/**
 * For each migration window (widened by `slackMs`), the largest silence at the receiver that
 * overlaps it, the packets lost in that silence and in the whole window. Unlike `streamGaps`
 * there is no threshold: a migration that disturbed nothing reports about one packet interval.
 */
export function gapsPerMigration(
  arrivals: readonly Arrival[],
  migrations: readonly MigrationWindow[],
  opts: MigrationGapOptions = {},
): MigrationGapsResult {
  const slackMs = opts.slackMs ?? 1000;
  const intervalMs = resolveInterval(arrivals, opts.intervalMs);
  const log = prepare(arrivals);
  const times = log.firsts.map((a) => a.recvAt);
  const out: MigrationGap[] = migrations.map((migration, index) => {
    const from = Math.min(migration.startedAt, migration.endedAt) - slackMs;
    const to = Math.max(migration.startedAt, migration.endedAt) + slackMs;
    // Silences (times[i-1], times[i]) that overlap [from, to]: i from the last arrival at or
    // before `from` (+1) to the first arrival at or after `to`.
    const firstAfterFrom = upperBound(times, from); // index of first arrival > from
    const firstAtOrAfterTo = lowerBound(times, to);
    const before = firstAfterFrom > 0 ? log.firsts[firstAfterFrom - 1] : undefined;
    const after = log.firsts[firstAtOrAfterTo];

    let best: { a: Arrival | undefined; b: Arrival | undefined; gapMs: number } | null = null;
    const lastI = Math.min(firstAtOrAfterTo, log.firsts.length - 1);
    for (let i = Math.max(1, firstAfterFrom); i <= lastI; i++) {
      const a = log.firsts[i - 1] as Arrival;
      const b = log.firsts[i] as Arrival;
      const gapMs = b.recvAt - a.recvAt;
      if (!best || gapMs > best.gapMs) best = { a, b, gapMs };
    }
    const lastArrival = log.firsts[log.firsts.length - 1];
    // The log ends before the migration did: the stream died and never resumed.
    const died = lastArrival === undefined || lastArrival.recvAt < Math.max(migration.startedAt, migration.endedAt);
    if (died) best = { a: lastArrival, b: undefined, gapMs: Infinity };
    // No silence overlaps the window: the stream only started after it.
    else if (!best) best = { a: before, b: after, gapMs: Infinity };

    const lostSeqs = best.a && best.b ? lostBetween(log.seqs, best.a.seq, best.b.seq) : 0;
    const end = after ?? (died ? undefined : lastArrival);
    const lost = before && end ? lostBetween(log.seqs, before.seq, end.seq) : lostSeqs;
    return {
      index,
      migration,
      startsAt: best.a?.recvAt ?? null,
      endsAt: best.b?.recvAt ?? null,
      gapMs: best.gapMs,
      resumed: best.b !== undefined,
      lostSeqs,
      lost,
    };
  });
  const gapsMs = out.map((m) => m.gapMs);
  return {
    intervalMs,
    migrations: out,
    summary: {
      count: out.length,
      p50GapMs: quantile(gapsMs, 0.5),
      maxGapMs: maxOrNull(gapsMs),
      totalLost: out.reduce((s, m) => s + m.lost, 0),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// DESIGN §4: the gap the mobility layer adds

/**
 * Pairs the i-th migration across segments (with roam6) with the i-th migration of the baseline
 * (the same migration inside one segment, no roam6, same run) and subtracts. With `haRttMs`, also
 * checks DESIGN §4's goal: added gap ≤ one HA round trip + 5 ms.
 */
export function mobilityAddedGap(
  crossSegment: readonly GapSample[],
  baseline: readonly GapSample[],
  opts: { haRttMs?: number } = {},
): AddedGapResult {
  const n = Math.min(crossSegment.length, baseline.length);
  const goalMs = opts.haRttMs === undefined ? undefined : opts.haRttMs + 5;
  const perMigration: AddedGap[] = [];
  for (let i = 0; i < n; i++) {
    const c = crossSegment[i] as GapSample;
    const b = baseline[i] as GapSample;
    const crossLost = c.lost ?? 0;
    const baselineLost = b.lost ?? 0;
    const addedMs = c.gapMs - b.gapMs;
    perMigration.push({
      index: i,
      crossGapMs: c.gapMs,
      baselineGapMs: b.gapMs,
      addedMs,
      crossLost,
      baselineLost,
      addedLost: crossLost - baselineLost,
      ...(goalMs === undefined ? {} : { withinGoal: addedMs <= goalMs }),
    });
  }
  const added = perMigration.map((m) => m.addedMs);
  const cross = perMigration.map((m) => m.crossGapMs);
  const base = perMigration.map((m) => m.baselineGapMs);
  const maxAddedMs = maxOrNull(added);
  return {
    perMigration,
    unpaired: Math.max(crossSegment.length, baseline.length) - n,
    summary: {
      count: n,
      p50AddedMs: quantile(added, 0.5),
      maxAddedMs,
      p50CrossMs: quantile(cross, 0.5),
      p50BaselineMs: quantile(base, 0.5),
      maxCrossMs: maxOrNull(cross),
      maxBaselineMs: maxOrNull(base),
      totalAddedLost: perMigration.reduce((s, m) => s + m.addedLost, 0),
      ...(goalMs === undefined ? {} : { goalMs, withinGoal: maxAddedMs !== null && maxAddedMs <= goalMs }),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// traffic counters → rates

export function trafficSeriesKey(s: Pick<TrafficSample, 'iface' | 'label'>): string {
  return s.label ? `${s.label}/${s.iface}` : s.iface;
}

/**
 * Per-interface rates from counter samples. Each delta between two consecutive samples of a
 * series is spread evenly over the time between them and split across the bins it overlaps;
 * a bin's rate is its bytes (packets) over the part of it that samples cover, so the first and
 * last partial bins are not diluted, and bins no sample interval covers are null.
 *
 * A counter that goes down was reset (interface re-created): the new value counts as the delta,
 * as Prometheus' rate() assumes. Samples further apart than `maxSampleGapMs` are a break.
 */
export function binTraffic(samples: readonly TrafficSample[], binMs: number, opts: BinTrafficOptions = {}): TrafficSeries[] {
  if (!(binMs > 0)) throw new RangeError(`binMs must be > 0 (got ${binMs})`);
  const groups = new Map<string, TrafficSample[]>();
  for (const s of samples) {
    const key = trafficSeriesKey(s);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(s);
  }
  if (groups.size === 0) return [];
  const minT = samples.reduce((m, s) => Math.min(m, s.t), Infinity);
  const origin = opts.originMs ?? Math.floor(minT / binMs) * binMs;
  const binOf = (t: number): number => Math.floor((t - origin) / binMs);

  const out: TrafficSeries[] = [];
  for (const [key, group] of groups) {
    const g = [...group].sort((a, b) => a.t - b.t);
    const first = g[0] as TrafficSample;
    const last = g[g.length - 1] as TrafficSample;
    const steps: number[] = [];
    for (let i = 1; i < g.length; i++) steps.push((g[i] as TrafficSample).t - (g[i - 1] as TrafficSample).t);
    const maxGap = opts.maxSampleGapMs ?? 10 * (quantile(steps.filter((x) => x > 0), 0.5) ?? Infinity);

    const firstBin = binOf(first.t);
    const lastBin = Math.max(firstBin, binOf(last.t) - (last.t > first.t && (last.t - origin) % binMs === 0 ? 1 : 0));
    const nBins = lastBin - firstBin + 1;
    const acc = Array.from({ length: nBins }, () => ({ coveredMs: 0, txBytes: 0, rxBytes: 0, txPackets: 0, rxPackets: 0 }));

    const delta = (cur: number, prev: number): number => (cur >= prev ? cur - prev : cur);
    for (let i = 1; i < g.length; i++) {
      const p = g[i - 1] as TrafficSample;
      const c = g[i] as TrafficSample;
      const span = c.t - p.t;
      if (span <= 0 || span > maxGap) continue;
      const d = {
        txBytes: delta(c.txBytes, p.txBytes),
        rxBytes: delta(c.rxBytes, p.rxBytes),
        txPackets: delta(c.txPackets, p.txPackets),
        rxPackets: delta(c.rxPackets, p.rxPackets),
      };
      for (let b = Math.max(binOf(p.t), firstBin); b <= Math.min(binOf(c.t), lastBin); b++) {
        const bStart = origin + b * binMs;
        const overlap = Math.min(c.t, bStart + binMs) - Math.max(p.t, bStart);
        if (overlap <= 0) continue;
        const share = overlap / span;
        const cell = acc[b - firstBin];
        if (!cell) continue;
        cell.coveredMs += overlap;
        cell.txBytes += d.txBytes * share;
        cell.rxBytes += d.rxBytes * share;
        cell.txPackets += d.txPackets * share;
        cell.rxPackets += d.rxPackets * share;
      }
    }
    const bins: TrafficBin[] = acc.map((cell, j) => {
      const t = origin + (firstBin + j) * binMs;
      if (cell.coveredMs <= 0) return { t, txKbps: null, rxKbps: null, txPps: null, rxPps: null };
      // bytes/ms × 8 = kbit/s; packets/ms × 1000 = packets/s
      return {
        t,
        txKbps: (cell.txBytes * 8) / cell.coveredMs,
        rxKbps: (cell.rxBytes * 8) / cell.coveredMs,
        txPps: (cell.txPackets * 1000) / cell.coveredMs,
        rxPps: (cell.rxPackets * 1000) / cell.coveredMs,
      };
    });
    out.push({ key, iface: first.iface, ...(first.label ? { label: first.label } : {}), binMs, bins });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * A series as chart points `[tMs, kbps | null]` at bin centres (null breaks the line),
 * for `figure5Svg` in src/lab/chart.ts.
 */
export function trafficPoints(series: TrafficSeries, direction: 'tx' | 'rx'): Array<[number, number | null]> {
  return series.bins.map((b) => [b.t + series.binMs / 2, direction === 'tx' ? b.txKbps : b.rxKbps]);
}
