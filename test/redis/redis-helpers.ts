/**
 * Shared bits for the Redis tests: whether redis-server exists, free loopback ports, and a
 * tracker that stops every server and closes every handle a suite started (by PID, in afterAll).
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { findRedisServer, startEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from '../../src/platform/redis/embedded.js';
import { connectRedis, type ConnectRedisOptions, type RedisHandle } from '../../src/platform/redis/connection.js';

export const hasRedisServer: boolean = existsSync('/usr/bin/redis-server') || findRedisServer() !== undefined;

/** Why the Redis suites are skipped, or null when they run. */
export const redisSkipReason: string | null = hasRedisServer
  ? null
  : 'redis-server not installed (apt-get install redis-server); Redis tests skipped';

if (redisSkipReason) console.warn(`[roam6 tests] ${redisSkipReason}`);

/** A TCP port on 127.0.0.1 that was free a moment ago, below 55535 (room for a cluster bus port at +10000). */
export async function freeLoopbackPort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
      });
    });
    if (port > 1024 && port < 55535) return port;
  }
}

/** Starts servers and handles for one suite and cleans all of them up. */
export class RedisLab {
  private readonly servers: EmbeddedRedis[] = [];
  private readonly handles: RedisHandle[] = [];

  async server(opts: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
    const s = await startEmbeddedRedis(opts);
    this.servers.push(s);
    return s;
  }

  async connect(opts: ConnectRedisOptions): Promise<RedisHandle> {
    const h = await connectRedis({ env: {}, log: () => undefined, ...opts });
    this.handles.push(h);
    return h;
  }

  /** Close handles first (they may own servers), then stop every server by its own PID. */
  async cleanup(): Promise<void> {
    await Promise.allSettled(this.handles.splice(0).map((h) => h.close()));
    await Promise.allSettled(this.servers.splice(0).map((s) => s.stop()));
  }
}

/** True while a process with this PID exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Poll `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 1_000, stepMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
