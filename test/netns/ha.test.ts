/**
 * The Home Agent as an operator runs it: `roam6 ha --config` in its own namespace, a real
 * redis-server, two hosts on different /64s sending real BUs through raw sockets, and the
 * HTTP API read over its unix socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { NetnsLab, canUseNetns, waitFor } from '../helpers/netns.js';
import { JsonLinePeer } from '../helpers/peer.js';
import { mulberry32, randInt } from '../helpers/prng.js';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../src/wire/ipv6.js';
import { BaStatus, ntpFromUnixMs } from '../../src/wire/mh/index.js';
import { buildBindingUpdate, checkBindingAck } from '../../src/core/binding-update-builder.js';
import { apiRequest } from '../../src/cli/api-client.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/platform/redis/embedded.js';
import type { SecurityAssociation } from '../../src/security/mn-ha-auth.js';

const HA = '2001:db8:1::2';
const A = '2001:db8:a::2';
const B = '2001:db8:b::2';
const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;
const N_GUESTS = 1000;

interface G { id: string; mnp: string; sa: SecurityAssociation }
const guests: G[] = Array.from({ length: N_GUESTS }, (_, i) => ({
  id: `g${i}@lab.roam6`,
  mnp: `2001:db8:1${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16)}::/64`,
  sa: { spi: 4096 + i, algorithm: 'hmac-sha1-96', key: Uint8Array.from({ length: 16 }, (_, k) => (k * 31 + i) & 0xff) },
}));
const g1 = guests[1]!;
const g2 = guests[2]!;

describe.skipIf(!canUseNetns)('roam6 ha in namespaces', () => {
  const lab = new NetnsLab('ha');
  const dir = mkdtempSync(join(tmpdir(), 'roam6-ha-'));
  const api = `unix:${join(dir, 'ha.sock')}`;
  const configFile = join(dir, 'ha.json');
  let redis: EmbeddedRedis;
  let ha: ChildProcess;
  let haLog = '';
  const peers: Record<string, JsonLinePeer> = {};

  const startHa = async () => {
    haLog = '';
    ha = lab.spawn('ha', process.execPath, [BIN, 'ha', '--config', configFile], { env: { ...process.env, ROAM6_LOG_LEVEL: 'info' } });
    ha.stderr!.on('data', (d: Buffer) => (haLog += d.toString()));
    await waitFor(async () => (await apiRequest(api, 'GET', '/api/v1/health').catch(() => null))?.status === 200, 15_000, 100).catch((e) => {
      throw new Error(`HA did not come up: ${String(e)}\n${haLog}`);
    });
  };

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

    redis = await startEmbeddedRedis({ persist: true });
    writeFileSync(
      configFile,
      JSON.stringify({
        addresses: [HA],
        servedPrefixes: ['2001:db8:100::/40'],
        replayProtection: { requireTimestamp: false, windowMs: 7000 },
        rateLimit: { perSec: 200, burst: 400 },
        dataplane: { backend: 'kernel' },
        api: { listen: api, token: 'test-token-0123456789' },
        redis: { url: redis.url },
        guests: guests.map((g) => ({ id: g.id, mnps: [g.mnp], sas: [{ spi: g.sa.spi, key: Buffer.from(g.sa.key).toString('hex') }] })),
      }),
    );
    await startHa();
    for (const [role, addr] of [['a', A], ['b', B]] as const) {
      peers[role] = JsonLinePeer.spawn(lab, role, 'raw-socket-peer.mjs', [JSON.stringify({ protocol: 135, bindAddress: addr })]);
      expect(await peers[role]!.next((e) => e.ev === 'ready', 5000)).not.toBeNull();
    }
  }, 60_000);

  afterAll(async () => {
    await lab.destroy();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Send a BU from a host and return the verified BA (or null when the HA stays silent). */
  async function register(host: 'a' | 'b', g: G, seq: number, opts: { sa?: SecurityAssociation; mnps?: string[]; lifetimeSec?: number; timestamp?: bigint } = {}) {
    const coa = parseIpv6(host === 'a' ? A : B);
    const { bytes } = buildBindingUpdate({
      guest: g.id, sa: opts.sa ?? g.sa, seq, lifetimeSec: opts.lifetimeSec ?? 400, coa,
      mnps: (opts.mnps ?? [g.mnp]).map((p) => parsePrefix(p)), ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
    });
    const peer = peers[host]!;
    peer.clear(); // answers to earlier bulk sends are not this BU's answer
    peer.send({ cmd: 'send', hex: Buffer.from(bytes).toString('hex'), dst: HA });
    const msg = await peer.next((e) => e.ev === 'message', 1500);
    if (!msg) return null;
    expect(msg.address).toBe(HA);
    const check = checkBindingAck(Buffer.from(String(msg.hex), 'hex'), g.sa, coa as Ipv6Address);
    if (!check.ok) throw new Error(check.reason);
    return check.ack;
  }

  async function binding(g: G) {
    const r = await apiRequest(api, 'GET', `/api/v1/bindings/${encodeURIComponent(g.id)}`);
    return r.status === 200 ? (r.body as { coa: string; seq: number; history: { from: string; to: string }[]; mnps: string[] }) : null;
  }

  it('registers g1 from host A: BA 0 with R, the binding in the API, the route in the kernel', async () => {
    const ack = await register('a', g1, 100);
    expect(ack).toMatchObject({ status: 0, seq: 100, lifetimeUnits: 100, flags: { router: true } });
    expect(await binding(g1)).toMatchObject({ coa: A, seq: 100, mnps: [g1.mnp] });
    const routes = lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', 'all']);
    expect(routes).toMatch(new RegExp(`${g1.mnp.replace(/[.:/]/g, '\\$&')}.*encap seg6 mode encap.red segs 1 \\[ ${A} \\]`));
  });

  it('moves g1 to host B with a plain update; the API shows the handover', async () => {
    const ack = await register('b', g1, 101);
    expect(ack).toMatchObject({ status: 0, seq: 101 });
    const b = await binding(g1);
    expect(b).toMatchObject({ coa: B, seq: 101 });
    expect(b!.history.at(-1)).toMatchObject({ from: A, to: B });
    expect(lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', 'all'])).toContain(`segs 1 [ ${B} ]`);
  });

  it('answers forged, replayed, out-of-window and unauthorised BUs correctly and keeps the binding', async () => {
    // Stale BU from the old host: 135 carrying the last accepted sequence number.
    expect(await register('a', g1, 100)).toMatchObject({ status: BaStatus.SequenceNumberOutOfWindow, seq: 101 });
    // Wrong key for g1's SPI: 146.
    expect((await register('a', g1, 102, { sa: { ...g1.sa, key: new Uint8Array(16).fill(7) } }))?.status).toBe(BaStatus.AuthenticationFailed);
    // g2's valid key asking for g1's prefix: 142 (verified with g2's SA).
    const stolen = await register('a', g2, 1, { mnps: [g1.mnp] });
    expect(stolen?.status).toBe(BaStatus.NotAuthorizedForPrefix);
    // Unknown SPI: silently discarded.
    expect(await register('a', g1, 103, { sa: { spi: 999_999, algorithm: 'hmac-sha1-96', key: new Uint8Array(16) } })).toBeNull();
    // A timestamp 60 s off: 144.
    expect((await register('a', g1, 104, { timestamp: ntpFromUnixMs(Date.now() - 60_000) }))?.status).toBe(BaStatus.IdMismatch);
    // A de-registration from the old CoA: ignored.
    expect(await register('a', g1, 105, { lifetimeSec: 0 })).toBeNull();
    expect(await binding(g1)).toMatchObject({ coa: B, seq: 101 });
    expect(await binding(g2)).toBeNull();
  });

  it('survives a burst of malformed packets, counts them, and still answers a valid BU', async () => {
    const rand = mulberry32(42);
    for (let i = 0; i < 2000; i++) {
      const n = randInt(rand, 8, 64) & ~7;
      const bytes = Uint8Array.from({ length: n }, () => randInt(rand, 0, 255));
      if (i % 2) { bytes[0] = 59; bytes[2] = 5; }
      peers.a!.send({ cmd: 'send', hex: Buffer.from(bytes).toString('hex'), dst: HA });
    }
    await new Promise((r) => setTimeout(r, 500));
    peers.a!.clear();
    const health = await apiRequest(api, 'GET', '/api/v1/health');
    expect(health.status).toBe(200);
    const malformed = Object.values((health.body as { counters: { malformed: Record<string, number> } }).counters.malformed).reduce((a, b) => a + b, 0);
    expect(malformed).toBeGreaterThan(500);
    expect(ha.exitCode).toBeNull();
    expect(await register('a', g1, 110)).toMatchObject({ status: 0, seq: 110 });
  });

  it('DELETE needs the bearer token; a bad parameter is a 400 naming it', async () => {
    expect((await apiRequest(api, 'DELETE', `/api/v1/bindings/${g1.id}`)).status).toBe(403);
    expect((await apiRequest(api, 'DELETE', `/api/v1/bindings/${g1.id}`, { authorization: 'Bearer wrong-token-xxxxxxxxx' })).status).toBe(403);
    const bad = await apiRequest(api, 'GET', '/api/v1/bindings?limit=0');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('limit');
    const who = await apiRequest(api, 'GET', `/api/v1/bindings?prefix=${encodeURIComponent('2001:db8:100:1::42')}`);
    expect((who.body as { bindings: { guest: string }[] }).bindings.map((b) => b.guest)).toEqual([g1.id]);
  });

  it('roam6 bindings prints a table that fits the terminal, and JSON with --json', () => {
    const run = (args: string[], columns: string) =>
      spawnSync(process.execPath, [BIN, 'bindings', '--api', api, ...args], { encoding: 'utf8', env: { ...process.env, COLUMNS: columns } });
    const table = run([], '80');
    expect(table.status).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    // At 80 columns the least important columns (AGE, SEQ, HANDOVER) give way (docs/operations.md).
    expect(lines[0]).toMatch(/^GUEST\s+HOST\s+COA\s+MNPS\s+(SEQ\s+)?(AGE\s+)?LEFT\s+STATE\s+LAST MOVE(\s+HANDOVER)?$/);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(lines.find((l) => l.startsWith(g1.id))).toContain(A);
    expect(lines.at(-1)).toBe('1 of 1 binding(s)');
    const json = run(['--json', '--coa', A], '80');
    expect(JSON.parse(json.stdout)).toMatchObject({ total: 1, bindings: [{ guest: g1.id, coa: A }] });
    const down = spawnSync(process.execPath, [BIN, 'bindings', '--api', 'unix:/nonexistent.sock'], { encoding: 'utf8' });
    expect(down.status).toBe(1);
    expect(down.stderr.trim()).toBe("roam6: cannot reach the HA API at unix:/nonexistent.sock (ENOENT); is 'roam6 ha' running? (--api URL or ROAM6_API)");
  });

  it(`restores ${N_GUESTS} bindings from Redis after SIGKILL and forwards for them at once`, async () => {
    for (const [i, g] of guests.entries()) {
      const { bytes } = buildBindingUpdate({ guest: g.id, sa: g.sa, seq: 1000 + i, lifetimeSec: 600, coa: parseIpv6(A), mnps: [parsePrefix(g.mnp)] });
      peers.a!.send({ cmd: 'send', hex: Buffer.from(bytes).toString('hex'), dst: HA });
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(async () => (await apiRequest(api, 'GET', '/api/v1/bindings?limit=1')).body && ((await apiRequest(api, 'GET', '/api/v1/bindings?limit=1')).body as { total: number }).total === N_GUESTS, 15_000, 100);
    await new Promise((r) => setTimeout(r, 300)); // > one persistence interval
    ha.kill('SIGKILL');
    await waitFor(() => ha.exitCode !== null || ha.signalCode !== null, 5000);
    const routesBefore = lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', 'all']).split('\n').filter((l) => l.includes('encap seg6')).length;

    await startHa();
    const list = await apiRequest(api, 'GET', '/api/v1/bindings?limit=1000');
    expect((list.body as { total: number }).total).toBe(N_GUESTS);
    expect(haLog).toMatch(/"restored":1000/);
    const routes = lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', 'all']).split('\n').filter((l) => l.includes('encap seg6'));
    expect(routes.length).toBeGreaterThanOrEqual(N_GUESTS);
    expect(routesBefore).toBeGreaterThanOrEqual(N_GUESTS);
    // Sequence numbers survived: a replay of an old BU still gets 135.
    expect(await register('a', g1, 1001)).toMatchObject({ status: BaStatus.SequenceNumberOutOfWindow, seq: 1001 });
  }, 90_000);
});
