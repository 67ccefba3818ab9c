import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  RedisConnectError, RedisUrlError, connectRedis, describeRedisError, parseRedisUrl, redactUrl,
} from '../../src/platform/redis/connection.js';
import { redisKeys } from '../../src/platform/redis/keys.js';
import { eventually, freeLoopbackPort, hasRedisServer, pidAlive, RedisLab } from './redis-helpers.js';

describe('parseRedisUrl', () => {
  it('reads redis:// with password, port and database', () => {
    const t = parseRedisUrl('redis://:p%40ss@127.0.0.1:6380/2', {});
    expect(t.kind).toBe('standalone');
    if (t.kind !== 'standalone') return;
    expect(t.options).toMatchObject({ host: '127.0.0.1', port: 6380, db: 2, password: 'p@ss' });
    expect(t.options.username).toBeUndefined();
    expect(t.display).toBe('redis://:***@127.0.0.1:6380/2');
  });

  it('reads user names, IPv6 literals and the default port', () => {
    const t = parseRedisUrl('redis://ha:pw@[2001:db8::1]', {});
    if (t.kind !== 'standalone') throw new Error('standalone expected');
    expect(t.options).toMatchObject({ host: '2001:db8::1', port: 6379, db: 0, username: 'ha', password: 'pw' });
  });

  it('reads unix:// with password and database in the query', () => {
    const t = parseRedisUrl('unix:///run/roam6/redis.sock?password=a%20b&db=3', {});
    if (t.kind !== 'standalone') throw new Error('standalone expected');
    expect(t.options).toMatchObject({ path: '/run/roam6/redis.sock', db: 3, password: 'a b' });
    expect(t.display).toBe('unix:///run/roam6/redis.sock?password=***&db=3');
    expect(() => parseRedisUrl('unix://relative/redis.sock', {})).toThrow(RedisUrlError);
  });

  it('reads rediss:// with CA, client certificate and server name from the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'roam6-tls-'));
    try {
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `-----${f}-----`);
      const env = {
        ROAM6_REDIS_TLS_CA: join(dir, 'ca.pem'),
        ROAM6_REDIS_TLS_CERT: join(dir, 'cert.pem'),
        ROAM6_REDIS_TLS_KEY: join(dir, 'key.pem'),
        ROAM6_REDIS_TLS_SERVERNAME: 'redis.example.net',
      };
      const t = parseRedisUrl('rediss://redis-1:6390', env);
      if (t.kind !== 'standalone') throw new Error('standalone expected');
      expect(t.options.tls?.servername).toBe('redis.example.net');
      expect(t.options.tls?.rejectUnauthorized).toBe(true);
      expect(String(t.options.tls?.ca)).toBe('-----ca.pem-----');
      expect(String(t.options.tls?.cert)).toBe('-----cert.pem-----');
      expect(() => parseRedisUrl('rediss://h', { ROAM6_REDIS_TLS_CA: join(dir, 'missing.pem') })).toThrow(/ROAM6_REDIS_TLS_CA/);
      expect(() => parseRedisUrl('rediss://h', { ROAM6_REDIS_TLS_CERT: join(dir, 'cert.pem') })).toThrow(/must be set together/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads redis+cluster:// node lists', () => {
    const t = parseRedisUrl('redis+cluster://:pw@10.0.0.1:7000,[2001:db8::2]:7001,node-3', {});
    if (t.kind !== 'cluster') throw new Error('cluster expected');
    expect(t.nodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: '2001:db8::2', port: 7001 },
      { host: 'node-3', port: 6379 },
    ]);
    expect(t.redisOptions.password).toBe('pw');
    expect(t.display).toBe('redis+cluster://:***@10.0.0.1:7000,[2001:db8::2]:7001,node-3');
  });

  it('rejects what it cannot read, without echoing passwords', () => {
    expect(() => parseRedisUrl('http://:secret@h', {})).toThrow(RedisUrlError);
    expect(() => parseRedisUrl('http://:secret@h', {})).not.toThrow(/secret/);
    expect(() => parseRedisUrl('redis://:secret@h/x', {})).toThrow(/database/);
    expect(() => parseRedisUrl('redis+cluster://h:99999', {})).toThrow(/bad port/);
  });

  it('redacts and describes', () => {
    expect(redactUrl('redis://user:pw@h:1')).toBe('redis://user:***@h:1');
    expect(redactUrl('redis://h:1')).toBe('redis://h:1');
    expect(describeRedisError(new AggregateError([Object.assign(new Error(''), { code: 'ECONNREFUSED' })]))).toBe('ECONNREFUSED');
  });
});

