/**
 * The HA's operator API as an operator meets it: `roam6 ha` in its namespace with the API on
 * its own address ([2001:db8:1::2]:8446, `api.readNetworks: ["2001:db8:a::/64"]`), a real
 * redis-server with host heartbeats, and real BUs from two hosts on different /64s. The test
 * reaches the API through small unix→TCP forwarders running in the host namespaces, so the HA
 * sees host A (allowed to read) or host B (not allowed) as the source. Covers the contract
 * (filters, paging, sorting, prefix lookup, 400s, token, readNetworks), the event stream's
 * latency, /metrics against the BUs sent, the CLI views, and the web page in headless
 * Chromium (run inside namespace A).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { NetnsLab, canUseNetns, waitFor } from '../helpers/netns.js';
import { JsonLinePeer } from '../helpers/peer.js';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../src/wire/ipv6.js';
import { BaStatus } from '../../src/wire/mh/index.js';
import { buildBindingUpdate, checkBindingAck } from '../../src/core/binding-update-builder.js';
import { apiRequest } from '../../src/cli/api-client.js';
import { connectEvents, type SseEvent } from '../../src/cli/sse-client.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/platform/redis/embedded.js';
import { connectRedis, type RedisHandle } from '../../src/platform/redis/connection.js';
import { RedisHostRegistry } from '../../src/platform/redis/host-registry.js';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { ORCHESTRATOR_QUEUE, migrationJobId } from '../../src/orchestrator/jobs.js';
import type { SecurityAssociation } from '../../src/security/mn-ha-auth.js';

const HA = '2001:db8:1::2';
const A = '2001:db8:a::2';
const B = '2001:db8:b::2';
const PORT = 8446;
const TOKEN = 'api-test-token-0123456789';
const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;
const CHROMIUM = '/usr/bin/chromium';

interface G { id: string; mnp: string; sa: SecurityAssociation }
const guests: G[] = Array.from({ length: 8 }, (_, i) => ({
  id: `g${i}@api.lab`,
  mnp: `2001:db8:100:${i + 1}::/64`,
  sa: { spi: 8192 + i, algorithm: 'hmac-sha1-96', key: Uint8Array.from({ length: 16 }, (_, k) => (k * 13 + i * 7 + 1) & 0xff) },
}));
const g = (i: number) => guests[i]!;

/** Epoch ms with sub-millisecond resolution, comparable across the test's callbacks. */
const now = () => performance.timeOrigin + performance.now();

// ---- a strict parser of the Prometheus text exposition format (0.0.4) -------------------------

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Family { type: string; help: string; samples: Sample[] }

