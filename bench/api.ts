/**
 * `npm run bench:api`: the operator API under a big binding cache.
 *
 *  1. list — an in-process HomeAgent (fake data plane, no store) holding 100,000 bindings, all
 *     made by authenticated BUs through `ha.handle()` (a tenth of the guests moved once), and
 *     the real fastify API on 127.0.0.1. GET /api/v1/bindings with a page of 100, for several
 *     filters and sorts, from 8 keep-alive connections; p50/p99 per query.
 *  2. events — 100 SSE clients on /api/v1/events (in a worker thread, so delivery is not
 *     measured on the server's own event loop) while 1,000 moves go through `ha.handle()`,
 *     paced at one per 10 ms (100 moves/s; a 1,000-guest rebalance in 60 s is 17/s; --pace MS to change); delivery latency from the move's BU entering `ha.handle()`
 *     to the event's arrival at a client, p50/p99, and whether every client got every move.
 *
 *   node dist/bench/api.js [--guests N] [--requests N]
 */
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';

import { formatIpv6, parseIpv6, parsePrefix, type Ipv6Address } from '../src/wire/ipv6.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../src/core/home-agent.js';
import { buildBindingUpdate } from '../src/core/binding-update-builder.js';
import { FakeHaDataplane } from '../src/platform/fake/dataplane.js';
import { MemoryGuestDirectory } from '../src/platform/memory-guest-directory.js';
import { systemClock } from '../src/platform/system-clock.js';
import type { GuestPolicy } from '../src/ports/guest-directory.js';
import { startApi } from '../src/api/server.js';
import { fmt, writeSection } from './report.js';

const HA = parseIpv6('2001:db8:1::2');
const HOSTS = 16;
const COAS: Ipv6Address[] = Array.from({ length: HOSTS }, (_, h) => parseIpv6(`2001:db8:1::a:${h.toString(16)}`));
const SSE_CLIENTS = 100;
const MOVES = 1000;
const CONCURRENCY = 8;

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

const now = () => performance.timeOrigin + performance.now();

function makeGuest(i: number): GuestPolicy {
  return {
    id: `g${i}@bench.example`,
    mnps: [parsePrefix(`2001:db8:${(0x100 + ((i >> 16) & 0xff)).toString(16)}:${(i & 0xffff).toString(16)}::/64`)],
    sas: [{ spi: 0x10000 + i, algorithm: 'hmac-sha1-96', key: Uint8Array.from(createHash('sha256').update(`roam6-bench-api/${i}`).digest().subarray(0, 20)) }],
    mobileRouter: true,
  };
}

function bu(g: GuestPolicy, seq: number, coa: Ipv6Address): Uint8Array {
  return buildBindingUpdate({ guest: g.id, sa: g.sas[0]!, seq, lifetimeSec: 3600, coa, mnps: g.mnps }).bytes;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function get(agent: Agent, port: number, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
    });
    req.on('error', reject);
    req.end();
  });
}

// --- SSE clients (worker thread) -----------------------------------------------------------

interface WorkerIn { port: number; clients: number; expect: number }
type WorkerMsg = { ev: 'ready' } | { ev: 'done'; arrivals: Record<string, number>[]; counts: number[] };

function sseWorker(): void {
  const { port, clients, expect } = workerData as WorkerIn;
  const arrivals: Record<string, number>[] = [];
  const counts: number[] = [];
  let ready = 0;
  let finished = 0;
  for (let i = 0; i < clients; i++) {
    const mine: Record<string, number> = {};
    arrivals.push(mine);
    counts.push(0);
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/events?types=moved' }, (res) => {
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        const t = now();
        buf += chunk;
        let k: number;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, k);
          buf = buf.slice(k + 2);
          if (frame.includes('event: hello')) {
            if (++ready === clients) parentPort!.postMessage({ ev: 'ready' } satisfies WorkerMsg);
            continue;
          }
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (!data) continue;
          const e = JSON.parse(data) as { guest: string; seq: number };
          mine[`${e.guest}#${e.seq}`] = t;
          if (++counts[i]! === expect) {
            res.destroy();
            if (++finished === clients) parentPort!.postMessage({ ev: 'done', arrivals, counts } satisfies WorkerMsg);
          }
        }
      });
    });
    req.end();
  }
  // Give up after a while and report what arrived.
  setTimeout(() => parentPort!.postMessage({ ev: 'done', arrivals, counts } satisfies WorkerMsg), 60_000).unref();
}

