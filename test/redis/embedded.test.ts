import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedRedisError, findRedisServer, startEmbeddedRedis } from '../../src/platform/redis/embedded.js';
import { hasRedisServer, pidAlive, RedisLab } from './redis-helpers.js';

describe('findRedisServer', () => {
  it('finds nothing on an empty PATH and honours ROAM6_REDIS_SERVER', () => {
    expect(findRedisServer({ PATH: '' })).toBeUndefined();
    expect(findRedisServer({ ROAM6_REDIS_SERVER: '/nonexistent/redis-server' })).toBeUndefined();
  });

  it('names the package to install when the binary is missing', async () => {
    await expect(startEmbeddedRedis({ binary: '/nonexistent/redis-server' })).rejects.toThrow(/apt-get install redis-server/);
  });
});

describe.skipIf(!hasRedisServer)('embedded redis-server', () => {
  const lab = new RedisLab();
  const scratch = mkdtempSync(join(tmpdir(), 'roam6-embt-'));
  afterAll(async () => {
    await lab.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('starts on a private unix socket and stop() removes its own directory', async () => {
    const s = await startEmbeddedRedis();
    try {
      expect(s.url).toBe(`unix://${s.socketPath}`);
      expect(s.socketPath).toBe(join(s.dir, 'redis.sock'));
      expect(statSync(s.dir).mode & 0o777).toBe(0o700);
      expect(statSync(s.socketPath).isSocket()).toBe(true);
      expect(statSync(join(s.dir, 'redis.conf')).mode & 0o777).toBe(0o600);
      expect(readFileSync(`/proc/${s.pid}/comm`, 'utf8')).toMatch(/^redis-server/);
      const h = await lab.connect({ url: s.url, name: 't-emb' });
      expect(await h.client.ping()).toBe('PONG');
      // No TCP listener and no persistence by default.
      expect(await h.client.config('GET', 'port')).toEqual(['port', '0']);
      expect(await h.client.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      await h.close();
    } finally {
      const pid = s.pid;
      await s.stop();
      expect(pidAlive(pid)).toBe(false);
      expect(existsSync(s.dir)).toBe(false);
    }
    await s.stop(); // idempotent
  });

  it('restart() with persistence keeps the data, the socket and the directory', async () => {
    const s = await lab.server({ persist: true });
    const h = await lab.connect({ url: s.url, name: 't-restart' });
    await h.client.set('k', 'v1');
    await h.client.hset('h', 'a', '1', 'b', '2');
    const firstPid = s.pid;
    await s.restart();
    expect(s.pid).not.toBe(firstPid);
    expect(pidAlive(firstPid)).toBe(false);
    expect(existsSync(s.socketPath)).toBe(true);
    // The same client reconnects by itself (maxRetriesPerRequest: null).
    expect(await h.client.get('k')).toBe('v1');
    expect(await h.client.hgetall('h')).toEqual({ a: '1', b: '2' });
  });

  it('a caller-given directory survives stop() and a new server on it sees the data', async () => {
    const dir = join(scratch, 'persisted');
    const first = await startEmbeddedRedis({ dir, persist: true });
    const h = await lab.connect({ url: first.url, name: 't-dir' });
    await h.client.set('survives', 'yes');
    await h.close();
    await first.stop();
    expect(existsSync(dir)).toBe(true);
    const second = await lab.server({ dir, persist: true });
    const h2 = await lab.connect({ url: second.url, name: 't-dir2' });
    expect(await h2.client.get('survives')).toBe('yes');
  });

  it('refuses to take over a directory whose server is still running, naming its PID', async () => {
    const dir = join(scratch, 'busy');
    const running = await lab.server({ dir });
    await expect(startEmbeddedRedis({ dir })).rejects.toThrow(new RegExp(`pid ${running.pid}`));
    expect(pidAlive(running.pid)).toBe(true);
  });

  it('keeps the password out of argv and requires it', async () => {
    const password = 'se cret"pw';
    const s = await lab.server({ password });
    const cmdline = readFileSync(`/proc/${s.pid}/cmdline`, 'utf8');
    expect(cmdline).not.toContain('cret');
    await expect(lab.connect({ url: s.url, name: 't-nopw', connectTimeoutMs: 3_000 })).rejects.toThrow(/authentication failed/);
    const h = await lab.connect({ url: `${s.url}?password=${encodeURIComponent(password)}`, name: 't-pw' });
    expect(await h.client.ping()).toBe('PONG');
  });

  it('a server that cannot start fails with an error naming its log file', async () => {
    const err = await startEmbeddedRedis({ extraConfig: ['no-such-directive yes'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedRedisError);
    const logFile = (err as EmbeddedRedisError).logFile ?? '';
    expect((err as Error).message).toContain(logFile);
    expect((err as Error).message).toMatch(/no-such-directive/);
    // The temporary directory is kept so the named log can be read; clean it here.
    expect(existsSync(dirname(logFile))).toBe(true);
    rmSync(dirname(logFile), { recursive: true, force: true });
  });

  it('rejects a socket path the kernel cannot bind', async () => {
    await expect(startEmbeddedRedis({ dir: join(scratch, 'x'.repeat(120)) })).rejects.toThrow(/socket path too long/);
  });
});
