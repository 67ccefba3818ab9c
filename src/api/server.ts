/**
 * The HA's HTTP API (fastify), loopback by default. Everything under /api/v1 is described by
 * the OpenAPI document the HA serves at GET /api/v1/openapi.json (generated from the route
 * schemas by @fastify/swagger); docs/operations.md shows what each view answers.
 *
 *   GET    /api/v1/health            liveness and readiness (Redis reachable? data plane ok?)
 *   GET    /api/v1/ready             200 when ready, 503 when not (for load balancers)
 *   GET    /api/v1/bindings          filter (host, coa, prefix, q, state, expiringWithin, movedWithin),
 *                                    sort (guest, coa, host, updatedAt, expiresAt, lastMove), page
 *   GET    /api/v1/bindings/:guest   one guest's story: binding, MNPs, counters, handovers
 *   DELETE /api/v1/bindings/:guest   revoke (bearer token)
 *   POST   /api/v1/bindings/:guest/hold   hold its packets for a handover (bearer token)
 *   DELETE /api/v1/bindings/:guest/hold   end a hold now (bearer token)
 *   POST   /api/v1/bindings/:guest/hold/switch  the guest left: held packets to the next CoA now (bearer token)
 *   GET    /api/v1/moves             recent CoA changes across all guests, newest first
 *   GET    /api/v1/hosts             hosts from the heartbeats, with their CoA and binding count
 *   GET    /api/v1/events            Server-Sent Events: created, updated, moved, rejected, …
 *   GET    /metrics                  Prometheus text format
 *   GET    /                         the live web page (src/api/web/)
 *
 * Every input is validated by a JSON schema; a bad parameter is a 400 naming it. Reads are open
 * to loopback, the unix socket and `api.readNetworks`; writes always need the bearer token.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { rmSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { formatIpv6, tryParseIpv6, tryParsePrefix } from '../wire/ipv6.js';
import type { HomeAgent, HaEvent } from '../core/home-agent.js';
import type { HaDataplanePort } from '../ports/dataplane.js';
import type { Clock } from '../ports/clock.js';
import type { ListenAddress } from '../config/common.js';
import type { NetworkPrefix } from '../config/ha-config.js';
import {
  baStatusText,
  bindingView,
  handoverView,
  type BindingView,
  type HandoverDetailView,
  type RejectionView,
} from './binding-view.js';
import { GuestOrder, queryBindings, recentMoves, type SortKey } from './binding-query.js';
import { EventHub, EVENT_TYPES, type EventHubOptions, type StreamEventData, type StreamEventType } from './event-stream.js';
import { HostMap, withTimeout, type HostSource } from './host-map.js';
import { AccessPolicy } from './access.js';
import { registerMigrationRoutes } from './migrations-routes.js';
import { registerQueueDashboard } from './queue-dashboard.js';
import type { Orchestration } from '../orchestrator/runtime.js';
import { createHaMetrics } from './metrics.js';
import { loadWebAssets } from './web-assets.js';
import {
  NO_CONTROL_CHARS,
  bindingDetailSchema,
  errorSchema,
  eventsQuery,
  guestParams,
  healthResponse,
  holdBody,
  holdResponse,
  hostsResponse,
  listQuery,
  listResponse,
  movesQuery,
  movesResponse,
} from './schemas.js';

export interface ApiOptions {
  readonly listen: ListenAddress;
  readonly token?: string;
  /** Networks that may read without the token (besides loopback and the unix socket). */
  readonly readNetworks?: readonly NetworkPrefix[];
  readonly startedAt: number;
  readonly events?: EventHubOptions;
  /** How often the CoA → host map is refreshed from the heartbeats. */
  readonly hostRefreshMs?: number;
}

/** A finished migration as the orchestrator recorded it (orchestrator/outcomes.ts). */
export interface MigrationSummary {
  readonly from: string;
  readonly to: string;
  readonly newCoa: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly totalMs: number;
  readonly downtimeMs: number;
  readonly resumeToBaMs: number;
  readonly registrationMs: number;
}

