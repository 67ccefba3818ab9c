/**
 * The queue dashboard (bull-board at /queues on the HA's API) against a real redis-server over a
 * real socket: the page loads, its API lists the orchestrator queue and host queues as hosts
 * heartbeat, a job added to a host queue shows up, and state changes need the bearer token
 * (the board is read-only without it, writable with it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { hostQueue, ORCHESTRATOR_QUEUE } from '../../src/orchestrator/jobs.js';
import { hasRedisServer, eventually } from './redis-helpers.js';
import { startApiUnderTest, COA, type ApiUnderTest } from './api-server.js';

const TOKEN = 'dashboard-test-token-0123456789ab';

interface BoardQueue {
  name: string;
  readOnlyMode: boolean;
  allowRetries: boolean;
  counts: Record<string, number>;
  jobs: { id: string; name: string; data: unknown; failedReason?: string }[];
}

describe.skipIf(!hasRedisServer)('queue dashboard at /queues', () => {
  let t: ApiUnderTest;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const board = async (query = '', headers: Record<string, string> = {}): Promise<BoardQueue[]> => {
    const r = await fetch(`${t.base}/queues/api/queues${query}`, { headers });
    expect(r.status).toBe(200);
    return ((await r.json()) as { queues: BoardQueue[] }).queues;
  };
  const queueNames = async () => (await board()).map((q) => q.name);

  beforeAll(async () => {
    // host-a heartbeats before the HA starts its API; host-b appears later.
    t = await startApiUnderTest({ token: TOKEN, hostsAtStart: { 'host-a': COA['host-a'] } });
  });

  afterAll(async () => {
    await t?.close();
  });

  it('serves the page: 200, HTML, its scripts from /queues/static, a strict CSP and nothing from other sites', async () => {
    for (const path of ['/queues', '/queues/', '/queues/queue/orchestrator']) {
      const r = await fetch(`${t.base}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type'), path).toMatch(/^text\/html/);
      const html = await r.text();
      expect(html).toContain('<base href="/queues/"');
      expect(html).toContain('<title>roam6 queues</title>');
      expect(html).not.toMatch(/https?:\/\//);
      expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
    }
    const html = await (await fetch(`${t.base}/queues`)).text();
    const scripts = [...html.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      const r = await fetch(`${t.base}/queues/${src}`);
      expect(r.status, src).toBe(200);
      expect(r.headers.get('content-type'), src).toMatch(/javascript/);
    }
  });

  it('lists the orchestrator queue and a queue per heartbeating host; new hosts appear as they beat', async () => {
    expect(await eventually(async () => (await queueNames()).includes(hostQueue('host-a')), 5000, 50)).toBe(true);
    expect(await queueNames()).toEqual([ORCHESTRATOR_QUEUE, hostQueue('host-a')]);

    await t.beat('host-b', COA['host-b']);
    await t.orch.queue(hostQueue('host-b')).add('prepare', { guest: 'g9@dash.test', migration: 'mig.g9@dash.test.0' }, { jobId: 'mig.g9@dash.test.0.prepare' });
    expect(await eventually(async () => (await queueNames()).includes(hostQueue('host-b')), 5000, 50)).toBe(true);

    const b = (await board(`?activeQueue=${hostQueue('host-b')}&status=latest`)).find((q) => q.name === hostQueue('host-b'))!;
    expect(b.counts['waiting']).toBe(1);
    expect(b.jobs).toMatchObject([{ id: 'mig.g9@dash.test.0.prepare', name: 'prepare', data: { guest: 'g9@dash.test', migration: 'mig.g9@dash.test.0' } }]);
  });

  it('is read-only without the token (the UI hides the actions) and writable with it', async () => {
    for (const q of await board()) expect(q, q.name).toMatchObject({ readOnlyMode: true, allowRetries: false });
    for (const q of await board('', { authorization: 'Bearer not-the-token-but-long-enough' })) expect(q.readOnlyMode).toBe(true);
    for (const q of await board('', auth)) expect(q, q.name).toMatchObject({ readOnlyMode: false, allowRetries: true });
  });

  it('refuses retry, remove and pause without the token (401/403) and does them with it', async () => {
    const name = hostQueue('host-a');
    const q = t.orch.queue(name);
    const job = await q.add('activate', { guest: 'g8@dash.test', migration: 'mig.g8@dash.test.0' }, { jobId: 'mig.g8@dash.test.0.activate', attempts: 1 });
    // A worker for host-a that fails the step once.
    const worker = new Worker(name, async () => {
      throw new Error('activate failed: no route to the guest');
    }, { connection: t.redis.duplicate(), prefix: redisKeys().queuePrefix });
    try {
      expect(await eventually(async () => (await q.getJobState(job.id!)) === 'failed', 10_000, 50)).toBe(true);
    } finally {
      await worker.close();
    }
    const failed = (await board(`?activeQueue=${name}&status=failed`)).find((x) => x.name === name)!;
    expect(failed.jobs.map((j) => j.id)).toEqual([job.id]);
    expect(failed.jobs[0]!.failedReason).toBe('activate failed: no route to the guest');

    const put = (path: string, headers: Record<string, string> = {}) => fetch(`${t.base}/queues/api/queues/${path}`, { method: 'PUT', headers });
    const enc = encodeURIComponent(job.id!);
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${'x'.repeat(TOKEN.length)}` }, { authorization: `Basic ${Buffer.from(`roam6:${TOKEN}`).toString('base64')}` }]) {
      for (const path of [`${name}/${enc}/retry`, `${name}/${enc}/clean`, `${name}/pause`, 'pause']) {
        const r = await put(path, headers);
        expect([401, 403], `${path} ${JSON.stringify(headers)}`).toContain(r.status);
        expect(r.headers.get('www-authenticate')).toBe('Bearer');
        expect(((await r.json()) as { message: string }).message).toMatch(/bearer token|Authorization header/);
      }
    }
    expect(await q.getJobState(job.id!)).toBe('failed');
    expect(await q.isPaused()).toBe(false);

    // With the token: retry puts it back to waiting, clean removes it, pause pauses.
    expect((await put(`${name}/${enc}/retry`, auth)).status).toBe(204);
    expect(await q.getJobState(job.id!)).toBe('waiting');
    expect((await put(`${name}/${enc}/clean`, auth)).status).toBe(204);
    expect(await q.getJob(job.id!)).toBeUndefined();
    expect((await put(`${name}/pause`, auth)).status).toBe(200);
    expect(await q.isPaused()).toBe(true);
    expect((await put(`${name}/resume`, auth)).status).toBe(200);
    expect(await q.isPaused()).toBe(false);
  });

  it('is linked from the HA page', async () => {
    const html = await (await fetch(`${t.base}/`)).text();
    expect(html).toMatch(/<a href="\/queues"/);
  });
});
