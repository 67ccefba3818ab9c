/**
 * A paced UDP test stream with sequence numbers: the paper's 520 kbit/s MPEG-4 stream, reduced to
 * what a measurement needs. The sender and the receiver are symmetric and know nothing about
 * guests or hosts, so the same two commands measure guest→CN and CN→guest.
 *
 * Packet (UDP payload, `size` bytes, big-endian):
 *
 *   offset  size  field
 *   0       4     magic      0x52 0x36 0x53 0x54 ("R6ST")
 *   4       1     version    1
 *   5       1     flags      0 (reserved)
 *   6       2     headerLen  24 (bytes before the padding)
 *   8       4     streamId   u32, chosen by the sender (--stream-id), tells streams apart
 *   12      4     seq        u32, 0, 1, 2, … one per packet the sender tried to send
 *   16      8     sentAt     f64, sender clock in Unix epoch ms (sub-ms precision)
 *   24      …     padding    zeros up to `size`
 *
 * Clock: `nowMs()` = performance.timeOrigin + performance.now(), i.e. epoch ms with µs
 * resolution. Every namespace shares the machine's clock, so sentAt and recvAt are comparable
 * and line up with migration timestamps taken with Date.now() (to within a millisecond).
 *
 * Rate: `rateKbit` counts UDP payload bits (size × 8 per packet); the packet interval is
 * size × 8 / rateKbit ms (1400 B at 520 kbit/s: 21.54 ms, 46.4 pkt/s). On the wire each
 * packet also carries 8 (UDP) + 40 (IPv6) + 14 (Ethernet) bytes.
 *
 * Pacing is drift-free: packet i is due at start + i × interval, scheduled with one timer to the
 * next due time. A late timer sends the packets that are due in one burst of at most `maxBurst`;
 * when the sender fell further behind (the process was stopped), the missed slots are skipped
 * without using sequence numbers and the schedule moves on. A failed send (e.g. ENETUNREACH
 * while a route is down) still uses its sequence number, so the receiver counts it as lost.
 */
import { createSocket, type Socket } from 'node:dgram';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';

import type { Arrival } from './analysis.js';

export const STREAM_MAGIC = 0x52365354; // "R6ST"
export const STREAM_VERSION = 1;
export const STREAM_HEADER_LENGTH = 24;
/** Largest UDP payload we send (one packet, no fragmentation on a 1500-byte link: 1500 − 40 − 8). */
export const STREAM_MAX_SIZE = 1452;

export interface StreamPacket {
  streamId: number;
  seq: number;
  sentAt: number;
}

/** Epoch ms with sub-millisecond resolution; the clock of every stream timestamp. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Packet interval (ms) for a payload size (bytes) and rate (kbit/s of payload). */
export function packetIntervalMs(sizeBytes: number, rateKbit: number): number {
  return (sizeBytes * 8) / rateKbit;
}

export function encodeStreamPacket(p: StreamPacket, size: number): Uint8Array {
  if (!Number.isInteger(size) || size < STREAM_HEADER_LENGTH || size > 65507) {
    throw new RangeError(`packet size must be an integer in ${STREAM_HEADER_LENGTH}…65507 (got ${size})`);
  }
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint32(0, STREAM_MAGIC);
  dv.setUint8(4, STREAM_VERSION);
  dv.setUint8(5, 0);
  dv.setUint16(6, STREAM_HEADER_LENGTH);
  dv.setUint32(8, p.streamId >>> 0);
  dv.setUint32(12, p.seq >>> 0);
  dv.setFloat64(16, p.sentAt);
  return buf;
}

/** Decodes a stream packet; null when it is not one (wrong magic or version, too short). */
export function decodeStreamPacket(bytes: Uint8Array): StreamPacket | null {
  if (bytes.length < STREAM_HEADER_LENGTH) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0) !== STREAM_MAGIC || dv.getUint8(4) !== STREAM_VERSION) return null;
  const headerLen = dv.getUint16(6);
  if (headerLen < STREAM_HEADER_LENGTH || headerLen > bytes.length) return null;
  return { streamId: dv.getUint32(8), seq: dv.getUint32(12), sentAt: dv.getFloat64(16) };
}

// ---------------------------------------------------------------------------------------------
// pacing

/**
 * Which packets to send now: the drift-free schedule as a pure function (unit-tested).
 * Slot i is due at startMs + i × intervalMs. Given the next slot and the time, returns how many
 * slots are due, how many of them to send (≤ maxBurst) and the next slot after this round.
 */
export function dueSlots(startMs: number, intervalMs: number, nextSlot: number, now: number, maxBurst: number):
  { due: number; send: number; skipped: number; nextSlot: number } {
  const lastDue = Math.floor((now - startMs) / intervalMs); // slot index due at or before now
  const due = Math.max(0, lastDue - nextSlot + 1);
  const send = Math.min(due, maxBurst);
  const skipped = due - send;
  return { due, send, skipped, nextSlot: nextSlot + due };
}