// --- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const N = arg('guests', 100_000);
  const load0 = loadavg()[0]!;
  const REQUESTS = arg('requests', 600);
  const PACE_MS = arg('pace', 10);
  const guests = Array.from({ length: N }, (_, i) => makeGuest(i));
  const dir = new MemoryGuestDirectory(guests);
  const dp = new FakeHaDataplane(false);
  const ha = new HomeAgent(
    {
      policy: { servedPrefixes: [parsePrefix('2001:db8:100::/40')], maxLifetimeSec: 3600, requireTimestamp: false, timestampWindowMs: 7000, refreshAdviceRatio: 0.8 },
      ...DEFAULT_HA_RUNTIME,
      rateLimit: { ratePerSec: 1_000_000, burst: 1_000_000 },
    },
    { guests: dir, dataplane: dp, clock: systemClock },
  );
  await ha.start();

  // Register everyone (seq 1 from host i % 16), then move a tenth (seq 2 from the next host).
  const t0 = performance.now();
  const drive = async (items: number[], seq: number, host: (i: number) => number) => {
    let next = 0;
    let ok = 0;
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        for (let k = next++; k < items.length; k = next++) {
          const i = items[k]!;
          const coa = COAS[host(i)]!;
          const r = await ha.handle(bu(guests[i]!, seq, coa), coa, HA);
          if (r && r.mh[2] === 6 && r.mh[6] === 0) ok++;
        }
      }),
    );
    return ok;
  };
  const all = Array.from({ length: N }, (_, i) => i);
  const registered = await drive(all, 1, (i) => i % HOSTS);
  const movers = all.filter((i) => i % 10 === 0);
  const moved = await drive(movers, 2, (i) => (i + 1) % HOSTS);
  const populateMs = performance.now() - t0;
  console.log(`populated ${fmt(ha.cache.size)} bindings (${fmt(registered)} registered, ${fmt(moved)} moved) in ${(populateMs / 1000).toFixed(1)} s`);

  const app = await startApi({ listen: { host: '127.0.0.1', port: 0 }, startedAt: Date.now(), events: { heartbeatMs: 60_000 } }, { ha, dataplane: dp, clock: systemClock });
  const port = (app.server.address() as AddressInfo).port;

  // 1. list
  const queries: [string, string][] = [
    ['all, sort guest', '/api/v1/bindings?limit=100'],
    ['all, sort lastMove desc', '/api/v1/bindings?limit=100&sort=lastMove&order=desc'],
    ['all, sort expiresAt, page 50', '/api/v1/bindings?limit=100&offset=4900&sort=expiresAt'],
    ['coa filter (1/16)', `/api/v1/bindings?limit=100&coa=${encodeURIComponent('2001:db8:1::a:3')}`],
    ['movedWithin=3600', '/api/v1/bindings?limit=100&movedWithin=3600&sort=lastMove&order=desc'],
    ['text search q=g4242', '/api/v1/bindings?limit=100&q=g4242'],
    ['prefix (longest match)', `/api/v1/bindings?limit=100&prefix=${encodeURIComponent('2001:db8:101:86a0::1')}`],
    ['one guest (detail)', `/api/v1/bindings/${encodeURIComponent('g4242@bench.example')}`],
  ];
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const list: { query: string; path: string; p50Ms: number; p99Ms: number; perSec: number; bytes: number }[] = [];
  for (const [name, path] of queries) {
    for (let i = 0; i < 30; i++) await get(agent, port, path); // warm-up
    // Latency: one request at a time. Throughput: CONCURRENCY connections.
    const lat: number[] = [];
    let bytes = 0;
    for (let k = 0; k < REQUESTS; k++) {
      const s = performance.now();
      const r = await get(agent, port, path);
      lat.push(performance.now() - s);
      if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
      bytes = r.bytes;
    }
    let next = 0;
    const q0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let k = next++; k < REQUESTS; k = next++) await get(agent, port, path);
      }),
    );
    const wall = performance.now() - q0;
    lat.sort((a, b) => a - b);
    const row = { query: name, path, p50Ms: +pct(lat, 50).toFixed(2), p99Ms: +pct(lat, 99).toFixed(2), perSec: Math.round((REQUESTS / wall) * 1000), bytes };
    list.push(row);
    console.log(`${name.padEnd(32)} p50 ${row.p50Ms.toFixed(2)} ms  p99 ${row.p99Ms.toFixed(2)} ms  ${fmt(row.perSec)} req/s  ${fmt(bytes)} B`);
  }
  agent.destroy();

  // 2. events: 100 SSE clients, 1,000 moves
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { port, clients: SSE_CLIENTS, expect: MOVES } satisfies WorkerIn });
  const fromWorker = (want: WorkerMsg['ev']) => new Promise<WorkerMsg>((resolve) => worker.on('message', (m: WorkerMsg) => m.ev === want && resolve(m)));
  const readyP = fromWorker('ready');
  const doneP = fromWorker('done');
  await readyP;
  const sent = new Map<string, number>();
  const moveGuests = Array.from({ length: MOVES }, (_, k) => (k * 97) % N);
  const m0 = performance.now();
  for (const [k, i] of moveGuests.entries()) {
    const g = guests[i]!;
    const seq = 3 + k; // strictly increasing per guest, whatever guest repeats
    const coa = COAS[(i + 2 + k) % HOSTS]!;
    // The same guest must not be asked to "move" to its current CoA.
    const cur = ha.cache.get(g.id)!.coa;
    const target = cur === formatIpv6(coa) ? COAS[(i + 3 + k) % HOSTS]! : coa;
    const bytes = bu(g, seq, target);
    sent.set(`${g.id}#${seq}`, now());
    await ha.handle(bytes, target, HA);
    while (performance.now() - m0 < (k + 1) * PACE_MS) await new Promise((r) => setImmediate(r));
  }
  const done = (await doneP) as Extract<WorkerMsg, { ev: 'done' }>;
  await worker.terminate();
  const lat: number[] = [];
  let delivered = 0;
  for (const arrivals of done.arrivals) {
    for (const [key, t] of Object.entries(arrivals)) {
      const s = sent.get(key);
      if (s === undefined) continue;
      delivered++;
      lat.push(t - s);
    }
  }
  lat.sort((a, b) => a - b);
  const events = {
    clients: SSE_CLIENTS,
    moves: MOVES,
    expected: SSE_CLIENTS * MOVES,
    delivered,
    allDelivered: delivered === SSE_CLIENTS * MOVES,
    p50Ms: +pct(lat, 50).toFixed(2),
    p99Ms: +pct(lat, 99).toFixed(2),
    maxMs: +(lat.at(-1) ?? NaN).toFixed(2),
  };
  console.log(`events: ${fmt(delivered)}/${fmt(events.expected)} delivered; p50 ${events.p50Ms} ms, p99 ${events.p99Ms} ms, max ${events.maxMs} ms`);
  await app.close();
  await ha.stop();

  const table = [
    `| query (page of 100) | p50 | p99 | req/s (${CONCURRENCY} connections) | response |`,
    '|---|---:|---:|---:|---:|',
    ...list.map((r) => `| ${r.query} | ${r.p50Ms.toFixed(2)} ms | ${r.p99Ms.toFixed(2)} ms | ${fmt(r.perSec)} | ${fmt(r.bytes)} B |`),
  ].join('\n');
  writeSection(
    'api',
    'Operator API: GET /bindings at 100,000 bindings, event fan-out to 100 clients',
    'npm run bench:api',
    `An in-process HomeAgent (fake data plane) with ${fmt(N)} bindings made by authenticated BUs through \`ha.handle()\` ` +
      `(${fmt(moved)} of them moved once), and the real fastify API on 127.0.0.1. Latency: ${fmt(REQUESTS)} requests one at a time (keep-alive); ` +
      `throughput: ${fmt(REQUESTS)} more from ${CONCURRENCY} connections. Every query counts all matches (\`total\`), so all but the default view scan the cache.\n\n` +
      `${table}\n\n` +
      `Load average (1 min) when the run started: ${load0.toFixed(1)}, at the end: ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores; above ~1 other work shared the CPU and the numbers are pessimistic.\n\n` +
      `**Event fan-out**: ${SSE_CLIENTS} SSE clients (a worker thread) on \`/api/v1/events?types=moved\` while ${fmt(MOVES)} moves go through \`ha.handle()\`, one every ${PACE_MS} ms: ` +
      `${fmt(delivered)} of ${fmt(events.expected)} events delivered${events.allDelivered ? ' (all)' : ''}; ` +
      `latency from the BU entering \`ha.handle()\` to the client p50 **${events.p50Ms} ms**, p99 **${events.p99Ms} ms** (max ${events.maxMs} ms).`,
    { guests: N, moved, populateMs: Math.round(populateMs), list, events },
  );
  if (!events.allDelivered) process.exitCode = 1;
}

if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  sseWorker();
}
