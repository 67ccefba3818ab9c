/**
 * The orchestrator's BullMQ queues in a browser: bull-board (@bull-board/api + /fastify) mounted
 * at /queues on the HA's API server, when the HA has Redis.
 *
 *   GET  /queues                  the dashboard page (bull-board's UI, served from the package)
 *   GET  /queues/api/queues       the queues with counts and, for the open queue, its jobs
 *   PUT  /queues/api/queues/...   retry, remove, promote, clean, pause … (bearer token)
 *
 * Queues: `orchestrator`, and `host-<id>` for every host in the heartbeats (the HostMap's
 * refresh adds new ones as they appear; a host that was seen once stays listed).
 *
 * Access, the same rules as the rest of the API (server.ts's onRequest hook):
 * - reads (the page, its GET API calls) need loopback, the unix socket, api.readNetworks or the
 *   token;
 * - writes (PUT/POST/PATCH/DELETE) need the bearer token, checked before the body is read;
 * - a browser cannot add an Authorization header to the page's own calls, so a request without
 *   the token gets a read-only board: the queue list says `readOnlyMode: true` and the UI hides
 *   retry/remove/clean/pause. With the token (curl, a script, or a reverse proxy that adds the
 *   header for signed-in operators) the board is writable.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Orchestration } from '../orchestrator/runtime.js';
import { ORCHESTRATOR_QUEUE, hostQueue } from '../orchestrator/jobs.js';
import type { AccessPolicy } from './access.js';
import type { HostMap } from './host-map.js';

export const QUEUE_DASHBOARD_PATH = '/queues';
const MAX_JOBS_PER_PAGE = 1000;

/** The dashboard page's policy: its scripts and styles come from /queues/static, nothing from elsewhere. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

export interface QueueDashboard {
  /** Queue names on the board, in the order they were added. */
  queues(): readonly string[];
  /** Add host queues for hosts the HostMap knows and the board does not yet show. */
  sync(): void;
}

export async function registerQueueDashboard(app: FastifyInstance, orch: Orchestration, access: AccessPolicy, hosts: HostMap): Promise<QueueDashboard> {
  const names: string[] = [];
  const adapter = (name: string) => new BullMQAdapter(orch.queue(name), { description: describe(name) });
  const serverAdapter = new FastifyAdapter().setBasePath(QUEUE_DASHBOARD_PATH);
  const board = createBullBoard({
    queues: [adapter(ORCHESTRATOR_QUEUE)],
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'roam6 queues',
        hideDocsLink: true,
        miscLinks: [{ text: 'Home Agent', url: '/' }],
      },
      handlerHooks: {
        // bull-board bounds the page number but not the page size: one request could ask Redis
        // for every job of a queue.
        before: (ctx) => {
          const per = ctx.request.query['jobsPerPage'] as unknown;
          if (per === undefined || Number(per) <= MAX_JOBS_PER_PAGE) return;
          return { allow: false, status: 400, errorKey: 'ERRORS.INVALID_QUERY_PARAM', message: `query parameter jobsPerPage: must be <= ${MAX_JOBS_PER_PAGE}` };
        },
        // The queue list tells the UI which actions to offer: none without the token.
        after: (ctx, result) => {
          if (ctx.route !== '/api/queues' || access.tokenValid(ctx.request.headers['authorization'])) return result;
          const body = result.body as { queues?: Record<string, unknown>[] };
          if (!Array.isArray(body.queues)) return result;
          return { ...result, body: { ...body, queues: body.queues.map((q) => ({ ...q, readOnlyMode: true, allowRetries: false, allowCompletedRetries: false })) } };
        },
      },
    },
  });
  names.push(ORCHESTRATOR_QUEUE);

  const sync = () => {
    for (const h of hosts.list()) {
      const name = hostQueue(h.host);
      if (names.includes(name)) continue;
      board.addQueue(adapter(name));
      names.push(name);
    }
  };
  sync();
  hosts.onRefresh(sync);

  await app.register(
    async (scope) => {
      scope.addHook('onSend', async (_req, reply: FastifyReply, payload) => {
        void reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
        // bull-board's page asks a public web-font service for its font; an operator's browser
        // need not tell anyone it opened the HA's dashboard (the CSP would block it anyway).
        if (typeof payload === 'string' && String(reply.getHeader('content-type')).startsWith('text/html')) {
          return payload.replace(/<link [^>]*href="https:\/\/fonts\.[^"]*"[^>]*>/g, '');
        }
        return payload;
      });
      await scope.register(serverAdapter.registerPlugin());
    },
    { prefix: QUEUE_DASHBOARD_PATH },
  );
  return { queues: () => names, sync };
}

function describe(name: string): string {
  return name === ORCHESTRATOR_QUEUE ? 'migration flows (one job per migration)' : `steps run by host agent ${name.slice('host-'.length)}`;
}