export interface StreamSendOptions {
  to: string;
  port: number;
  rateKbit: number;
  /** UDP payload bytes per packet (24…STREAM_MAX_SIZE; default 1400). */
  size?: number;
  /** Stop after this many seconds… */
  durationSec?: number;
  /** …or after this many packets (whichever comes first; neither: until aborted). */
  count?: number;
  streamId?: number;
  /** Source address to bind (a guest's address, or the CN's). */
  bind?: string;
  /** Source port (default: any). */
  sourcePort?: number;
  /** Most packets sent at once when the timer was late (default 8). */
  maxBurst?: number;
  /** Called once the socket is ready, right before the first packet. */
  onStart?: (info: { streamId: number; size: number; intervalMs: number; startedAt: number }) => void;
}

export interface StreamSendSummary {
  streamId: number;
  to: string;
  port: number;
  size: number;
  intervalMs: number;
  /** Sequence numbers used: packets handed to the kernel plus failed sends. */
  sent: number;
  /** Sends the kernel refused (their sequence numbers are lost by construction). */
  sendErrors: number;
  /** error code → count, e.g. { ENETUNREACH: 23 } */
  errorCodes: Record<string, number>;
  /** Slots skipped because the process fell more than maxBurst packets behind. */
  skippedSlots: number;
  startedAt: number;
  endedAt: number;
}

async function bindSocket(socket: Socket, address: string | undefined, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    socket.once('error', onError);
    socket.bind({ port, ...(address ? { address } : {}), exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

function checkAddress(name: string, a: string): void {
  if (isIP(a) === 0) throw new RangeError(`${name}: not an IP address: ${a}`);
}

/** Sends the paced stream until duration/count is reached or `signal` aborts. */
export async function sendStream(opts: StreamSendOptions, signal?: AbortSignal): Promise<StreamSendSummary> {
  const size = opts.size ?? 1400;
  if (!Number.isInteger(size) || size < STREAM_HEADER_LENGTH || size > STREAM_MAX_SIZE) {
    throw new RangeError(`size must be an integer in ${STREAM_HEADER_LENGTH}…${STREAM_MAX_SIZE} (got ${size})`);
  }
  if (!(opts.rateKbit > 0)) throw new RangeError(`rate must be > 0 kbit/s (got ${opts.rateKbit})`);
  checkAddress('to', opts.to);
  if (opts.bind) checkAddress('bind', opts.bind);
  const streamId = opts.streamId ?? 1;
  const maxBurst = Math.max(1, opts.maxBurst ?? 8);
  const intervalMs = packetIntervalMs(size, opts.rateKbit);
  const type = isIP(opts.to) === 4 ? 'udp4' : 'udp6';
  const socket = createSocket({ type });
  const errorCodes: Record<string, number> = {};
  let sendErrors = 0;
  const countError = (e: Error): void => {
    sendErrors++;
    const code = (e as NodeJS.ErrnoException).code ?? e.name;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  };
  // Asynchronous errors (ICMP-induced, on a connected socket) must not crash the sender.
  socket.on('error', countError);
  if (opts.bind || opts.sourcePort) await bindSocket(socket, opts.bind, opts.sourcePort ?? 0);

  const startedAt = nowMs();
  opts.onStart?.({ streamId, size, intervalMs, startedAt });
  const endAt = opts.durationSec === undefined ? Infinity : startedAt + opts.durationSec * 1000;
  const limit = opts.count ?? Infinity;
  let seq = 0;
  let slot = 0;
  let skippedSlots = 0;
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;

  const sendOne = (): void => {
    const buf = encodeStreamPacket({ streamId, seq, sentAt: nowMs() }, size);
    seq++;
    inFlight++;
    try {
      socket.send(buf, opts.port, opts.to, (err) => {
        inFlight--;
        if (err) countError(err);
      });
    } catch (e) {
      inFlight--;
      countError(e instanceof Error ? e : new Error(String(e)));
    }
  };

  await new Promise<void>((resolve) => {
    const finish = (): void => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    if (signal?.aborted) return finish();
    signal?.addEventListener('abort', finish, { once: true });
    const tick = (): void => {
      const now = nowMs();
      const r = dueSlots(startedAt, intervalMs, slot, Math.min(now, endAt), maxBurst);
      for (let i = 0; i < r.send && seq < limit; i++) sendOne();
      skippedSlots += r.skipped;
      slot = r.nextSlot;
      const nextDue = startedAt + slot * intervalMs;
      if (seq >= limit || nextDue > endAt) return finish();
      timer = setTimeout(tick, Math.max(0, nextDue - nowMs()));
    };
    tick();
  });

  // Let the kernel take the last packets before closing.
  const drainUntil = Date.now() + 1000;
  while (inFlight > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 5));
  socket.close();
  return {
    streamId,
    to: opts.to,
    port: opts.port,
    size,
    intervalMs,
    sent: seq,
    sendErrors,
    errorCodes,
    skippedSlots,
    startedAt,
    endedAt: nowMs(),
  };
}

// ---------------------------------------------------------------------------------------------
// receiver

export interface StreamRecvOptions {
  port: number;
  /** Local address to bind (default: all, `::`). */
  bind?: string;
  /** Arrival log: one JSON line per packet (see `formatArrival`). */
  out: string;
  /** Stop after this many seconds (default: until aborted). */
  durationSec?: number;
  /** Stop after this many packets. */
  count?: number;
  /** Log only this stream id. */
  streamId?: number;
  /** Called once the socket is bound. */
  onListening?: (address: { address: string; port: number }) => void;
}

export interface StreamRecvSummary {
  /** Packets logged (duplicates included). */
  received: number;
  /** Datagrams that were not stream packets, or another stream's. */
  ignored: number;
  firstSeq: number | null;
  lastSeq: number | null;
  startedAt: number;
  endedAt: number;
}

/** One arrival as a log line: `{"stream":1,"seq":7,"sentAt":…,"recvAt":…}` (times rounded to µs). */
export function formatArrival(a: Arrival): string {
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return JSON.stringify({ ...(a.stream === undefined ? {} : { stream: a.stream }), seq: a.seq, sentAt: r(a.sentAt), recvAt: r(a.recvAt) });
}

/**
 * Parses an arrival log. Blank lines are skipped, and so is a torn last line (the receiver was
 * killed mid-write); any other bad line throws with its line number.
 */
export function parseArrivals(text: string): Arrival[] {
  const lines = text.split('\n');
  const out: Arrival[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1) return; // torn last line
      throw new Error(`arrival log line ${i + 1}: ${(e as Error).message}`);
    }
    const o = v as Partial<Record<keyof Arrival, unknown>>;
    if (typeof o.seq !== 'number' || typeof o.sentAt !== 'number' || typeof o.recvAt !== 'number') {
      throw new Error(`arrival log line ${i + 1}: expected {seq, sentAt, recvAt} numbers`);
    }
    out.push({ seq: o.seq, sentAt: o.sentAt, recvAt: o.recvAt, ...(typeof o.stream === 'number' ? { stream: o.stream } : {}) });
  });
  return out;
}

