/**
 * Reading finished migrations back, for the HA's operator views: a guest's last completed
 * migrations with the orchestrator's measured numbers (total, hypervisor pause, resume → BA).
 *
 * A completed migration of epoch e is the orchestrator job `mig.<guest>.<e>` (jobs.ts); the
 * guest's epoch counter (`guest-state:<id>` field `migrations`) says which epochs exist. Jobs
 * are kept for an hour (runtime.ts KEEP), so older handovers have the HA's numbers only.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../platform/redis/connection.js';
import { redisKeys, type RedisKeys } from '../platform/redis/keys.js';
import { ORCHESTRATOR_QUEUE, migrationJobId, type MigrationOutcome } from './jobs.js';

export interface MigrationRecord {
  readonly guest: string;
  readonly from: string;
  readonly to: string;
  readonly newCoa: string;
  /** Epoch ms the orchestrator started and finished the migration. */
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly totalMs: number;
  readonly downtimeMs: number;
  readonly resumeToBaMs: number;
  readonly registrationMs: number;
}

export class MigrationOutcomes {
  private readonly keys: RedisKeys;
  private readonly queue: Queue;

  constructor(private readonly redis: RedisClient, keys?: RedisKeys) {
    this.keys = keys ?? redisKeys();
    this.queue = new Queue(ORCHESTRATOR_QUEUE, { connection: redis, prefix: this.keys.queuePrefix });
  }

  /** The guest's last `max` completed migrations, oldest first. */
  async recent(guest: string, max = 16): Promise<MigrationRecord[]> {
    const epochs = Number((await this.redis.hget(this.keys.guestState(guest), 'migrations')) ?? 0);
    const ids: string[] = [];
    for (let e = Math.max(0, epochs - max); e < epochs; e++) ids.push(migrationJobId(guest, e));
    const jobs = await Promise.all(ids.map((id) => this.queue.getJob(id).catch(() => undefined)));
    const out: MigrationRecord[] = [];
    for (const job of jobs) {
      const o = job?.returnvalue as MigrationOutcome | null | undefined;
      // Hash fields may come back as text: make the times numbers.
      const finishedAt = Number(job?.finishedOn);
      const startedAt = Number(job?.processedOn ?? job?.timestamp);
      if (!job || !o || typeof o.totalMs !== 'number' || !Number.isFinite(finishedAt) || finishedAt <= 0) continue;
      out.push({
        guest,
        from: o.from,
        to: o.to,
        newCoa: o.newCoa,
        startedAt: Number.isFinite(startedAt) ? startedAt : finishedAt - o.totalMs,
        finishedAt,
        totalMs: o.totalMs,
        downtimeMs: o.downtimeMs,
        resumeToBaMs: o.resumeToBaMs,
        registrationMs: o.registrationMs,
      });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
