/**
 * Guests' MN-HA keys stay where they belong: the registry in Redis. A lab runs with every
 * process at trace level, a guest is enrolled from the CLI, guests migrate through the queue
 * (CLI and HA API), a forged BU is refused, refreshes run while the event stream is read; then
 * every log, every read API answer of the HA and both agents, every CLI view, every other Redis
 * key (BullMQ jobs, bindings, heartbeats …) and the lab's own files are searched for each key,
 * as hex (either case) and as base64, and for the HA's API token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { canUseNetns, waitFor } from '../helpers/netns.js';
import { JsonLinePeer } from '../helpers/peer.js';
import { labDown, labUp, guestAddress, LAB_ADDR, type LabState } from '../../src/lab/lab.js';
import { apiRequest } from '../../src/cli/api-client.js';
import { connectRedis, type RedisHandle } from '../../src/platform/redis/connection.js';
import { RedisGuestRegistry } from '../../src/platform/redis/guest-registry.js';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { buildBindingUpdate, checkBindingAck } from '../../src/core/binding-update-builder.js';
import { parseIpv6, parsePrefix } from '../../src/wire/ipv6.js';
import { ntpFromUnixMs } from '../../src/wire/mh/index.js';
import type { AuthAlgorithm } from '../../src/security/mn-ha-auth.js';

const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;
const NAME = `x${process.pid % 100000}`;

/** Every text form a key could leak in. */
function forms(hex: string): string[] {
  const b = Buffer.from(hex, 'hex');
  return [hex.toLowerCase(), hex.toUpperCase(), b.toString('base64'), b.toString('base64url'), b.toString('base64').replace(/=+$/, '')];
}

/**
 * A GET over the API's unix socket that reads a streaming answer (SSE) until `stop()`.
 * `connected` resolves once the answer's head arrived.
 */
function readStream(api: string, path: string): { connected: Promise<void>; stop: () => string } {
  let text = '';
  let status = 0;
  let connect!: () => void;
  const connected = new Promise<void>((resolve) => (connect = resolve));
  const req = request({ socketPath: api.replace(/^unix:/, ''), path, method: 'GET', headers: { accept: 'text/event-stream' } }, (res) => {
    status = res.statusCode ?? 0;
    res.on('data', (d: Buffer) => (text += d.toString()));
    connect();
  });
  req.on('error', () => connect());
  req.end();
  return {
    connected,
    stop: () => {
      req.destroy();
      return `${status} ${text}`;
    },
  };
}

