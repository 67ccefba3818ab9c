/**
 * Host agents' heartbeats: each agent writes `host:<id>` (JSON, with a TTL) and its score in
 * `hosts` every few seconds. A host is alive while its key exists. The orchestrator checks
 * this before it moves a guest to a host.
 */
import type { RedisClient } from './connection.js';
import { redisKeys, type RedisKeys } from './keys.js';

export interface HostHeartbeat {
  readonly host: string;
  readonly coa: string;
  readonly haAddress: string;
  readonly guests: number;
  /** Epoch ms. */
  readonly at: number;
  /** Where the agent's control API listens, if anywhere. */
  readonly api?: string;
}

export class RedisHostRegistry {
  readonly keys: RedisKeys;

  constructor(private readonly redis: RedisClient, keys?: RedisKeys) {
    this.keys = keys ?? redisKeys();
  }

  /** Record that the host is alive for the next `ttlMs`. */
  async beat(hb: HostHeartbeat, ttlMs: number): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.host(hb.host), JSON.stringify(hb), 'PX', ttlMs)
      .zadd(this.keys.hosts, hb.at, hb.host)
      .exec();
  }

  /** The host's last heartbeat if it is still alive. */
  async alive(host: string): Promise<HostHeartbeat | undefined> {
    const v = await this.redis.get(this.keys.host(host));
    return v ? (JSON.parse(v) as HostHeartbeat) : undefined;
  }

  /** Every host ever seen, with its heartbeat when alive. */
  async list(): Promise<{ host: string; lastSeen: number; alive: HostHeartbeat | undefined }[]> {
    const flat = await this.redis.zrange(this.keys.hosts, '0', '-1', 'WITHSCORES');
    const out: { host: string; lastSeen: number; alive: HostHeartbeat | undefined }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const host = flat[i]!;
      out.push({ host, lastSeen: Number(flat[i + 1]), alive: await this.alive(host) });
    }
    return out;
  }

  /** Remove a host that was decommissioned. */
  async forget(host: string): Promise<void> {
    await this.redis.multi().del(this.keys.host(host)).zrem(this.keys.hosts, host).exec();
  }
}