function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const familyOf = (sample: string): Family | undefined => {
    const f = families.get(sample);
    if (f) return f;
    for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
      if (sample.endsWith(suffix)) {
        const base = families.get(sample.slice(0, -suffix.length));
        if (base) return base;
      }
    }
    return undefined;
  };
  text.split('\n').forEach((line, n) => {
    const where = `line ${n + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      const f = families.get(name) ?? { type: 'untyped', help: '', samples: [] };
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type, ${where}`);
        if (f.samples.length) throw new Error(`TYPE after samples, ${where}`);
        f.type = rest;
      } else f.help = rest;
      families.set(name, f);
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([^ ]+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample, ${where}`);
    const [, name, , labelText, valueText] = m as unknown as [string, string, string | undefined, string | undefined, string];
    const labels: Record<string, string> = {};
    if (labelText) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/y;
      let pos = 0;
      while (pos < labelText.length) {
        re.lastIndex = pos;
        const l = re.exec(labelText);
        if (!l) throw new Error(`bad labels, ${where}`);
        if (l[1]! in labels) throw new Error(`duplicate label, ${where}`);
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        pos = re.lastIndex;
      }
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : valueText === 'NaN' ? NaN : Number(valueText);
    if (!/^([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN)$/.test(valueText)) throw new Error(`bad value, ${where}`);
    const f = familyOf(name);
    if (!f) throw new Error(`sample without a TYPE, ${where}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series, ${where}`);
    seen.add(key);
    f.samples.push({ name, labels, value });
  });
  return families;
}

const sum = (f: Family | undefined, pred: (s: Sample) => boolean = () => true) =>
  (f?.samples ?? []).filter(pred).reduce((a, s) => a + s.value, 0);

// ---------------------------------------------------------------------------------------------

describe.skipIf(!canUseNetns)('the HA operator API in namespaces', () => {
  const lab = new NetnsLab('api');
  const dir = mkdtempSync(join(tmpdir(), 'roam6-api-'));
  const viaA = `unix:${join(dir, 'via-a.sock')}`; // source 2001:db8:a::2: in readNetworks
  const viaB = `unix:${join(dir, 'via-b.sock')}`; // source 2001:db8:b::2: not
  const configFile = join(dir, 'ha.json');
  let redis: EmbeddedRedis;
  let handle: RedisHandle;
  let ha: ChildProcess;
  let haLog = '';
  const peers: Record<string, JsonLinePeer> = {};
  /** BAs the test received, by status; malformed packets it sent. */
  const tally = { acks: new Map<number, number>(), malformed: 0 };
  let lastBaAt = 0;

  beforeAll(async () => {
    for (const ns of ['core', 'ha', 'a', 'b']) lab.addNs(ns);
    lab.sysctl('core', 'net.ipv6.conf.all.forwarding', '1');
    lab.link('core', 'c-ha', '2001:db8:1::1/64', 'ha', 'ha-c', `${HA}/64`);
    lab.link('core', 'c-a', '2001:db8:a::1/64', 'a', 'a-c', `${A}/64`);
    lab.link('core', 'c-b', '2001:db8:b::1/64', 'b', 'b-c', `${B}/64`);
    lab.exec('ha', 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:1::1']);
    lab.exec('a', 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:a::1']);
    lab.exec('b', 'ip', ['-6', 'route', 'add', 'default', 'via', '2001:db8:b::1']);
    lab.exec('core', 'ip', ['-6', 'route', 'add', '2001:db8:100::/40', 'via', HA]);

    redis = await startEmbeddedRedis({ persist: false });
    handle = await connectRedis({ url: redis.url, name: 'roam6-api-test' });
    const hosts = new RedisHostRegistry(handle.client);
    await hosts.beat({ host: 'host-a', coa: A, haAddress: HA, guests: 6, at: Date.now() }, 600_000);
    await hosts.beat({ host: 'host-b', coa: B, haAddress: HA, guests: 2, at: Date.now() }, 600_000);

    writeFileSync(
      configFile,
      JSON.stringify({
        addresses: [HA],
        servedPrefixes: ['2001:db8:100::/40'],
        rateLimit: { perSec: 200, burst: 400 },
        dataplane: { backend: 'kernel' },
        api: { listen: `[${HA}]:${PORT}`, token: TOKEN, readNetworks: ['2001:db8:a::/64'] },
        redis: { url: redis.url },
        guests: guests.map((x) => ({ id: x.id, mnps: [x.mnp], sas: [{ spi: x.sa.spi, key: Buffer.from(x.sa.key).toString('hex') }] })),
      }),
    );
    ha = lab.spawn('ha', process.execPath, [BIN, 'ha', '--config', configFile], { env: { ...process.env, ROAM6_LOG_LEVEL: 'info' } });
    ha.stderr!.on('data', (d: Buffer) => (haLog += d.toString()));

    for (const [role, path] of [['a', viaA], ['b', viaB]] as const) {
      const fwd = JsonLinePeer.spawn(lab, role, 'unix-tcp-forward.mjs', [path.slice(5), HA, String(PORT)]);
      expect(await fwd.next((e) => e.ev === 'ready', 5000)).not.toBeNull();
    }
    await waitFor(async () => (await apiRequest(viaA, 'GET', '/api/v1/health').catch(() => null))?.status === 200, 30_000, 100).catch((e) => {
      throw new Error(`HA did not come up: ${String(e)}\n${haLog}`);
    });
    for (const [role, addr] of [['a', A], ['b', B]] as const) {
      peers[role] = JsonLinePeer.spawn(lab, role, 'raw-socket-peer.mjs', [JSON.stringify({ protocol: 135, bindAddress: addr })]);
      expect(await peers[role]!.next((e) => e.ev === 'ready', 5000)).not.toBeNull();
    }

    // g0–g5 at host A, g6 (short lifetime) and g7 at host B; g1 moves to B, g2 to B and back.
    for (let i = 0; i <= 5; i++) expect((await register('a', g(i), 10))?.status, haLog).toBe(0);
    expect((await register('b', g(6), 10, { lifetimeSec: 200 }))?.status).toBe(0);
    expect((await register('b', g(7), 10))?.status).toBe(0);
    expect((await register('b', g(1), 11))?.status).toBe(0);
    expect((await register('b', g(2), 11))?.status).toBe(0);
    expect((await register('a', g(2), 12))?.status).toBe(0);
    // Let the HA's host map read the heartbeats (it refreshes every 2 s in the background).
    await waitFor(async () => (await get(viaA, '/api/v1/hosts')).body.hosts?.length === 2, 10_000, 100).catch((e) => {
      throw new Error(`no hosts from the heartbeats: ${String(e)}\n${haLog}`);
    });
  }, 120_000);

  afterAll(async () => {
    await lab.destroy();
    await handle?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Send a BU from a host and return the verified BA (or null when the HA stays silent). */
  async function register(host: 'a' | 'b', x: G, seq: number, opts: { lifetimeSec?: number } = {}) {
    const coa = parseIpv6(host === 'a' ? A : B);
    const { bytes } = buildBindingUpdate({ guest: x.id, sa: x.sa, seq, lifetimeSec: opts.lifetimeSec ?? 400, coa, mnps: [parsePrefix(x.mnp)] });
    const peer = peers[host]!;
    peer.clear();
    peer.send({ cmd: 'send', hex: Buffer.from(bytes).toString('hex'), dst: HA });
    const msg = await peer.next((e) => e.ev === 'message', 1500);
    if (!msg) return null;
    lastBaAt = now();
    const check = checkBindingAck(Buffer.from(String(msg.hex), 'hex'), x.sa, coa as Ipv6Address);
    if (!check.ok) throw new Error(check.reason);
    tally.acks.set(check.ack.status, (tally.acks.get(check.ack.status) ?? 0) + 1);
    return check.ack;
  }

  // Response bodies are checked field by field against the contract.
  type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
  async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
    return apiRequest(base, 'GET', path, headers);
  }
  /** Read a raw event stream until `frames` events arrived (or 2 s passed). */
  function rawEvents(base: string, path: string, headers: Record<string, string>, frames: number): Promise<string> {
    return new Promise((resolve, reject) => {
      let buf = '';
      const req = httpRequest({ socketPath: base.slice(5), path, headers }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          if ((buf.match(/^event: /gm) ?? []).length >= frames && buf.endsWith('\n\n')) {
            req.destroy();
            resolve(buf);
          }
        });
      });
      req.on('error', (e) => (buf ? resolve(buf) : reject(e)));
      req.end();
      setTimeout(() => {
        req.destroy();
        resolve(buf);
      }, 2000).unref();
    });
  }
  const names = (r: { body: Json }) => (r.body.bindings as { guest: string }[]).map((b) => b.guest);

  it('serves its OpenAPI document, generated from the route schemas', async () => {
    const r = await get(viaA, '/api/v1/openapi.json');
    expect(r.status).toBe(200);
    const doc = r.body as { openapi: string; info: { title: string }; paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toContain('roam6');
    for (const p of ['/api/v1/bindings', '/api/v1/bindings/{guest}', '/api/v1/events', '/api/v1/health', '/api/v1/ready', '/api/v1/moves', '/api/v1/hosts']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    const params = doc.paths['/api/v1/bindings']!['get']!.parameters!.map((x) => x.name);
    expect(params).toEqual(expect.arrayContaining(['host', 'coa', 'prefix', 'state', 'expiringWithin', 'movedWithin', 'sort', 'order', 'limit', 'offset']));
    expect(doc.paths['/api/v1/bindings/{guest}']!['delete']).toBeDefined();
    // The web page and /metrics are there, but not part of the documented API.
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
  });

  it('filters by host, CoA, prefix (longest match), state, expiry, recent moves and text', async () => {
    expect(names(await get(viaA, '/api/v1/bindings?host=host-a'))).toEqual([g(0), g(2), g(3), g(4), g(5)].map((x) => x.id));
    expect(names(await get(viaA, '/api/v1/bindings?host=host-b'))).toEqual([g(1), g(6), g(7)].map((x) => x.id));
    expect(names(await get(viaA, `/api/v1/bindings?coa=${encodeURIComponent('2001:0db8:000b::2')}`))).toEqual([g(1), g(6), g(7)].map((x) => x.id));
    // Who owns 2001:db8:100:5::1? The guest whose MNP covers it.
    const who = await get(viaA, `/api/v1/bindings?prefix=${encodeURIComponent('2001:db8:100:5::1')}`);
    expect(who.body).toMatchObject({ total: 1, bindings: [{ guest: g(4).id, mnps: [g(4).mnp], coa: A, host: 'host-a' }] });
    expect((await get(viaA, `/api/v1/bindings?prefix=${encodeURIComponent('2001:db8:100:99::1')}`)).body.total).toBe(0);
    expect((await get(viaA, '/api/v1/bindings?state=registered')).body.total).toBe(8);
    expect((await get(viaA, '/api/v1/bindings?state=expiring')).body.total).toBe(0);
    expect(names(await get(viaA, '/api/v1/bindings?expiringWithin=300'))).toEqual([g(6).id]);
    expect(names(await get(viaA, '/api/v1/bindings?movedWithin=300'))).toEqual([g(1).id, g(2).id]);
    expect(names(await get(viaA, '/api/v1/bindings?q=G3'))).toEqual([g(3).id]);
    expect(names(await get(viaA, `/api/v1/bindings?q=${encodeURIComponent('2001:db8:100:8::42')}`))).toEqual([g(7).id]);
    expect(names(await get(viaA, '/api/v1/bindings?host=host-a&movedWithin=300'))).toEqual([g(2).id]);
    // The list view carries the host of both ends of the last handover.
    const g2 = (await get(viaA, `/api/v1/bindings?q=${encodeURIComponent(g(2).id)}`)).body.bindings[0];
    expect(g2.lastHandover).toMatchObject({ from: B, to: A, fromHost: 'host-b', toHost: 'host-a' });
    expect(typeof g2.lastHandover.haMs).toBe('number');
  });

  it('pages with limit/offset and a stable total, and sorts by every key both ways', async () => {
    const all = guests.map((x) => x.id);
    const pages: string[] = [];
    for (let off = 0; off < 8; off += 3) {
      const r = await get(viaA, `/api/v1/bindings?limit=3&offset=${off}`);
      expect(r.body).toMatchObject({ total: 8, limit: 3, offset: off });
      pages.push(...names(r));
    }
    expect(pages).toEqual(all);
    expect(names(await get(viaA, '/api/v1/bindings?order=desc'))).toEqual([...all].reverse());
    expect(names(await get(viaA, '/api/v1/bindings?sort=expiresAt')).at(0)).toBe(g(6).id);
    // Most recent move first; guests that never moved come last, by guest.
    const byMove = names(await get(viaA, '/api/v1/bindings?sort=lastMove&order=desc'));
    expect(byMove.slice(0, 2)).toEqual([g(2).id, g(1).id]);
    expect(byMove.slice(2)).toEqual([g(0), g(3), g(4), g(5), g(6), g(7)].map((x) => x.id));
    const byCoa = (await get(viaA, '/api/v1/bindings?sort=coa')).body.bindings as { coa: string }[];
    expect(byCoa.map((b) => b.coa)).toEqual([...byCoa.map((b) => b.coa)].sort());
    expect(names(await get(viaA, '/api/v1/bindings?sort=host&order=desc')).slice(0, 3)).toEqual([g(1), g(6), g(7)].map((x) => x.id));
    const byUpdate = (await get(viaA, '/api/v1/bindings?sort=updatedAt&order=desc')).body.bindings as { updatedAt: string }[];
    expect(byUpdate.map((b) => b.updatedAt)).toEqual([...byUpdate.map((b) => b.updatedAt)].sort().reverse());
  });

  it('answers a bad parameter with 400 and a message naming it', async () => {
    const cases: [string, RegExp][] = [
      ['/api/v1/bindings?limit=0', /limit: must be >= 1/],
      ['/api/v1/bindings?limit=abc', /limit: must be integer/],
      ['/api/v1/bindings?sort=age', /sort: must be one of guest, coa, host, updatedAt, expiresAt, lastMove/],
      ['/api/v1/bindings?order=up', /order: must be one of asc, desc/],
      ['/api/v1/bindings?expiringWithin=-5', /expiringWithin: must be >= 0/],
      ['/api/v1/bindings?lmit=5', /unknown query parameter "lmit"/],
      ['/api/v1/bindings?prefix=zzz', /prefix: "zzz" is not an IPv6 address or prefix/],
      ['/api/v1/bindings?coa=host-a', /coa: "host-a" is not an IPv6 address/],
      ['/api/v1/events?types=moved,teleported', /types: must be a comma-separated list of created, updated/],
      ['/api/v1/moves?within=x', /within: must be integer/],
    ];
    for (const [path, message] of cases) {
      const r = await get(viaA, path);
      expect(r.status, path).toBe(400);
      expect(r.body.error, path).toBe('bad request');
      expect(r.body.message, path).toMatch(message);
    }
    expect((await get(viaA, `/api/v1/bindings/${encodeURIComponent('nobody@api.lab')}`)).status).toBe(404);
  });

  it('opens reads to api.readNetworks only (403 otherwise, unless the token is sent); writes always need the token', async () => {
    for (const path of ['/api/v1/bindings', '/api/v1/health', '/metrics', '/', '/api/v1/events', '/queues', '/queues/api/queues']) {
      const r = await get(viaB, path);
      expect(r.status, path).toBe(403);
      expect(r.body.message).toContain('api.readNetworks');
    }
    expect((await get(viaB, '/api/v1/bindings', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    // The queue dashboard follows the same rules: readable from readNetworks, or with the token.
    expect((await get(viaA, '/queues/api/queues')).status).toBe(200);
    expect((await get(viaB, '/queues/api/queues', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    // A write from an allowed network still needs the token.
    expect((await apiRequest(viaA, 'DELETE', `/api/v1/bindings/${encodeURIComponent(g(5).id)}`)).status).toBe(403);
    expect((await apiRequest(viaA, 'DELETE', `/api/v1/bindings/${encodeURIComponent(g(5).id)}`, { authorization: 'Bearer not-the-token-at-all' })).status).toBe(403);
    const events: SseEvent[] = [];
    const conn = connectEvents(viaA, '/api/v1/events?types=revoked', { onEvent: (e) => events.push(e) });
    await waitFor(() => events.some((e) => e.event === 'hello'), 3000);
    expect((await apiRequest(viaB, 'DELETE', `/api/v1/bindings/${encodeURIComponent(g(5).id)}`, { authorization: `Bearer ${TOKEN}` })).status).toBe(204);
    expect((await get(viaA, `/api/v1/bindings/${encodeURIComponent(g(5).id)}`)).status).toBe(404);
    const revoked = (await waitFor(() => events.find((e) => e.event === 'revoked'), 3000))!;
    expect(JSON.parse(revoked.data)).toMatchObject({ type: 'revoked', guest: g(5).id, coa: A, host: 'host-a' });
    conn.close();
  });

  it('streams a moved event within 100 ms of the BA, and rejections with their status', async () => {
    const events: (SseEvent & { t: number })[] = [];
    const conn = connectEvents(viaA, '/api/v1/events', { onEvent: (e) => events.push({ ...e, t: now() }) });
    await waitFor(() => events.some((e) => e.event === 'hello'), 3000);
    const gaps: number[] = [];
    for (const [k, host] of (['b', 'a', 'b'] as const).entries()) {
      const ack = await register(host, g(4), 20 + k);
      expect(ack?.status).toBe(0);
      const baAt = lastBaAt;
      const moved = (await waitFor(() => events.find((e) => e.event === 'moved' && JSON.parse(e.data).seq === 20 + k), 2000))!;
      gaps.push(moved.t - baAt);
      expect(JSON.parse(moved.data)).toMatchObject({ type: 'moved', guest: g(4).id, coa: host === 'b' ? B : A, from: host === 'b' ? A : B, host: host === 'b' ? 'host-b' : 'host-a' });
      expect(moved.id).toMatch(/^[0-9a-z]+\.\d+$/);
    }
    console.log(`[api.test] moved event vs BA at the test client (ms): ${gaps.map((x) => x.toFixed(2)).join(', ')}`);
    for (const gap of gaps) expect(gap).toBeLessThan(100);

    // A stale BU from the old host: 135, and a rejected event that says so.
    expect((await register('a', g(4), 15))?.status).toBe(BaStatus.SequenceNumberOutOfWindow);
    const rejected = (await waitFor(() => events.find((e) => e.event === 'rejected'), 2000))!;
    expect(JSON.parse(rejected.data)).toMatchObject({ guest: g(4).id, status: 135, statusText: 'sequence number out of window', coa: A, host: 'host-a' });
    // One log line for it, from the HA core, with the source and the sequence number (stderr is
    // another pipe than the event's socket: wait for it, and a little longer for a second line).
    await waitFor(() => haLog.includes('"binding update rejected"'), 2000);
    await new Promise((r) => setTimeout(r, 200));
    const logged = haLog.split('\n').filter((l) => l.includes('"binding update rejected"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toEqual([expect.objectContaining({ guest: g(4).id, status: 135, src: A, seq: 15 })]);
    // A refresh is "updated".
    expect((await register('b', g(4), 30))?.status).toBe(0);
    await waitFor(() => events.find((e) => e.event === 'updated' && JSON.parse(e.data).seq === 30), 2000);
    conn.close();

    // Reconnecting with Last-Event-ID replays what was missed; an id from another HA process gets "reset".
    const missedFrom = events.find((e) => e.event === 'moved')!.id!;
    const replay: SseEvent[] = [];
    const again = connectEvents(viaA, '/api/v1/events?types=moved,rejected', { onEvent: (e) => replay.push(e) });
    await waitFor(() => replay.some((e) => e.event === 'hello'), 3000);
    again.close();
    const r = await rawEvents(viaA, '/api/v1/events?types=moved,rejected', { 'last-event-id': missedFrom }, 4);
    // After the hello: the two moves after the first, then the rejection.
    expect(r.match(/^event: (\w+)$/gm)).toEqual(['event: hello', 'event: moved', 'event: moved', 'event: rejected']);
    const stale = await rawEvents(viaA, '/api/v1/events', { 'last-event-id': 'zzz.5' }, 2);
    expect(stale).toMatch(/event: reset\ndata: \{"reason":"the HA restarted"/);
  });

  it("tells one guest's story: binding, counters, and handovers with the orchestrator's numbers when Redis has them", async () => {
    // The orchestrator's record of g4's last migration (host-a → host-b), as BullMQ keeps it.
    const before = (await get(viaA, `/api/v1/bindings/${encodeURIComponent(g(4).id)}`)).body;
    const last = before.history.at(-1) as { at: string; to: string };
    const at = Date.parse(last.at);
    const keys = redisKeys();
    await handle.client.hset(keys.guestState(g(4).id), 'migrations', '1');
    await handle.client.hset(`${keys.queuePrefix}:${ORCHESTRATOR_QUEUE}:${migrationJobId(g(4).id, 0)}`, {
      name: 'migrate',
      data: JSON.stringify({ guest: g(4).id, to: 'host-b' }),
      opts: '{}',
      timestamp: String(at - 900),
      processedOn: String(at - 800),
      finishedOn: String(at + 300),
      returnvalue: JSON.stringify({ guest: g(4).id, from: 'host-a', to: 'host-b', newCoa: B, totalMs: 1712, downtimeMs: 96, resumeToBaMs: 14, registrationMs: 6, timings: {} }),
    });
    const r = await get(viaA, `/api/v1/bindings/${encodeURIComponent(g(4).id)}`);
    expect(r.status).toBe(200);
    const v = r.body;
    expect(v).toMatchObject({ guest: g(4).id, coa: B, host: 'host-b', mnps: [g(4).mnp], seq: 30, state: 'registered', bus: { accepted: 5, rejected: 1, dropped: 0 } });
    expect(v.lastRejection).toMatchObject({ status: 135, statusText: 'sequence number out of window' });
    expect(v.dataplane).toMatchObject({ txPackets: expect.any(Number), rxPackets: expect.any(Number) });
    expect(v.history.map((h: { fromHost: string; toHost: string }) => `${h.fromHost}→${h.toHost}`)).toEqual(['host-a→host-b', 'host-b→host-a', 'host-a→host-b']);
    expect(v.history[0]).toMatchObject({ durationSource: 'ha', migration: null });
    expect(typeof v.history[0].durationMs).toBe('number');
    expect(v.history.at(-1)).toMatchObject({ durationMs: 14, durationSource: 'orchestrator', migration: { fromHost: 'host-a', toHost: 'host-b', totalMs: 1712, pauseMs: 96, resumeToBaMs: 14 } });

    // The moves timeline across guests, newest first.
    const moves = (await get(viaA, '/api/v1/moves?within=600')).body;
    expect(moves.total).toBe(6);
    expect(moves.moves[0]).toMatchObject({ guest: g(4).id, from: A, to: B, fromHost: 'host-a', toHost: 'host-b' });
    expect((await get(viaA, '/api/v1/moves?host=host-b&guest=g1@api.lab')).body.moves).toMatchObject([{ guest: g(1).id, to: B }]);
  });

  it('roam6 bindings (filters, sort, fits the terminal), roam6 binding GUEST and roam6 bindings watch', async () => {
    const run = (args: string[], columns = '100') => spawnSync(process.execPath, [BIN, ...args, '--api', viaA], { encoding: 'utf8', env: { ...process.env, COLUMNS: columns } });
    const t = run(['bindings', '--host', 'host-b', '--sort', 'lastMove', '--desc']);
    expect(t.status, t.stderr).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^GUEST\s+HOST\s+COA\s+MNPS\s+SEQ\s+AGE\s+LEFT\s+STATE\s+LAST MOVE\s+HANDOVER$/);
    expect(lines.slice(1, -1).map((l) => l.split(/\s+/)[0])).toEqual([g(4).id, g(1).id, g(6).id, g(7).id]);
    expect(lines.at(-1)).toBe('4 of 4 binding(s)');
    for (const width of ['60', '80', '100']) {
      const narrow = run(['bindings'], width);
      expect(narrow.status).toBe(0);
      for (const l of narrow.stdout.trimEnd().split('\n')) expect(l.length, `${width}: ${l}`).toBeLessThanOrEqual(Number(width));
    }
    expect(run(['bindings', '--moved-within', '10m', '--json']).stdout).toContain(g(2).id);
    const bad = run(['bindings', '--moved-within', 'soon']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--moved-within');

    const story = run(['binding', g(4).id]);
    expect(story.status, story.stderr).toBe(0);
    expect(story.stdout).toContain(`${g(4).id} — registered, at host-b (${B}) since`);
    expect(story.stdout).toMatch(/BUs\s+5 accepted, 1 rejected, 0 dropped; last rejected .* 135 sequence number out of window/);
    expect(story.stdout).toMatch(/└─ .*host-a \(2001:db8:a::2\) → host-b \(2001:db8:b::2\)\s+14 ms\s+migration 1\.7 s, pause 96 ms/);
    expect(run(['binding', 'nobody@api.lab']).status).toBe(3);

    // watch, not on a terminal: one line per event.
    const watch = spawn(process.execPath, [BIN, 'bindings', 'watch', '--api', viaA], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
    watch.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(() => err.includes('watching'), 10_000);
    expect((await register('a', g(3), 40))?.status).toBe(0);
    expect((await register('b', g(3), 41))?.status).toBe(0);
    await waitFor(() => out.includes('moved'), 3000);
    watch.kill('SIGINT');
    await new Promise((r) => watch.on('exit', r));
    expect(out).toMatch(new RegExp(`moved\\s+${g(3).id.replace('.', '\\.')}\\s+host-a ${A} → host-b ${B}\\s+seq 41`));
    expect(watch.exitCode).toBe(0);
  });

  it.skipIf(!existsSync(CHROMIUM))('serves a live web page: a migration appears, search filters, the guest view shows the history', async () => {
    const { chromium } = await import('playwright-core');
    const wrapper = join(dir, 'chromium-in-ns.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.ns('a')} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
    const artifacts = join(ROOT, 'test-artifacts');
    mkdirSync(artifacts, { recursive: true });
    const browser = await chromium.launch({
      executablePath: wrapper,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30_000,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://[${HA}]:${PORT}/`);
      await page.waitForSelector('#rows tr[data-guest]');
      await page.locator('#stat-stream', { hasText: 'live' }).waitFor();
      expect(await page.locator('#rows tr').count()).toBe(7);
      expect(await page.locator('h1').textContent()).toContain('roam6');
      const hostOf = (guest: string) => page.locator(`#rows tr[data-guest="${guest}"] td:nth-child(2)`);
      expect(await hostOf(g(0).id).textContent()).toBe('host-a');

      // A migration during the test: g0's BU from host B. The row and the timeline follow live.
      expect((await register('b', g(0), 50))?.status).toBe(0);
      await waitFor(async () => (await hostOf(g(0).id).textContent()) === 'host-b', 5000, 25);
      expect(await page.locator('#moves li').first().textContent()).toContain(g(0).id);

      // The search filters the table (server side).
      await page.fill('#f-q', 'g7');
      await waitFor(async () => (await page.locator('#rows tr[data-guest]').count()) === 1, 5000, 25);
      expect(await page.locator('#rows tr[data-guest]').getAttribute('data-guest')).toBe(g(7).id);
      expect(await page.locator('#page-status').textContent()).toBe('1–1 of 1 binding');
      await page.fill('#f-q', '');
      await waitFor(async () => (await page.locator('#rows tr[data-guest]').count()) === 7, 5000, 25);
      await page.screenshot({ path: join(artifacts, 'web-bindings.png') });

      // Keyboard: open g4's story from its link, close with Escape.
      await page.focus(`#rows a[href="#guest=${encodeURIComponent(g(4).id)}"]`);
      await page.keyboard.press('Enter');
      await page.waitForSelector('#detail[open]');
      await waitFor(async () => (await page.locator('#d-history li').count()) === 3, 5000, 25);
      expect(await page.locator('#d-history li').first().textContent()).toContain('14 ms');
      await page.waitForTimeout(2500); // a couple of traffic samples
      await page.screenshot({ path: join(artifacts, 'web-guest.png') });
      await page.keyboard.press('Escape');
      await page.locator('#detail[open]').waitFor({ state: 'detached' });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('exposes /metrics in the Prometheus text format, matching the BUs this test sent', async () => {
    // K malformed Mobility Headers: a BU header with no room for its fields.
    for (let i = 0; i < 25; i++) peers.a!.send({ cmd: 'send', hex: '3b00050000000000', dst: HA });
    tally.malformed += 25;
    await waitFor(async () => {
      const h = await get(viaA, '/api/v1/health');
      return Object.values(h.body.counters.malformed as Record<string, number>).reduce((a, b) => a + b, 0) >= 25;
    }, 3000);
    const r = await apiRequest(viaA, 'GET', '/metrics', { accept: 'text/plain' });
    expect(r.status).toBe(200);
    const m = parsePrometheus(String(r.body));
    const acks = m.get('roam6_ha_binding_acks_total');
    expect(acks?.type).toBe('counter');
    for (const [status, n] of tally.acks) expect(sum(acks, (s) => s.labels['status'] === String(status)), `status ${status}`).toBe(n);
    expect(sum(acks)).toBe([...tally.acks.values()].reduce((a, b) => a + b, 0));
    expect(sum(acks, (s) => s.labels['status'] === '135' && s.labels['reason'] === 'sequence number out of window')).toBe(tally.acks.get(135));
    expect(sum(m.get('roam6_ha_mh_malformed_total'))).toBe(tally.malformed);
    expect(sum(m.get('roam6_ha_bu_received_total'))).toBe([...tally.acks.values()].reduce((a, b) => a + b, 0) + tally.malformed);
    expect(m.get('roam6_ha_bindings')!.samples).toEqual(
      expect.arrayContaining([expect.objectContaining({ labels: { state: 'registered' }, value: 7 }), expect.objectContaining({ labels: { state: 'expiring' }, value: 0 })]),
    );
    const hist = m.get('roam6_ha_handover_duration_seconds')!;
    expect(hist.type).toBe('histogram');
    const moves = (await get(viaA, '/api/v1/moves?within=3600&limit=1000')).body.total as number;
    expect(hist.samples.find((s) => s.name.endsWith('_count'))!.value).toBe(moves);
    expect(hist.samples.find((s) => s.name.endsWith('_bucket') && s.labels['le'] === '+Inf')!.value).toBe(moves);
    expect(sum(m.get('roam6_ha_events_total'), (s) => s.labels['type'] === 'moved')).toBe(moves);
    expect(sum(m.get('roam6_ha_events_total'), (s) => s.labels['type'] === 'revoked')).toBe(1);
    expect(m.get('roam6_dataplane_packets_total')?.samples.map((s) => s.labels['direction']).sort()).toEqual(['rx', 'tx']);
    expect(m.get('roam6_dataplane_drops_total')?.samples.map((s) => s.labels['reason'])).toEqual(expect.arrayContaining(['no_binding', 'ingress', 'hold_overflow']));
    expect(sum(m.get('roam6_dataplane_up'))).toBe(1);
    expect(m.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(m.get('nodejs_heap_size_used_bytes')?.type).toBe('gauge');

    const health = await get(viaA, '/api/v1/health');
    expect(health.body).toMatchObject({ status: 'ok', live: true, ready: true, checks: { redis: { ok: true }, dataplane: { ok: true }, hosts: { ok: true } } });
    expect((await get(viaA, '/api/v1/ready')).status).toBe(200);
  });
});