describe.skipIf(!hasRedisServer)('connectRedis against redis-server', () => {
  const lab = new RedisLab();
  afterAll(() => lab.cleanup());

  it('connects over unix://, names the client, and close() ends duplicates too', async () => {
    const s = await lab.server();
    const h = await lab.connect({ url: s.url, name: 'roam6-test unix' });
    expect(h.url).toBe(s.url);
    expect(h.embedded).toBeUndefined();
    expect(await h.client.client('GETNAME')).toBe('roam6-test-unix');
    const dup = h.duplicate();
    expect(await dup.ping()).toBe('PONG');
    await h.close();
    expect(h.client.status).toBe('end');
    expect(dup.status).toBe('end');
    await h.close(); // idempotent
    expect(pidAlive(s.pid)).toBe(true); // not ours to stop
  });

  it('connects over redis://127.0.0.1:<port> with a password, and fails fast on a wrong one', async () => {
    const port = await freeLoopbackPort();
    await lab.server({ tcp: { host: '127.0.0.1', port }, password: 'tcp-secret' });
    const h = await lab.connect({ url: `redis://:tcp-secret@127.0.0.1:${port}/1`, name: 't-tcp' });
    expect(h.url).toBe(`redis://:***@127.0.0.1:${port}/1`);
    await h.client.set('db1', 'yes');
    const other = new Redis({ port, host: '127.0.0.1', password: 'tcp-secret', db: 0, lazyConnect: true });
    expect(await other.get('db1')).toBeNull(); // the /1 selected database 1
    other.disconnect();
    const started = Date.now();
    const err = await connectRedis({ url: `redis://:wrong@127.0.0.1:${port}`, name: 't-bad', env: {}, log: () => undefined }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisConnectError);
    expect((err as Error).message).toMatch(/authentication failed/);
    expect((err as Error).message).not.toContain('wrong');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('gives one clear error for an unreachable server, with no unhandled error events', async () => {
    const port = await freeLoopbackPort();
    const err = await connectRedis({ url: `redis://127.0.0.1:${port}`, name: 't-down', connectTimeoutMs: 300, env: {}, log: () => undefined }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisConnectError);
    expect((err as Error).message).toMatch(new RegExp(`redis://127\\.0\\.0\\.1:${port} \\(client t-down\\): not ready within 300 ms: .*ECONNREFUSED`));
  });

  it('without a URL starts an embedded server that the handle owns', async () => {
    const h = await lab.connect({ name: 't-own', env: {} });
    const embedded = h.embedded;
    expect(embedded).toBeDefined();
    if (!embedded) return;
    expect(h.url).toBe(embedded.url);
    expect(await h.client.ping()).toBe('PONG');
    await h.close();
    expect(pidAlive(embedded.pid)).toBe(false);
    expect(existsSync(embedded.dir)).toBe(false);
  });

  it('takes REDIS_URL from the environment', async () => {
    const s = await lab.server();
    const h = await lab.connect({ name: 't-env', env: { REDIS_URL: s.url } });
    expect(h.embedded).toBeUndefined();
    expect(h.url).toBe(s.url);
  });

  it('serves BullMQ: queue on the client, worker on a duplicate, under the hash-tagged queue prefix', async () => {
    const s = await lab.server();
    const h = await lab.connect({ url: s.url, name: 't-bullmq' });
    const prefix = redisKeys('bq').queuePrefix;
    const queue = new Queue('orchestrator', { connection: h.client, prefix });
    const seen: unknown[] = [];
    const worker = new Worker('orchestrator', async (job) => void seen.push(job.data), { connection: h.duplicate(), prefix });
    try {
      await queue.add('migrate', { guest: 'g1@example.net' }, { jobId: 'g1-epoch-1' });
      expect(await eventually(() => seen.length === 1, 5_000)).toBe(true);
      expect(seen).toEqual([{ guest: 'g1@example.net' }]);
      expect((await h.client.keys('*')).every((k) => k.startsWith('{bq:q}:orchestrator:'))).toBe(true);
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  it('rides through a server restart: commands wait, and the outage is logged once each way', async () => {
    const s = await lab.server({ persist: true });
    const lines: string[] = [];
    const h = await lab.connect({ url: s.url, name: 't-outage', log: (l) => lines.push(l) });
    const dup = h.duplicate();
    await h.client.set('before', '1');
    await s.restart();
    expect(await h.client.get('before')).toBe('1');
    expect(await dup.ping()).toBe('PONG');
    expect(await eventually(() => lines.filter((l) => l.includes('connection back')).length === 2, 3_000)).toBe(true);
    expect(lines.filter((l) => l.includes('connection lost')).length).toBe(2);
    expect(lines[0]).toMatch(/^redis t-outage \(unix:\/\/.*\): connection lost: /);
  });
});
