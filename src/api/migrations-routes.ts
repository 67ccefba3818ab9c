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
import { ORCHESTRATOR_QUEUE, type MigrateRequest, type MigrationOutcome } from '../orchestrator/jobs.js';
import type { AccessPolicy } from './access.js';

const request = { type: 'object', required: ['guest', 'to'], additionalProperties: false, properties: { guest: { type: 'string', minLength: 1, maxLength: 254 }, to: { type: 'string', minLength: 1, maxLength: 63 } } } as const;
const body = {
  oneOf: [
    request,
    { type: 'object', required: ['plan'], additionalProperties: false, properties: { plan: { type: 'array', minItems: 1, maxItems: 10_000, items: request } } },
  ],
} as const;
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 300 } } } as const;

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

export function registerMigrationRoutes(app: FastifyInstance, orch: Orchestration, access: AccessPolicy): void {
  const deny = (auth: string | undefined) =>
    access.tokenValid(auth)
      ? null
      : { status: access.writesEnabled ? 403 : 401, message: access.writesEnabled ? 'a valid bearer token is required' : 'write operations are disabled: no api.token configured' };

  app.post<{ Body: MigrateRequest | { plan: MigrateRequest[] } }>(
    '/api/v1/migrations',
    { schema: { tags: ['migrations'], summary: 'Request a migration, or a rebalance plan (needs the token)', body, security: [{ bearer: [] }] } },
    async (req, reply) => {
      const no = deny(req.headers.authorization);
      if (no) return reply.status(no.status).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: no.message });
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
