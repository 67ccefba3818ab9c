/**
 * The HA's HTTP API (fastify), loopback by default. Version 1 read endpoints:
 *   GET /api/v1/health
 *   GET /api/v1/bindings?coa=&prefix=&state=&limit=&offset=
 *   GET /api/v1/bindings/:guest
 * and one write endpoint, which needs the bearer token from the config:
 *   DELETE /api/v1/bindings/:guest   (revoke)
 * Every input is validated by a JSON schema; a bad parameter is a 400 naming it.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { formatIpv6, tryParseIpv6, tryParsePrefix } from '../wire/ipv6.js';
import type { HomeAgent } from '../core/home-agent.js';
import type { HaDataplanePort } from '../ports/dataplane.js';
import type { Clock } from '../ports/clock.js';
import { bindingView, type BindingView } from './binding-view.js';
import type { ListenAddress } from '../config/common.js';
import { rmSync } from 'node:fs';

export interface ApiOptions {
  readonly listen: ListenAddress;
  readonly token?: string;
  readonly startedAt: number;
}

export interface ApiComponents {
  readonly ha: HomeAgent;
  readonly dataplane: HaDataplanePort;
  readonly clock: Clock;
}

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    coa: { type: 'string', maxLength: 64 },
    prefix: { type: 'string', maxLength: 64, description: 'an address or prefix; returns the binding whose MNP covers it (longest match)' },
    state: { type: 'string', enum: ['registered', 'expiring'] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
} as const;

const guestParams = {
  type: 'object',
  required: ['guest'],
  properties: { guest: { type: 'string', minLength: 1, maxLength: 253 } },
} as const;

export async function startApi(opts: ApiOptions, c: ApiComponents): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
    const status = err.statusCode ?? 500;
    const message = err.message ?? 'internal error';
    void reply.status(status).send({ error: status === 400 ? 'bad request' : status === 500 ? 'internal error' : message, message });
  });

  app.get('/api/v1/health', async () => {
    const dp = await c.dataplane.stats();
    return {
      status: 'ok',
      uptimeSec: Math.round((c.clock.now() - opts.startedAt) / 1000),
      bindings: c.ha.cache.size,
      dataplane: dp,
      counters: c.ha.counters,
    };
  });

  app.get<{ Querystring: { coa?: string; prefix?: string; state?: string; limit: number; offset: number } }>(
    '/api/v1/bindings',
    { schema: { querystring: listQuery } },
    async (req, reply) => {
      const q = req.query;
      const now = c.clock.now();
      let rows: BindingView[];
      if (q.prefix !== undefined) {
        const addr = tryParseIpv6(q.prefix) ?? tryParsePrefix(q.prefix, { allowHostBits: true })?.addr;
        if (!addr) return reply.status(400).send({ error: 'bad request', message: `prefix: ${JSON.stringify(q.prefix)} is not an IPv6 address or prefix` });
        const b = c.ha.cache.lookup(addr);
        rows = b ? [bindingView(b, now)] : [];
      } else {
        let coa: string | undefined;
        if (q.coa !== undefined) {
          const a = tryParseIpv6(q.coa);
          if (!a) return reply.status(400).send({ error: 'bad request', message: `coa: ${JSON.stringify(q.coa)} is not an IPv6 address` });
          coa = formatIpv6(a);
        }
        rows = [];
        for (const b of c.ha.cache.values()) if (coa === undefined || b.coa === coa) rows.push(bindingView(b, now));
      }
      if (q.state) rows = rows.filter((r) => r.state === q.state);
      rows.sort((a, b) => (a.guest < b.guest ? -1 : a.guest > b.guest ? 1 : 0));
      return { total: rows.length, offset: q.offset, limit: q.limit, bindings: rows.slice(q.offset, q.offset + q.limit) };
    },
  );

  app.get<{ Params: { guest: string } }>('/api/v1/bindings/:guest', { schema: { params: guestParams } }, async (req, reply) => {
    const b = c.ha.cache.get(req.params.guest);
    if (!b) return reply.status(404).send({ error: 'not found', message: `no binding for guest ${req.params.guest}` });
    const view = bindingView(b, c.clock.now(), true);
    view.dataplane = await c.dataplane.counters(b.guest);
    return view;
  });

  app.delete<{ Params: { guest: string } }>('/api/v1/bindings/:guest', { schema: { params: guestParams } }, async (req, reply) => {
    if (!authorised(req.headers.authorization, opts.token)) {
      return reply.status(opts.token ? 403 : 401).header('www-authenticate', 'Bearer').send({
        error: 'unauthorized',
        message: opts.token ? 'a valid bearer token is required' : 'write operations are disabled: no api.token configured',
      });
    }
    const removed = await c.ha.revoke(req.params.guest);
    if (!removed) return reply.status(404).send({ error: 'not found', message: `no binding for guest ${req.params.guest}` });
    return reply.status(204).send();
  });

  if ('path' in opts.listen) {
    rmSync(opts.listen.path, { force: true }); // a stale socket from a killed process
    await app.listen({ path: opts.listen.path });
  } else {
    await app.listen({ host: opts.listen.host, port: opts.listen.port });
  }
  return app;
}

function authorised(header: string | undefined, token: string | undefined): boolean {
  if (!token || !header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}
