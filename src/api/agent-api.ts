/**
 * The host agent's control API (fastify), loopback or a unix socket by default:
 *   GET  /api/v1/health
 *   GET  /api/v1/guests                      every guest held here, phase and registration state
 *   POST /api/v1/guests/:guest/prepare       build link + routes ahead of arrival
 *   POST /api/v1/guests/:guest/activate      register now; answers with the BU→BA time
 *   POST /api/v1/guests/:guest/release       tear down, no de-registration
 * The orchestrator drives the same operations through the host's queue.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { rmSync } from 'node:fs';
import type { HostAgent } from '../core/host-agent.js';
import { GuestUnknownError } from '../core/host-agent.js';
import { RegistrationError } from '../core/mobile-router.js';
import type { ListenAddress } from '../config/common.js';

const guestParams = {
  type: 'object',
  required: ['guest', 'op'],
  properties: { guest: { type: 'string', minLength: 1, maxLength: 254 }, op: { type: 'string', enum: ['prepare', 'activate', 'release'] } },
} as const;

export async function startAgentApi(listen: ListenAddress, agent: HostAgent, startedAt: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
  app.get('/api/v1/health', async () => ({
    status: 'ok',
    host: agent.cfg.hostId,
    uptimeSec: Math.round((Date.now() - startedAt) / 1000),
    guests: agent.status().length,
  }));
  app.get('/api/v1/guests', async () => ({ host: agent.cfg.hostId, guests: agent.status() }));
  app.post<{ Params: { guest: string; op: 'prepare' | 'activate' | 'release' } }>(
    '/api/v1/guests/:guest/:op',
    { schema: { params: guestParams } },
    async (req, reply) => {
      const { guest, op } = req.params;
      try {
        if (op === 'prepare') return await agent.prepare(guest);
        if (op === 'activate') return await agent.activate(guest);
        await agent.release(guest);
        return { released: guest };
      } catch (e) {
        if (e instanceof GuestUnknownError) return reply.status(404).send({ error: 'not found', message: e.message });
        if (e instanceof RegistrationError) return reply.status(409).send({ error: 'registration failed', message: e.message, status: e.status });
        return reply.status(503).send({ error: 'unavailable', message: e instanceof Error ? e.message : String(e) });
      }
    },
  );
  if ('path' in listen) {
    rmSync(listen.path, { force: true });
    await app.listen({ path: listen.path });
  } else {
    await app.listen({ host: listen.host, port: listen.port });
  }
  return app;
}
