/**
 * The lab's measurement tools, end to end in namespaces: the real CLI sends 520 kbit/s of
 * sequence-numbered UDP across a veth, the link drops for ~500 ms in the middle, and the
 * analysis must find exactly that one gap with the packets lost in it; the counter sampler must
 * show the stream (and the hole) on the sender's interface.
 *
 *   snd: ls0 2001:db8:5a::1 ──veth── ls1 2001:db8:5a::2 :rcv
 *        `lab stream send`, `lab sample`      `lab stream recv`
 *
 * The link is dropped on the sender's side (`ip link set dev ls0 down`): its sends then fail
 * (ENETUNREACH) and use up their sequence numbers, so the receiver counts them as lost.
 * keep_addr_on_down keeps the address across the flap.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { binTraffic, streamGaps } from '../../src/lab/analysis.js';
import { packetIntervalMs, readArrivals } from '../../src/lab/stream.js';
import { readTrafficSamples } from '../../src/lab/traffic-sampler.js';
import { canUseNetns, ensureDistBuilt, JsonLineChild, NetnsLab } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/roam6.js');
const FIXTURE = fileURLToPath(new URL('../fixtures/lab-stream-cli.mjs', import.meta.url));

const SND = '2001:db8:5a::1';
const RCV = '2001:db8:5a::2';
const PORT = 5004;
const RATE_KBIT = 520;
const SIZE = 1400;
const INTERVAL = packetIntervalMs(SIZE, RATE_KBIT); // 21.5 ms
/** Bytes per packet on the veth: payload + UDP 8 + IPv6 40 + Ethernet 14. */
const WIRE = SIZE + 8 + 40 + 14;

