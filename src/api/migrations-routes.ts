/**
 * Migrations over HTTP, for control panels: the same BullMQ flow as `roam6 migrate` and
 * `roam6 rebalance`, behind the write token.
 *   POST /api/v1/migrations              {"guest", "to"} or {"plan": [{"guest", "to"}, …]} → 202
 *   GET  /api/v1/migrations/:id          state, phase, timings, outcome or failure
 *   GET  /api/v1/migrations/:id/events   Server-Sent Events: progress, then done or failed
 */
import type { FastifyInstance } from 'fastify';
import type { Job } from 'bullmq';
import type { Orchestration } from '../orchestrator/runtime.js';
import { NO_CONTROL_CHARS } from './schemas.js';
import { ORCHESTRATOR_QUEUE, type MigrateRequest, type MigrationOutcome } from '../orchestrator/jobs.js';

const name = (max: number) => ({ type: 'string', minLength: 1, maxLength: max, pattern: NO_CONTROL_CHARS }) as const;
const request = { type: 'object', required: ['guest', 'to'], additionalProperties: false, properties: { guest: name(254), to: name(63) } } as const;
/**
 * Either {"guest", "to"} or {"plan": [{"guest", "to"}, …]}. Written as if/then/else rather than
 * oneOf so that a 400 names the field at fault (oneOf reports the first branch's error, which
 * for a plan is "guest is required").
 */
const body = {
  type: 'object',
  additionalProperties: false,
  properties: { guest: name(254), to: name(63), plan: { type: 'array', minItems: 1, maxItems: 10_000, items: request } },
  if: { required: ['plan'] },
  then: { properties: { guest: false, to: false } },
  else: { required: ['guest', 'to'] },
} as const;
/**
 * The schema validator coerces types (query strings need it), which would turn {"to": 42} into
 * "42": names in a body must already be JSON strings. Returns the first field that is not.
 */
function nonStringName(body: unknown): string | null {
  const check = (o: unknown, at: string): string | null => {
    if (!o || typeof o !== 'object' || Array.isArray(o)) return null;
    for (const k of ['guest', 'to'] as const) {
      if (k in o && typeof (o as Record<string, unknown>)[k] !== 'string') return `${at}${k}`;
    }
    return null;
  };
  const top = check(body, '');
  if (top) return top;
  const plan = body && typeof body === 'object' ? (body as { plan?: unknown }).plan : undefined;
  if (Array.isArray(plan)) {
    for (const [i, item] of plan.entries()) {
      const bad = check(item, `plan.${i}.`);
      if (bad) return bad;
    }
  }
  return null;
}

const idParams = { type: 'object', required: ['id'], properties: { id: name(300) } } as const;

async function view(job: Job<MigrateRequest, MigrationOutcome>) {
  const state = await job.getState();
  return {
    id: job.id,
    guest: job.data.guest,
    to: job.data.to,
    state,
    progress: typeof job.progress === 'object' ? job.progress : null,
    outcome: state === 'completed' ? job.returnvalue : null,
    failedReason: state === 'failed' ? job.failedReason : null,
    createdAt: new Date(job.timestamp).toISOString(),
  };
}

export function registerMigrationRoutes(app: FastifyInstance, orch: Orchestration): void {
  app.post<{ Body: MigrateRequest | { plan: MigrateRequest[] } }>(
    '/api/v1/migrations',
    {
      schema: { tags: ['migrations'], summary: 'Request a migration, or a rebalance plan (needs the token)', body, security: [{ bearer: [] }] },
      preValidation: async (req, reply) => {
        const bad = nonStringName(req.body);
        if (bad) await reply.status(400).send({ error: 'bad request', message: `body field ${bad}: must be string` });
      },
    },
    async (req, reply) => {
      // The token was checked in the server's onRequest hook, before the body was read.
      const plan = 'plan' in req.body ? req.body.plan : [req.body];
      const jobs = [];
      for (const item of plan) jobs.push(await view(await orch.requestMigration(item)));
      return reply.status(202).send('plan' in req.body ? { migrations: jobs } : jobs[0]);
    },
  );

  app.get<{ Params: { id: string } }>('/api/v1/migrations/:id', { schema: { tags: ['migrations'], summary: 'One migration: state, phase, timings, outcome', params: idParams } }, async (req, reply) => {
    const job = (await orch.queue(ORCHESTRATOR_QUEUE).getJob(req.params.id)) as Job<MigrateRequest, MigrationOutcome> | undefined;
    if (!job) return reply.status(404).send({ error: 'not found', message: `no migration ${req.params.id}` });
    return view(job);
  });

  app.get<{ Params: { id: string } }>('/api/v1/migrations/:id/events', { schema: { tags: ['migrations'], summary: 'Server-Sent Events of one migration', params: idParams } }, async (req, reply) => {
    const q = orch.queue(ORCHESTRATOR_QUEUE);
    const job = (await q.getJob(req.params.id)) as Job<MigrateRequest, MigrationOutcome> | undefined;
    if (!job) return reply.status(404).send({ error: 'not found', message: `no migration ${req.params.id}` });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const events = await orch.queueEvents(ORCHESTRATOR_QUEUE);
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => jobId === job.id && send('progress', data);
    const onDone = ({ jobId }: { jobId: string }) => {
      if (jobId !== job.id) return;
      void q.getJob(jobId).then(async (j) => {
        if (j) send((await j.getState()) === 'completed' ? 'done' : 'failed', await view(j as Job<MigrateRequest, MigrationOutcome>));
        finish();
      });
    };
    const finish = () => {
      events.off('progress', onProgress);
      events.off('completed', onDone);
      events.off('failed', onDone);
      res.end();
    };
    events.on('progress', onProgress);
    events.on('completed', onDone);
    events.on('failed', onDone);
    req.raw.on('close', finish);
    const now = await view(job);
    send('state', now);
    if (now.state === 'completed' || now.state === 'failed') {
      send(now.state === 'completed' ? 'done' : 'failed', now);
      finish();
    }
  });
}