describe.skipIf(!canUseNetns)('keys never leave the registry: logs, API answers, CLI output, queue data', () => {
  let lab: LabState;
  let redis: RedisHandle;
  const logLevel = process.env.ROAM6_LOG_LEVEL;
  /** What was read, by where it came from. */
  const seen = new Map<string, string>();
  const keys = new Map<string, string>(); // guest → hex key
  const extra = { id: `cli@${NAME}.lab`, mnp: '2001:db8:1ff:1::/64', spi: 0x1ffff, key: randomBytes(20).toString('hex') };

  const env = () => ({ ...process.env, REDIS_URL: lab.redisUrl, ROAM6_API: lab.haApi });
  const roam6 = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: env(), timeout: 60_000 });
    seen.set(`roam6 ${args.join(' ')}`, `${r.stdout}\n${r.stderr}`);
    return r;
  };
  const get = async (base: string, path: string, what = `${base} GET ${path}`) => {
    const r = await apiRequest(base, 'GET', path);
    seen.set(what, typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
    return r;
  };

  /** BAs the HA sent with `status` (roam6_ha_binding_acks_total, every reason). */
  const haAcks = async (status: number): Promise<number> => {
    const text = String((await apiRequest(lab.haApi, 'GET', '/metrics')).body);
    let n = 0;
    for (const m of text.matchAll(/^roam6_ha_binding_acks_total\{([^}]*)\} (\d+)/gm)) if (m[1]!.includes(`status="${status}"`)) n += Number(m[2]);
    return n;
  };

  beforeAll(async () => {
    // Everything the daemons can say: trace level for every lab process.
    process.env.ROAM6_LOG_LEVEL = 'trace';
    lab = await labUp({ name: NAME, guests: 3 });
    for (const g of lab.guests) await waitFor(() => guestAddress(g), 15_000, 100);
    redis = await connectRedis({ url: lab.redisUrl, name: 'test', log: () => {} });
  }, 90_000);

  afterAll(async () => {
    if (logLevel === undefined) delete process.env.ROAM6_LOG_LEVEL;
    else process.env.ROAM6_LOG_LEVEL = logLevel;
    await redis?.close();
    if (lab) await labDown(lab.name);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`r6lab-${NAME}-`);
  }, 30_000);

  it('after enrolment, migrations, a forged BU and refreshes, no key shows anywhere but the registry', async () => {
    // A guest enrolled from the CLI, its key on the command line.
    const add = roam6('guest', 'add', extra.id, '--mnp', extra.mnp, '--spi', String(extra.spi), '--key', extra.key, '--algorithm', 'hmac-sha256-128');
    expect(add.status, add.stderr).toBe(0);

    const registry = new RedisGuestRegistry(redis.client);
    for (const g of await registry.list()) keys.set(g.id, g.sas[0]!.key);
    expect(keys.size).toBe(4);
    expect(keys.get(extra.id)).toBe(extra.key);

    // Read the HA's event stream while things happen.
    const events = readStream(lab.haApi, '/api/v1/events');
    await events.connected;
    const acks146 = await haAcks(146);

    // A migration through the CLI, one through the HA API.
    const [g1, g2, g3] = lab.guests;
    const m1 = roam6('migrate', g1!.id, '--to', 'host-b', '--json');
    expect(m1.status, m1.stderr).toBe(0);
    const post = await apiRequest(lab.haApi, 'POST', '/api/v1/migrations', { authorization: `Bearer ${lab.haToken}` }, { guest: g2!.id, to: 'host-b' });
    expect(post.status, JSON.stringify(post.body)).toBe(202);
    seen.set('HA POST /api/v1/migrations', JSON.stringify(post.body));
    const id = (post.body as { id: string }).id;
    await waitFor(async () => ((await get(lab.haApi, `/api/v1/migrations/${encodeURIComponent(id)}`)).body as { state: string }).state === 'completed', 20_000, 100);
    const progress = readStream(lab.haApi, `/api/v1/migrations/${encodeURIComponent(id)}/events`);
    await progress.connected;
    await new Promise((r) => setTimeout(r, 300));
    seen.set('HA GET /api/v1/migrations/:id/events', progress.stop());

    // A forged BU for g3: its real SPI, a wrong key. The HA refuses it (146, under g3's real SA).
    const rec = (await registry.get(g3!.id))!;
    const real = { spi: rec.sas[0]!.spi, algorithm: rec.sas[0]!.algorithm as AuthAlgorithm, key: Uint8Array.from(Buffer.from(rec.sas[0]!.key, 'hex')) };
    const coa = parseIpv6(LAB_ADDR['host-a']);
    const peer = new JsonLinePeer(
      spawn('ip', ['netns', 'exec', lab.namespaces['host-a']!, process.execPath, new URL('../fixtures/raw-socket-peer.mjs', import.meta.url).pathname, JSON.stringify({ protocol: 135, bindAddress: LAB_ADDR['host-a'] })]),
    );
    try {
      expect(await peer.next((e) => e.ev === 'ready', 5000)).not.toBeNull();
      const { bytes } = buildBindingUpdate({
        guest: g3!.id, sa: { ...real, key: randomBytes(32) }, seq: 60_000, lifetimeSec: 400, coa, mnps: [parsePrefix(g3!.mnp)], timestamp: ntpFromUnixMs(Date.now()),
      });
      peer.send({ cmd: 'send', hex: Buffer.from(bytes).toString('hex'), dst: LAB_ADDR.ha });
      const msg = await peer.next((e) => e.ev === 'message', 3000);
      const check = checkBindingAck(Buffer.from(String(msg!.hex), 'hex'), real, coa);
      expect(check.ok && check.ack.status).toBe(146);
    } finally {
      peer.child.kill();
    }

    // Refreshes from both hosts, through the agents' APIs.
    for (const [host, g] of [['host-b', g1!], ['host-a', g3!]] as const) {
      const r = await apiRequest(lab.agentApis[host], 'POST', `/api/v1/guests/${encodeURIComponent(g.id)}/activate`);
      expect(r.status).toBe(200);
      seen.set(`agent ${host} POST activate`, JSON.stringify(r.body));
    }
    await new Promise((r) => setTimeout(r, 300));
    const stream = events.stop();
    seen.set('HA GET /api/v1/events', stream);
    // The stream saw what happened: both moves and the refreshes.
    expect(stream.match(/^event: moved$/gm)?.length).toBe(2);
    expect(stream).toContain('event: updated');
    expect(await haAcks(146)).toBe(acks146 + 1);
    // … and the forged BU: exactly one `rejected` event, with the status and why.
    const rejected = [...stream.matchAll(/^event: rejected\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);
    expect(rejected.filter((e) => e['status'] === 146)).toEqual([
      expect.objectContaining({ type: 'rejected', guest: g3!.id, status: 146, statusText: 'authentication failed', detail: 'authenticator does not verify', coa: LAB_ADDR['host-a'] }),
    ]);

    // Every read API of the HA …
    for (const path of ['/api/v1/health', '/api/v1/ready', '/api/v1/bindings', '/api/v1/bindings?state=registered&limit=1000', '/api/v1/moves', '/api/v1/hosts', '/metrics', '/api/v1/openapi.json', '/', '/queues']) {
      expect((await get(lab.haApi, path)).status, path).toBeLessThan(500);
    }
    for (const g of keys.keys()) await get(lab.haApi, `/api/v1/bindings/${encodeURIComponent(g)}`);
    for (const q of ['orchestrator', 'host-host-a', 'host-host-b']) {
      for (const status of ['latest', 'completed', 'failed', 'active', 'waiting']) {
        const r = await get(lab.haApi, `/queues/api/queues?activeQueue=${q}&status=${status}&page=1`);
        expect(r.status).toBe(200);
      }
    }
    // The board really showed job data (so the search below covers it).
    expect(seen.get(`${lab.haApi} GET /queues/api/queues?activeQueue=host-host-b&status=completed&page=1`)).toContain(g1!.id);
    // … of both agents …
    for (const host of ['host-a', 'host-b'] as const) {
      await get(lab.agentApis[host], '/api/v1/health');
      await get(lab.agentApis[host], '/api/v1/guests');
    }
    // … the CLI's views …
    for (const args of [['guest', 'list'], ['guest', 'list', '--json'], ['jobs'], ['jobs', '--json'], ['bindings'], ['bindings', '--json'], ['lab', 'status', '--name', NAME, '--json']]) {
      expect(roam6(...args).status, args.join(' ')).toBe(0);
    }
    for (const g of keys.keys()) {
      const show = roam6('guest', 'show', g);
      expect(show.status).toBe(0);
      // It still tells which SA the guest uses.
      expect(JSON.parse(show.stdout)).toMatchObject({ id: g, sas: [{ spi: g === extra.id ? extra.spi : expect.any(Number), algorithm: 'hmac-sha256-128' }] });
      roam6('binding', g, '--json');
    }

    // … every lab log (trace level) and file the lab wrote …
    for (const f of readdirSync(join(lab.dir, 'logs'))) seen.set(`log ${f}`, readFileSync(join(lab.dir, 'logs', f), 'utf8'));
    // The HA logged the forged BU once (not once more from the daemon), with its source and sequence number.
    const rejectedLines = seen.get('log ha.log')!.split('\n').filter((l) => l.includes('"binding update rejected"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rejectedLines.filter((l) => l['status'] === 146)).toEqual([
      expect.objectContaining({ guest: g3!.id, status: 146, src: LAB_ADDR['host-a'], seq: 60_000, spi: real.spi, detail: 'authenticator does not verify' }),
    ]);
    expect(Object.keys(Object.fromEntries(seen)).filter((w) => w.startsWith('log agent-'))).toHaveLength(2);
    for (const f of readdirSync(lab.dir)) {
      const p = join(lab.dir, f);
      if (statSync(p).isFile() && f.endsWith('.json')) seen.set(`lab file ${f}`, readFileSync(p, 'utf8'));
    }
    // … and Redis: every key but the registry's `guests` hash (BullMQ jobs and events, bindings,
    // guest state, heartbeats).
    const k = redisKeys();
    let scanned = 0;
    let cursor = '0';
    do {
      const [next, names] = await redis.client.scan(cursor, 'COUNT', 500);
      cursor = next;
      for (const name of names) {
        if (name === k.guests) continue;
        scanned++;
        const type = await redis.client.type(name);
        const dump =
          type === 'string' ? await redis.client.get(name)
          : type === 'hash' ? JSON.stringify(await redis.client.hgetall(name))
          : type === 'list' ? JSON.stringify(await redis.client.lrange(name, 0, -1))
          : type === 'set' ? JSON.stringify(await redis.client.smembers(name))
          : type === 'zset' ? JSON.stringify(await redis.client.zrange(name, '0', '-1', 'WITHSCORES'))
          : type === 'stream' ? JSON.stringify(await redis.client.xrange(name, '-', '+'))
          : '';
        seen.set(`redis ${name}`, dump ?? '');
      }
    } while (cursor !== '0');
    // The migrations' job data is among them.
    const jobData = [...seen].filter(([where, text]) => where.startsWith('redis ') && where.includes(':orchestrator:') && text.includes(g2!.id));
    expect(jobData.length).toBeGreaterThan(0);

    // The search.
    const leaks: string[] = [];
    for (const [guest, hex] of keys) {
      for (const form of forms(hex)) {
        for (const [where, text] of seen) if (text.includes(form)) leaks.push(`${guest}'s key (${form === hex ? 'hex' : form}) in ${where}`);
      }
    }
    for (const [where, text] of seen) if (!where.startsWith('lab file') && text.includes(lab.haToken)) leaks.push(`the HA token in ${where}`);
    const bytes = [...seen.values()].reduce((a, t) => a + t.length, 0);
    console.log(`searched ${seen.size} sources (${(bytes / 1024).toFixed(0)} KiB; ${scanned} Redis keys) for ${keys.size} keys in ${forms('00').length} forms each: ${leaks.length} found`);
    expect(leaks).toEqual([]);
    // The search can find one: the registry itself holds every key.
    const registryDump = JSON.stringify(await redis.client.hgetall(k.guests));
    for (const hex of keys.values()) expect(registryDump).toContain(hex);
  }, 90_000);
});