export interface ApiComponents {
  readonly ha: HomeAgent;
  readonly dataplane: HaDataplanePort;
  readonly clock: Clock;
  /** Host heartbeats (RedisHostRegistry), for CoA → host. */
  readonly hosts?: HostSource;
  /** Finished migrations (MigrationOutcomes), for handover durations. */
  readonly migrations?: { recent(guest: string): Promise<readonly MigrationSummary[]> };
  /** Round trip to Redis, for readiness. */
  readonly redisPing?: () => Promise<unknown>;
  /** When given, POST /api/v1/migrations and friends drive the orchestrator's queue. */
  readonly orchestration?: Orchestration;
}

interface ListQuery {
  host?: string;
  coa?: string;
  prefix?: string;
  q?: string;
  state?: 'registered' | 'expiring';
  expiringWithin?: number;
  movedWithin?: number;
  sort: SortKey;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

const REJECTIONS_KEPT = 10_000;
/** Largest request body, bytes: a migration plan of a few hundred guests. Bigger is a 413. */
export const BODY_LIMIT = 64 * 1024;
/** Longest path parameter the router takes (see routerOptions below). */
const MAX_PARAM_LENGTH = 1024;
/** Methods that only read; everything else is a write and needs the bearer token. */
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

export async function startApi(opts: ApiOptions, c: ApiComponents): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // Longer than any path parameter the schemas accept (guest ids 253, job ids 300), so an
    // over-long one gets the schema's 400 naming it; past this the router answers 414.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(schemaErrorMessage(errors, dataVar)),
    // Malformed URLs (bad %-escapes, over-long path parameters), answered before routing.
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode ?? 400;
      const message =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? `a path parameter is longer than ${MAX_PARAM_LENGTH} characters`
          : err.code === 'FST_ERR_BAD_URL'
            ? 'the URL path is not valid (a bad %-escape?)'
            : err.message;
      void (reply as FastifyReply).status(status).send({ error: errorName(status), message });
    },
  });
  // JSON bodies only: no text/plain parser, so another content type is a 415 naming it.
  app.removeContentTypeParser('text/plain');
  const access = new AccessPolicy(opts.readNetworks ?? [], opts.token);
  const events = new EventHub(opts.events);
  const hosts = new HostMap(c.hosts, opts.hostRefreshMs);
  const metrics = createHaMetrics({ ha: c.ha, dataplane: c.dataplane, clock: c.clock, events });
  const rejections = new Map<string, RejectionView>();
  const guestOrder = new GuestOrder(c.ha.cache);
  const iso = (ms: number) => new Date(ms).toISOString();

  const unsubscribe = c.ha.subscribe((e: HaEvent) => {
    if (e.type !== 'updated' && e.type !== 'moved' && e.type !== 'rejected' && e.type !== 'held' && e.type !== 'released') guestOrder.invalidate();
    if (e.type === 'rejected' && e.status !== undefined) {
      rejections.delete(e.guest);
      rejections.set(e.guest, { status: e.status, statusText: baStatusText(e.status), detail: e.detail ?? null, at: iso(e.at) });
      if (rejections.size > REJECTIONS_KEPT) rejections.delete(rejections.keys().next().value as string);
    }
    if (e.type === 'moved' && e.durationMs !== undefined) metrics.observeHandover(e.durationMs);
    const data: Record<string, unknown> = { type: e.type, guest: e.guest, at: iso(e.at) };
    if (e.coa !== undefined) Object.assign(data, { coa: e.coa, host: hosts.hostOf(e.coa) });
    if (e.from !== undefined) Object.assign(data, { from: e.from, fromHost: hosts.hostOf(e.from) });
    if (e.seq !== undefined) data['seq'] = e.seq;
    if (e.status !== undefined) Object.assign(data, { status: e.status, statusText: baStatusText(e.status) });
    if (e.detail !== undefined) data['detail'] = e.detail;
    if (e.durationMs !== undefined) data['durationMs'] = e.durationMs;
    if (e.packets !== undefined) data['packets'] = e.packets;
    if (e.type === 'released' && e.packets !== undefined) metrics.observeHoldRelease(e.packets);
    events.publish(data as StreamEventData);
  });
  await hosts.start();
  app.addHook('onClose', async () => {
    unsubscribe();
    hosts.stop();
    events.close();
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string; validation?: unknown }, req, reply) => {
    const status = err.statusCode ?? 500;
    let message = err.message ?? 'internal error';
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = `the request body is larger than the API's limit of ${BODY_LIMIT} bytes`;
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') message = `content type ${JSON.stringify(req.headers['content-type'] ?? '')} is not supported: send application/json`;
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') message = 'the body is empty but the content type is application/json';
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') message = 'the body is not valid JSON (or has a "__proto__" or "constructor.prototype" key)';
    void reply.status(status).send({ error: errorName(status), message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: 'not found', message: `no such endpoint: ${req.method} ${req.url.split('?')[0]} (see /api/v1/openapi.json)` });
  });

  // Before routing and before any body is read: writes need the token (every route, the queue
  // dashboard's too, and unknown paths alike); reads need loopback, the unix socket,
  // api.readNetworks, or the token.
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    if (!READ_METHODS.has(req.method)) {
      const no = access.writeDenial(req.headers.authorization);
      if (!no) return;
      await reply.status(no.status).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: no.message });
      return;
    }
    if (access.sourceMayRead(req.socket.remoteAddress) || access.tokenValid(req.headers.authorization)) return;
    await reply.status(403).send({
      error: 'forbidden',
      message: `reads from ${req.socket.remoteAddress ?? 'this address'} are not allowed: add its network to api.readNetworks, or send the bearer token`,
    });
  });

  // Ajv coerces "1e400" or "Infinity" to Infinity and then skips minimum/maximum for it (they
  // only test finite numbers), so a non-finite number would reach the handlers: refuse it here.
  app.addHook('preHandler', async (req, reply) => {
    const q = req.query as Record<string, unknown> | undefined;
    if (!q || typeof q !== 'object') return;
    for (const [k, v] of Object.entries(q)) {
      if (typeof v === 'number' && !Number.isFinite(v)) {
        await reply.status(400).send({ error: 'bad request', message: `query parameter ${k}: must be a finite number` });
        return;
      }
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'roam6 Home Agent API',
        version: '1',
        description: 'Per-guest bindings at the Home Agent. Reads are open to loopback and api.readNetworks; writes need the bearer token.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });

  if (c.orchestration) {
    registerMigrationRoutes(app, c.orchestration);
    await registerQueueDashboard(app, c.orchestration, access, hosts);
  }

  const r400 = { 400: errorSchema };
  const tags = (t: string) => [t];

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const health = async () => {
    const checks: Record<string, { ok: boolean; detail?: string; latencyMs?: number }> = {};
    if (c.redisPing) {
      const t0 = performance.now();
      try {
        await withTimeout(c.redisPing(), 1000);
        checks['redis'] = { ok: true, latencyMs: Math.round((performance.now() - t0) * 100) / 100 };
      } catch (e) {
        checks['redis'] = { ok: false, detail: e instanceof Error ? e.message : String(e) };
      }
    } else checks['redis'] = { ok: true, detail: 'not used (redis.enabled false)' };
    let dp: Record<string, unknown> | null = null;
    try {
      dp = { ...(await withTimeout(c.dataplane.stats(), 1000)) };
      const running = dp['running'] !== false;
      checks['dataplane'] = running ? { ok: true, detail: String(dp['backend']) } : { ok: false, detail: `${String(dp['backend'])} data plane is not running` };
    } catch (e) {
      checks['dataplane'] = { ok: false, detail: e instanceof Error ? e.message : String(e) };
    }
    checks['hosts'] = !hosts.enabled
      ? { ok: true, detail: 'no host heartbeats (Redis off)' }
      : hosts.lastError
        ? { ok: false, detail: `host heartbeats unreadable: ${hosts.lastError}` }
        : { ok: true, detail: `${hosts.list().length} host(s) known` };
    const ready = checks['redis']!.ok && checks['dataplane']!.ok;
    return {
      status: ready ? 'ok' : 'degraded',
      live: true,
      ready,
      uptimeSec: Math.round((c.clock.now() - opts.startedAt) / 1000),
      bindings: c.ha.cache.size,
      checks,
      dataplane: dp,
      counters: c.ha.counters,
      events: { clients: events.clientCount, droppedClients: events.droppedClients },
    };
  };

  app.get('/api/v1/health', { schema: { tags: tags('health'), summary: 'Liveness, and a readiness view (Redis, data plane, host heartbeats)', response: { 200: healthResponse } } }, health);
  app.get('/api/v1/ready', { schema: { tags: tags('health'), summary: '200 when ready to serve, 503 when a dependency fails', response: { 200: healthResponse, 503: healthResponse } } }, async (_req, reply) => {
    const h = await health();
    return reply.status(h.ready ? 200 : 503).send(h);
  });

  app.get<{ Querystring: ListQuery }>(
    '/api/v1/bindings',
    {
      schema: {
        tags: tags('bindings'),
        summary: 'Per-guest bindings: filter, sort, page',
        description: 'Filters combine (AND). `prefix` answers "who owns this address?" by longest match over the registered MNPs.',
        querystring: listQuery,
        response: { 200: listResponse, ...r400 },
      },
    },
    async (req, reply) => {
      const q = req.query;
      let prefix: Uint8Array | undefined;
      if (q.prefix !== undefined) {
        prefix = tryParseIpv6(q.prefix) ?? tryParsePrefix(q.prefix, { allowHostBits: true })?.addr;
        if (!prefix) return reply.status(400).send({ error: 'bad request', message: `query parameter prefix: ${JSON.stringify(q.prefix)} is not an IPv6 address or prefix` });
      }
      let coa: string | undefined;
      if (q.coa !== undefined) {
        const a = tryParseIpv6(q.coa);
        if (!a) return reply.status(400).send({ error: 'bad request', message: `query parameter coa: ${JSON.stringify(q.coa)} is not an IPv6 address` });
        coa = formatIpv6(a);
      }
      const now = c.clock.now();
      const { total, page } = queryBindings(
        c.ha.cache,
        {
          ...(q.host !== undefined ? { host: q.host } : {}),
          ...(coa !== undefined ? { coa } : {}),
          ...(prefix !== undefined ? { prefix } : {}),
          ...(q.q !== undefined ? { q: q.q } : {}),
          ...(q.state !== undefined ? { state: q.state } : {}),
          ...(q.expiringWithin !== undefined ? { expiringWithinSec: q.expiringWithin } : {}),
          ...(q.movedWithin !== undefined ? { movedWithinSec: q.movedWithin } : {}),
          sort: q.sort,
          order: q.order,
          limit: q.limit,
          offset: q.offset,
        },
        now,
        hosts,
        guestOrder,
      );
      return { total, offset: q.offset, limit: q.limit, sort: q.sort, order: q.order, bindings: page.map((b) => bindingView(b, now, hosts.hostOf)) };
    },
  );

  app.get<{ Params: { guest: string } }>(
    '/api/v1/bindings/:guest',
    {
      schema: {
        tags: tags('bindings'),
        summary: "One guest's story: binding, MNPs, BU and data-plane counters, handover history",
        params: guestParams,
        response: { 200: bindingDetailSchema, 404: errorSchema, ...r400 },
      },
    },
    async (req, reply) => {
      const b = c.ha.cache.get(req.params.guest);
      if (!b) return reply.status(404).send({ error: 'not found', message: `no binding for guest ${req.params.guest}` });
      const now = c.clock.now();
      const [counters, migrations] = await Promise.all([
        c.dataplane.counters(b.guest).catch(() => null),
        c.migrations && b.history?.length ? withTimeout(c.migrations.recent(b.guest), 1000).catch(() => []) : Promise.resolve([]),
      ]);
      // Each finished migration belongs to the latest move to its new CoA inside its time span
      // (a second of slack for clocks on different machines).
      const records = b.history ?? [];
      const matched = new Map<number, MigrationSummary>();
      for (const m of [...migrations].sort((x, y) => y.finishedAt - x.finishedAt)) {
        for (let i = records.length - 1; i >= 0; i--) {
          const h = records[i]!;
          if (!matched.has(i) && h.to === m.newCoa && h.at >= m.startedAt - 1000 && h.at <= m.finishedAt + 1000) {
            matched.set(i, m);
            break;
          }
        }
      }
      const history: HandoverDetailView[] = records.map((h, i) => {
        const m = matched.get(i);
        const v = handoverView(h, hosts.hostOf);
        return {
          ...v,
          durationMs: m ? m.resumeToBaMs : v.haMs,
          durationSource: m ? 'orchestrator' : v.haMs !== null ? 'ha' : null,
          migration: m
            ? { fromHost: m.from, toHost: m.to, totalMs: m.totalMs, pauseMs: m.downtimeMs, resumeToBaMs: m.resumeToBaMs, registrationMs: m.registrationMs, finishedAt: iso(m.finishedAt) }
            : null,
        };
      });
      const view: BindingView = {
        ...bindingView(b, now, hosts.hostOf),
        history,
        bus: { accepted: b.counters?.accepted ?? 0, rejected: b.counters?.rejected ?? 0, dropped: b.counters?.dropped ?? 0 },
        lastRejection: rejections.get(b.guest) ?? null,
        dataplane: counters,
      };
      return view;
    },
  );

  app.delete<{ Params: { guest: string } }>(
    '/api/v1/bindings/:guest',
    {
      schema: {
        tags: tags('bindings'),
        summary: 'Revoke a binding: remove its forwarding and the binding (needs the bearer token)',
        security: [{ bearer: [] }],
        params: guestParams,
        response: { 204: { type: 'null', description: 'revoked' }, 401: errorSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req, reply) => {
      // The token was checked in the onRequest hook.
      const removed = await c.ha.revoke(req.params.guest);
      if (!removed) return reply.status(404).send({ error: 'not found', message: `no binding for guest ${req.params.guest}` });
      return reply.status(204).send();
    },
  );

  app.post<{ Params: { guest: string }; Body: { nextCoa?: string; maxMs?: number; maxPackets?: number } }>(
    '/api/v1/bindings/:guest/hold',
    {
      schema: {
        tags: tags('bindings'),
        summary: "Hold the guest's packets for a handover until the BU from its new host (needs the bearer token)",
        description:
          'The source agent calls this as the guest pauses. The packets go, in order, to the new CoA when its BU moves the binding, or to the CoA of that moment after maxMs. Packets from nextCoa pass the ingress check meanwhile. A data plane that cannot buffer (kernel) answers held: false.',
        security: [{ bearer: [] }],
        params: guestParams,
        body: holdBody,
        response: { 200: holdResponse, 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req, reply) => {
      // The token was checked in the onRequest hook.
      const next = req.body.nextCoa === undefined ? undefined : tryParseIpv6(req.body.nextCoa);
      if (next === null) return reply.status(400).send({ error: 'bad request', message: `body nextCoa: not an IPv6 address: ${req.body.nextCoa}` });
      const r = await c.ha.holdForHandover(req.params.guest, {
        maxMs: req.body.maxMs ?? 2000,
        maxPackets: req.body.maxPackets ?? 4096,
        ...(next ? { nextCoa: next } : {}),
      });
      if (!r.held && r.reason === 'no-binding') return reply.status(404).send({ error: 'not found', message: `no binding for guest ${req.params.guest}` });
      return r;
    },
  );

  app.delete<{ Params: { guest: string } }>(
    '/api/v1/bindings/:guest/hold',
    {
      schema: {
        tags: tags('bindings'),
        summary: 'End a hold now (the migration failed before the switch): the packets go to the current CoA',
        security: [{ bearer: [] }],
        params: guestParams,
        response: { 200: { type: 'object', required: ['released'], properties: { released: { type: 'integer' } } }, 401: errorSchema, 403: errorSchema },
      },
    },
    async (req, reply) => {
      // The token was checked in the onRequest hook.
      return { released: await c.ha.releaseHold(req.params.guest) };
    },
  );

  app.post<{ Params: { guest: string } }>(
    '/api/v1/bindings/:guest/hold/switch',
    {
      schema: {
        tags: tags('bindings'),
        summary: 'The guest has left its old host: send what is held, and what follows, to the next CoA now (needs the bearer token)',
        description:
          "The source agent calls this when its hypervisor has handed the guest's last state over. The HA forwards to the hold's nextCoa without waiting for the BU from there (which then confirms); a refresh from the old CoA meanwhile does not pull the forwarding back. The binding shows the old CoA until that BU.",
        security: [{ bearer: [] }],
        params: guestParams,
        response: {
          200: {
            type: 'object',
            required: ['switched'],
            properties: { switched: { type: 'boolean' }, coa: { type: 'string' }, packets: { type: 'integer' }, reason: { type: 'string', enum: ['no-hold', 'no-next-coa'] } },
          },
          401: errorSchema,
          403: errorSchema,
        },
      },
    },
    async (req, reply) => {
      // The token was checked in the onRequest hook.
      return c.ha.switchHold(req.params.guest);
    },
  );

  app.get<{ Querystring: { within: number; guest?: string; host?: string; limit: number } }>(
    '/api/v1/moves',
    {
      schema: {
        tags: tags('bindings'),
        summary: 'Recent CoA changes across all guests, newest first (from the bindings’ handover histories)',
        querystring: movesQuery,
        response: { 200: movesResponse, ...r400 },
      },
    },
    async (req) => {
      const q = req.query;
      const since = c.clock.now() - q.within * 1000;
      const { total, moves } = recentMoves(c.ha.cache, since, q.limit, {
        ...(q.guest !== undefined ? { guest: q.guest } : {}),
        ...(q.host !== undefined ? { coas: hosts.coasOf(q.host) } : {}),
      });
      return { total, moves: moves.map((m) => ({ guest: m.guest, ...handoverView(m, hosts.hostOf) })) };
    },
  );

  app.get('/api/v1/hosts', { schema: { tags: tags('hosts'), summary: 'Hosts from the heartbeats in Redis, with their CoA and how many bindings point at it', response: { 200: hostsResponse } } }, async () => {
    const perCoa = new Map<string, number>();
    for (const b of c.ha.cache.values()) perCoa.set(b.coa, (perCoa.get(b.coa) ?? 0) + 1);
    return {
      source: hosts.enabled ? 'redis' : 'none',
      hosts: hosts.list().map((h) => {
        let n = 0;
        for (const coa of hosts.coasOf(h.host)) n += perCoa.get(coa) ?? 0;
        return { host: h.host, coa: h.coa, alive: h.alive, lastSeen: h.lastSeen === null ? null : iso(h.lastSeen), bindings: n };
      }),
    };
  });

  app.get<{ Querystring: { types?: string; guest?: string } }>(
    '/api/v1/events',
    {
      schema: {
        tags: tags('events'),
        summary: 'Server-Sent Events: created, updated, moved, deregistered, expired, revoked, rejected (once per BU answered with status 128 or more, 146 included), held, released',
        description:
          'text/event-stream. Each event has `id: <boot>.<n>`, `event: <type>` and JSON data {type, guest, at, coa, host, from, fromHost, seq, status, statusText, detail, durationMs, packets}. ' +
          'Reconnect with Last-Event-ID to get what you missed; a `reset` event means refetch. A `hello` event opens the stream; `: ping` comments keep it alive. Slow readers are dropped.',
        querystring: eventsQuery,
        response: { 200: { type: 'string', description: 'text/event-stream' }, ...r400 },
      },
    },
    (req, reply) => {
      const types = req.query.types ? new Set(req.query.types.split(',') as StreamEventType[]) : undefined;
      reply.hijack();
      const ok = events.attach(req.raw, reply.raw, { ...(types ? { types } : {}), ...(req.query.guest ? { guest: req.query.guest } : {}) }, {
        at: iso(c.clock.now()),
        bindings: c.ha.cache.size,
        types: types ? [...types] : [...EVENT_TYPES],
      });
      if (!ok) {
        reply.raw.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
        reply.raw.end(JSON.stringify({ error: 'unavailable', message: 'too many event-stream clients' }));
      }
    },
  );

  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  // The web page: plain files from src/api/web, from memory.
  const assets = loadWebAssets();
  for (const [name, asset] of assets) {
    const paths = name === 'index.html' ? ['/', '/index.html'] : [`/${name}`];
    for (const path of paths) {
      app.get(path, { schema: { hide: true } }, async (req, reply) => {
        void reply
          .header('etag', asset.etag)
          .header('cache-control', 'no-cache')
          .header('x-content-type-options', 'nosniff')
          .header('referrer-policy', 'no-referrer');
        if (name.endsWith('.html')) {
          void reply.header(
            'content-security-policy',
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
          );
        }
        if (req.headers['if-none-match'] === asset.etag) return reply.status(304).send();
        return reply.type(asset.type).send(asset.body);
      });
    }
  }

  if ('path' in opts.listen) {
    rmSync(opts.listen.path, { force: true }); // a stale socket from a killed process
    await app.listen({ path: opts.listen.path });
  } else {
    await app.listen({ host: opts.listen.host, port: opts.listen.port });
  }
  return app;
}

/** The `error` field: "bad request", "payload too large", …; "internal error" for any 5xx. */
function errorName(status: number): string {
  if (status >= 500) return 'internal error';
  return (STATUS_CODES[status] ?? 'error').toLowerCase();
}

interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** "query parameter limit: must be >= 1", "unknown query parameter \"lmit\"", "body field plan.0.to: is required", … */
export function schemaErrorMessage(errors: readonly SchemaError[], dataVar: string): string {
  const where = dataVar === 'querystring' ? 'query parameter' : dataVar === 'params' ? 'path parameter' : dataVar === 'body' ? 'body field' : dataVar;
  const e = errors[0];
  if (!e) return `invalid ${dataVar}`;
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const under = (child: unknown) => (path ? `${path}.${String(child)}` : String(child));
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown ${where} ${JSON.stringify(under(e.params['additionalProperty']))}`;
    case 'required':
      return `${where} ${under(e.params['missingProperty'])}: is required`;
    case 'enum': {
      const allowed = (e.params['allowedValues'] as unknown[] | undefined) ?? [];
      return `${where} ${path}: must be one of ${allowed.map(String).join(', ')}`;
    }
    case 'pattern':
      if (path === 'types') return `${where} types: must be a comma-separated list of ${EVENT_TYPES.join(', ')}`;
      if (e.params['pattern'] === NO_CONTROL_CHARS) return `${where} ${path}: must not contain control characters (NUL, newline, …)`;
      break;
    case 'false schema':
      return `${where} ${path}: is not allowed here`;
    case 'type':
      if (path === '' && dataVar === 'body') return `the body must be a JSON ${String(e.params['type'])}`;
      break;
  }
  return `${where} ${path}: ${e.message ?? 'is invalid'}`;
}
