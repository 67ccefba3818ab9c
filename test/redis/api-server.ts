/**
 * The HA's HTTP API in-process for tests that need a real socket and a real Redis but no
 * namespaces: a real HomeAgent (fake data plane, guests from memory), a redis-server from
 * RedisLab, the orchestrator's queues, host heartbeats, and `startApi` on 127.0.0.1:<free>.
 * Plus a raw HTTP/1.1 client for requests fetch() would tidy up (`..` segments, NUL bytes,
 * oversized headers).
 */
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { startApi } from '../../src/api/server.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../../src/core/home-agent.js';
import { DEFAULT_HA_POLICY } from '../../src/core/home-agent-policy.js';
import { buildBindingUpdate, checkBindingAck } from '../../src/core/binding-update-builder.js';
import { FakeHaDataplane } from '../../src/platform/fake/dataplane.js';
import { systemClock } from '../../src/platform/system-clock.js';
import { RedisHostRegistry } from '../../src/platform/redis/host-registry.js';
import type { RedisHandle } from '../../src/platform/redis/connection.js';
import { Orchestration } from '../../src/orchestrator/runtime.js';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../src/wire/ipv6.js';
import type { GuestPolicy } from '../../src/ports/guest-directory.js';
import { TestGuestDirectory, testGuest } from '../helpers/guests.js';
import { RedisLab } from './redis-helpers.js';

export const HA_ADDRESS = '2001:db8:1::2';
export const COA = { 'host-a': '2001:db8:a::2', 'host-b': '2001:db8:b::2' } as const;

export interface ApiUnderTest {
  readonly base: string;
  readonly port: number;
  readonly token: string;
  readonly api: FastifyInstance;
  readonly ha: HomeAgent;
  readonly redis: RedisHandle;
  readonly orch: Orchestration;
  readonly hosts: RedisHostRegistry;
  readonly guests: readonly GuestPolicy[];
  /** Send a BU for guest `i` from `host` and expect BA status 0. */
  register(i: number, host: keyof typeof COA, seq: number): Promise<void>;
  /** Heartbeat for a host (alive for a minute). */
  beat(host: string, coa: string): Promise<void>;
  close(): Promise<void>;
}

export async function startApiUnderTest(opts: {
  token: string;
  guests?: number;
  hostRefreshMs?: number;
  /** Host heartbeats already in Redis when the API starts. */
  hostsAtStart?: Record<string, string>;
}): Promise<ApiUnderTest> {
  const lab = new RedisLab();
  const server = await lab.server();
  const redis = await lab.connect({ url: server.url, name: 'roam6-api-test' });
  const guests = Array.from({ length: opts.guests ?? 2 }, (_, i) => testGuest(i + 1));
  const dataplane = new FakeHaDataplane();
  const ha = new HomeAgent(
    { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')] }, ...DEFAULT_HA_RUNTIME },
    { guests: new TestGuestDirectory(guests), dataplane, clock: systemClock },
  );
  await ha.start();
  const orch = new Orchestration(redis);
  const hosts = new RedisHostRegistry(redis.client);
  const beat = (host: string, coa: string) => hosts.beat({ host, coa, haAddress: HA_ADDRESS, guests: 0, at: Date.now() }, 60_000);
  for (const [host, coa] of Object.entries(opts.hostsAtStart ?? {})) await beat(host, coa);
  let api: FastifyInstance | undefined;
  try {
    api = await startApi(
      { listen: { host: '127.0.0.1', port: 0 }, token: opts.token, startedAt: Date.now(), hostRefreshMs: opts.hostRefreshMs ?? 100 },
      { ha, dataplane, clock: systemClock, hosts, orchestration: orch, redisPing: () => redis.client.ping() },
    );
  } catch (e) {
    await orch.close();
    await ha.stop();
    await lab.cleanup();
    throw e;
  }
  const address = api.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const app = api;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    token: opts.token,
    api: app,
    ha,
    redis,
    orch,
    hosts,
    guests,
    async register(i, host, seq) {
      const g = guests[i]!;
      const coa = parseIpv6(COA[host]) as Ipv6Address;
      const { bytes } = buildBindingUpdate({ guest: g.id, sa: g.sas[0]!, seq, lifetimeSec: 400, coa, mnps: g.mnps });
      const reply = await ha.handle(bytes, coa, parseIpv6(HA_ADDRESS) as Ipv6Address);
      if (!reply) throw new Error(`no BA for ${g.id}`);
      const check = checkBindingAck(reply.mh, g.sas[0]!, coa);
      if (!check.ok || check.ack.status !== 0) throw new Error(`BU of ${g.id} not accepted: ${check.ok ? check.ack.status : check.reason}`);
    },
    beat,
    async close() {
      await app.close();
      await orch.close();
      await ha.stop();
      await lab.cleanup();
    },
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The body as JSON, or undefined when it is not JSON. */
  readonly json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Send `head` (the request line and headers, without the final blank line) and `body` exactly as
 * given over a fresh TCP connection, and read one response until the server closes.
 */
export function rawRequest(port: number, head: string, body: Buffer | string = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const lines = head.replace(/\r?\n$/, '').split(/\r?\n/);
    if (!lines.some((l) => /^connection:/i.test(l))) lines.push('Connection: close');
    if (payload.length && !lines.some((l) => /^content-length:/i.test(l))) lines.push(`Content-Length: ${payload.length}`);
    sock.on('connect', () => {
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (payload.length) sock.write(payload);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    // The server may answer (413, 431) and close before the client has sent everything.
    sock.on('error', (e: NodeJS.ErrnoException) => (chunks.length && (e.code === 'ECONNRESET' || e.code === 'EPIPE') ? finish() : reject(e)));
    sock.on('end', finish);
    sock.setTimeout(10_000, () => sock.destroy(new Error(`no answer to ${lines[0]!.slice(0, 80)}`)));
    let done = false;
    function finish(): void {
      if (done) return;
      done = true;
      sock.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
      if (!m) return reject(new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      const headers: Record<string, string> = {};
      for (const l of m[2]!.split('\r\n')) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      let raw = m[3]!;
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) raw = dechunk(raw);
      const bodyText = Buffer.from(raw, 'latin1').toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(bodyText);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(m[1]), headers, body: bodyText, json });
    }
  });
}

function dechunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', i);
    if (eol < 0) return out;
    const n = parseInt(s.slice(i, eol), 16);
    if (!n) return out;
    out += s.slice(eol + 2, eol + 2 + n);
    i = eol + 2 + n + 2;
  }
}