/** Reads an arrival log written by `receiveStream` (`roam6 lab stream recv --out FILE`). */
export function readArrivals(path: string): Arrival[] {
  return parseArrivals(readFileSync(path, 'utf8'));
}

/** Receives stream packets and logs each one, until duration/count or `signal` aborts. */
export async function receiveStream(opts: StreamRecvOptions, signal?: AbortSignal): Promise<StreamRecvSummary> {
  if (opts.bind) checkAddress('bind', opts.bind);
  const type = opts.bind && isIP(opts.bind) === 4 ? 'udp4' : 'udp6';
  const socket = createSocket({ type, reuseAddr: false });
  await bindSocket(socket, opts.bind, opts.port);
  const fd = openSync(opts.out, 'w');
  const startedAt = nowMs();
  let pending: string[] = [];
  let received = 0;
  let ignored = 0;
  let firstSeq: number | null = null;
  let lastSeq: number | null = null;
  const flush = (): void => {
    if (pending.length === 0) return;
    writeSync(fd, `${pending.join('\n')}\n`);
    pending = [];
  };
  const flushTimer = setInterval(flush, 100);
  let stopTimer: NodeJS.Timeout | undefined;

  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (stopTimer) clearTimeout(stopTimer);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    socket.on('message', (msg) => {
      if (done) return;
      const recvAt = nowMs();
      const p = decodeStreamPacket(msg);
      if (!p || (opts.streamId !== undefined && p.streamId !== opts.streamId)) {
        ignored++;
        return;
      }
      received++;
      firstSeq ??= p.seq;
      lastSeq = p.seq;
      pending.push(formatArrival({ stream: p.streamId, seq: p.seq, sentAt: p.sentAt, recvAt }));
      if (pending.length >= 256) flush();
      if (opts.count !== undefined && received >= opts.count) finish();
    });
    socket.on('error', finish);
    if (signal?.aborted) return finish();
    signal?.addEventListener('abort', finish, { once: true });
    if (opts.durationSec !== undefined) stopTimer = setTimeout(finish, opts.durationSec * 1000);
    const a = socket.address();
    opts.onListening?.({ address: a.address, port: a.port });
  });

  clearInterval(flushTimer);
  socket.close();
  flush();
  closeSync(fd);
  return { received, ignored, firstSeq, lastSeq, startedAt, endedAt: nowMs() };
}