interface Event {
  event?: string;
  [k: string]: unknown;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** bin/roam6.js once main.ts registers `lab stream`; until then the fixture with the same argv. */
function cliEntry(): string {
  try {
    // An unknown subcommand under `lab` prints lab's own help (exit 0), so look for our option.
    const help = execFileSync(process.execPath, [BIN, 'lab', 'stream', 'recv', '--help'], { encoding: 'utf8', stdio: 'pipe' });
    return help.includes('--stream-id') ? BIN : FIXTURE;
  } catch {
    return FIXTURE;
  }
}

describe.skipIf(!canUseNetns)('lab stream and sampler in namespaces', () => {
  const lab = new NetnsLab('lstr');
  const dir = mkdtempSync(join(tmpdir(), 'r6lstr-'));
  let cli = FIXTURE;

  beforeAll(() => {
    ensureDistBuilt(ROOT, 'dist/src/cli/commands/lab-stream.js');
    cli = cliEntry();
    lab.addNs('snd');
    lab.addNs('rcv');
    lab.sysctl('snd', 'net.ipv6.conf.all.keep_addr_on_down', '1');
    lab.link('snd', 'ls0', `${SND}/64`, 'rcv', 'ls1', `${RCV}/64`);
    lab.exec('snd', 'ping', ['-6', '-c', '1', '-W', '2', RCV]); // neighbours resolved before we measure
  });

  afterAll(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (role: string, args: string[]): JsonLineChild<Event> =>
    new JsonLineChild<Event>(lab.spawn(role, process.execPath, [cli, ...args]));

  it('finds the one ~500 ms gap of a link flap, with the right loss, and the sampler sees the stream', async () => {
    const arrivalsFile = join(dir, 'arrivals.jsonl');
    const samplesFile = join(dir, 'samples.jsonl');

    const recv = run('rcv', ['lab', 'stream', 'recv', '--port', String(PORT), '--bind', RCV, '--out', arrivalsFile]);
    await recv.waitForEvent((e) => e.event === 'listening', 10_000);
    const sampler = run('snd', ['lab', 'sample', '--iface', 'ls0', '--interval-ms', '100', '--out', samplesFile, '--label', 'sender']);
    await sampler.waitForEvent((e) => e.event === 'sampling', 10_000);
    const send = run('snd', ['lab', 'stream', 'send', '--to', RCV, '--port', String(PORT),
      '--rate-kbit', String(RATE_KBIT), '--size', String(SIZE), '--duration', '3', '--stream-id', '7']);
    await send.waitForEvent((e) => e.event === 'sending', 10_000);

    await sleep(1200);
    const downBefore = Date.now();
    lab.exec('snd', 'ip', ['link', 'set', 'dev', 'ls0', 'down']);
    const downAfter = Date.now();
    await sleep(500 - (downAfter - downBefore));
    const upBefore = Date.now();
    lab.exec('snd', 'ip', ['link', 'set', 'dev', 'ls0', 'up']);
    const upAfter = Date.now();

    const done = await send.waitForEvent((e) => e.event === 'done', 10_000);
    await sleep(300);
    recv.child.kill('SIGTERM');
    sampler.child.kill('SIGTERM');
    const recvDone = await recv.waitForEvent((e) => e.event === 'done', 5000);
    await sampler.waitForEvent((e) => e.event === 'done', 5000);
    expect(recv.child.exitCode ?? (await new Promise((r) => recv.child.once('exit', r)))).toBe(0);

    // --- the receiver's view
    const sent = done.sent as number;
    expect(sent).toBeGreaterThanOrEqual(138);
    expect(sent).toBeLessThanOrEqual(141);
    const arrivals = readArrivals(arrivalsFile);
    expect(arrivals.length).toBe(recvDone.received);
    expect(arrivals.every((a) => a.stream === 7)).toBe(true);
    const r = streamGaps(arrivals, { intervalMs: INTERVAL, sent });
    expect(r.gaps, JSON.stringify(r.gaps)).toHaveLength(1);
    const gap = r.gaps[0];
    if (!gap) throw new Error('no gap');
    // No packet can arrive while the link is down ([downAfter, upBefore] at least); the silence
    // ends at most one interval after the link is up again and began at most one before it went down.
    expect(gap.gapMs).toBeGreaterThanOrEqual(upBefore - downAfter - 1);
    expect(gap.gapMs).toBeLessThanOrEqual(upAfter - downBefore + 2 * INTERVAL + 30);
    expect(gap.gapMs).toBeGreaterThan(400);
    expect(gap.gapMs).toBeLessThan(800);
    expect(gap.reordered).toBe(false);
    expect(gap.lostSeqs).toBe(gap.firstSeqAfter - gap.lastSeqBefore - 1);
    // the loss matches the silence: one packet per interval, minus the one that ends it
    expect(Math.abs(gap.lostSeqs - (gap.gapMs / INTERVAL - 1))).toBeLessThanOrEqual(2);
    // nothing else was lost, duplicated or reordered; the lost packets were failed sends, except
    // perhaps one the kernel took just as the link went down and then dropped
    expect(r.lost).toBe(gap.lostSeqs);
    expect(r.duplicates).toBe(0);
    expect(r.outOfOrder).toBe(0);
    expect(done.sendErrors).toBeLessThanOrEqual(r.lost);
    expect(done.sendErrors).toBeGreaterThanOrEqual(r.lost - 1);
    expect(done.errorCodes).toEqual({ ENETUNREACH: done.sendErrors });

    // --- the sampler's view of the sender's interface
    const samples = readTrafficSamples(samplesFile);
    expect(samples.length).toBeGreaterThan(25);
    expect(samples.every((s) => s.iface === 'ls0' && s.label === 'sender')).toBe(true);
    const first = samples[0];
    const last = samples[samples.length - 1];
    if (!first || !last) throw new Error('no samples');
    expect(last.txPackets - first.txPackets).toBeGreaterThanOrEqual(arrivals.length);
    expect(last.txBytes - first.txBytes).toBeGreaterThanOrEqual(arrivals.length * WIRE);
    const [series] = binTraffic(samples, 200);
    expect(series?.key).toBe('sender/ls0');
    const bins = series?.bins ?? [];
    const streaming = bins.filter((b) => b.t >= (done.startedAt as number) + 200 && b.t + 200 <= downBefore);
    // Samples every 100 ms spread each delta over its interval, so a 100 ms bin is clean only
    // when both sample intervals it touches lie inside the outage.
    const [fine] = binTraffic(samples, 100);
    const outage = (fine?.bins ?? []).filter((b) => b.t >= downAfter + 100 && b.t + 200 <= upBefore);
    expect(streaming.length).toBeGreaterThan(2);
    expect(outage.length).toBeGreaterThan(0);
    const expectedKbps = (RATE_KBIT * WIRE) / SIZE; // ≈ 543 kbit/s on the wire
    for (const b of streaming) {
      expect(b.txKbps).toBeGreaterThan(expectedKbps * 0.75);
      expect(b.txKbps).toBeLessThan(expectedKbps * 1.25);
    }
    for (const b of outage) expect(b.txKbps).toBe(0);
  });
});
