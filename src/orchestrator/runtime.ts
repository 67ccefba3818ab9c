/**
 * The orchestrator and host workers on BullMQ: queues, workers, and the Redis-backed
 * implementation of MigrationDeps. Retry semantics per job are in docs/orchestration.md.
 */
import { Queue, QueueEvents, Worker, type Job, type JobsOptions } from 'bullmq';
import type { RedisHandle } from '../platform/redis/connection.js';
import { redisKeys, type RedisKeys } from '../platform/redis/keys.js';
import { RedisGuestRegistry } from '../platform/redis/guest-registry.js';
import { RedisHostRegistry } from '../platform/redis/host-registry.js';
import type { HostAgent } from '../core/host-agent.js';
import type { HypervisorPort } from '../ports/hypervisor.js';
import type { HandoverPort } from '../ports/handover.js';
import { tryParseIpv6, type Ipv6Address } from '../wire/ipv6.js';
import type { Logger } from '../ports/log.js';
import { silentLogger } from '../ports/log.js';
import {
  ORCHESTRATOR_QUEUE,
  hostQueue,
  migrateRequest,
  migrationJobId,
  stepJobId,
  type HostJobData,
  type HostJobName,
  type MigrateRequest,
  type MigrationOutcome,
} from './jobs.js';
import { clockBounds, runMigration, type MigrateStepResult, type MigrationDeps } from './migration.js';

/** Step jobs: idempotent ones retry with backoff; a live migration is never blindly retried. */
const STEP_OPTS: Record<HostJobName, JobsOptions> = {
  prepare: { attempts: 5, backoff: { type: 'exponential', delay: 200 } },
  migrate: { attempts: 1 },
  activate: { attempts: 8, backoff: { type: 'exponential', delay: 200 } },
  release: { attempts: 8, backoff: { type: 'exponential', delay: 200 } },
  locate: { attempts: 3, backoff: { type: 'fixed', delay: 200 } },
};
const KEEP = { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 24 * 3600 } };
const STEP_TIMEOUT_MS: Record<HostJobName, number> = { prepare: 30_000, migrate: 120_000, activate: 60_000, release: 30_000, locate: 10_000 };

/**
 * How fast a job whose worker died is taken up again. A worker holds a lock on each job it
 * runs and renews it every lockMs/2; a job whose lock has lapsed is found by the next stalled
 * check of any worker on that queue and put back to wait (once; a second stall fails it).
 * A dead agent's step therefore resumes within about lockMs + 2 × stalledCheckMs after the
 * agent (or another worker on its queue) is back. BullMQ's defaults are 30 s and 30 s.
 */
export interface WorkerTiming {
  readonly lockMs: number;
  readonly stalledCheckMs: number;
}
export const DEFAULT_WORKER_TIMING: WorkerTiming = { lockMs: 15_000, stalledCheckMs: 5_000 };

export interface WorkerOptions {
  readonly log?: Logger;
  readonly concurrency?: number;
  readonly timing?: WorkerTiming;
  /** Called before and after each step (`<step>.before`, `<step>.after`): util/failpoints.ts. */
  readonly failpoint?: (name: string) => void;
  /** Host workers: ask the HA to hold a guest's packets as it pauses here (make before break). */
  readonly handover?: HandoverPort;
}

const workerTiming = (t: WorkerTiming = DEFAULT_WORKER_TIMING) => ({ lockDuration: t.lockMs, stalledInterval: t.stalledCheckMs });

export class Orchestration {
  readonly keys: RedisKeys;
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, QueueEvents>();
  private readonly registry: RedisGuestRegistry;
  private readonly hosts: RedisHostRegistry;

  constructor(private readonly redis: RedisHandle, keys?: RedisKeys) {
    this.keys = keys ?? redisKeys();
    this.registry = new RedisGuestRegistry(redis.client, { keys: this.keys });
    this.hosts = new RedisHostRegistry(redis.client, this.keys);
  }

  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.redis.client, prefix: this.keys.queuePrefix });
      // Every concurrent add/wait registers a listener; a rebalance has hundreds in flight.
      q.setMaxListeners(0);
      this.queues.set(name, q);
    }
    return q;
  }

  async queueEvents(name: string): Promise<QueueEvents> {
    let e = this.events.get(name);
    if (!e) {
      e = new QueueEvents(name, { connection: this.redis.duplicate(), prefix: this.keys.queuePrefix });
      e.setMaxListeners(0);
      this.events.set(name, e);
      await e.waitUntilReady();
    }
    return e;
  }

  /** Enqueue a migration; a duplicate request for a running one returns that one's job. */
  async requestMigration(req: MigrateRequest): Promise<Job<MigrateRequest, MigrationOutcome>> {
    const r = migrateRequest.parse(req);
    const epoch = Number((await this.redis.client.hget(this.keys.guestState(r.guest), 'migrations')) ?? 0);
    const q = this.queue(ORCHESTRATOR_QUEUE);
    const jobId = migrationJobId(r.guest, epoch);
    const existing = (await q.getJob(jobId)) as Job<MigrateRequest, MigrationOutcome> | undefined;
    if (existing) {
      // A running (or queued) migration of this guest: join it. A failed one is history:
      // make room for the new request under the same epoch.
      if (!(await existing.isFailed())) return existing;
      await existing.remove();
    }
    return (await q.add('migrate', r, { jobId, attempts: 3, backoff: { type: 'exponential', delay: 500 }, ...KEEP })) as Job<MigrateRequest, MigrationOutcome>;
  }

  async waitFor<T>(job: Job, timeoutMs = 300_000): Promise<T> {
    return (await job.waitUntilFinished(await this.queueEvents(job.queueName), timeoutMs)) as T;
  }

  deps(): MigrationDeps {
    // When each step was asked for (if it had not started yet) and heard back, on our clock:
    // with the host's start and finish times BullMQ records (processedOn and finishedOn come
    // from the worker's clock), they bound the host's clock offset (migration.ts clockBounds).
    // Read lazily, after the migration, so the bounds cost no time between steps.
    const heard = new Map<string, { askedAt?: number; heardAt: number }>();
    const heardKey = (host: string, jobId: string) => `${host}\n${jobId}`;
    return {
      guestHost: async (guest) => {
        const g = await this.registry.get(guest);
        return { known: !!g, host: g?.host };
      },
      hostCoa: async (host) => (await this.hosts.alive(host))?.coa,
      step: async <T>(host: string, name: HostJobName, data: HostJobData): Promise<T> => {
        const q = this.queue(hostQueue(host));
        const jobId = stepJobId(data.migration, name);
        const lookedAt = Date.now();
        const found = await q.getJob(jobId);
        // A step found already started (a resumed migration) gives no upper bound.
        const askedAt = found?.processedOn === undefined ? lookedAt : undefined;
        const job = found ?? (await q.add(name, data, { jobId, ...STEP_OPTS[name], ...KEEP }));
        const out = await this.waitFor<T>(job, STEP_TIMEOUT_MS[name]);
        if (heard.size >= 4096) heard.delete(heard.keys().next().value!);
        heard.set(heardKey(host, jobId), { ...(askedAt !== undefined ? { askedAt } : {}), heardAt: Date.now() });
        return out;
      },
      stepClock: async (host, name, data) => {
        const jobId = stepJobId(data.migration, name);
        const t = heard.get(heardKey(host, jobId));
        if (!t) return undefined;
        heard.delete(heardKey(host, jobId));
        const job = await this.queue(hostQueue(host)).getJob(jobId);
        if (job?.processedOn === undefined || job.finishedOn === undefined) return undefined;
        return clockBounds({ ...t, startedAt: job.processedOn, finishedAt: job.finishedOn });
      },
      bindingCoa: async (guest) => {
        const v = await this.redis.client.hget(this.keys.bindings, guest);
        return v ? (JSON.parse(v) as { coa: string }).coa : undefined;
      },
      completeEpoch: async (guest) => {
        await this.redis.client.hincrby(this.keys.guestState(guest), 'migrations', 1);
      },
      now: () => Date.now(),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    };
  }

  /** The orchestrator's worker: runs migration flows, `concurrency` at a time. */
  startOrchestrator(concurrency: number, opts: WorkerOptions = {}): Worker<MigrateRequest, MigrationOutcome> {
    const log = opts.log ?? silentLogger;
    const deps = this.deps();
    const w = new Worker<MigrateRequest, MigrationOutcome>(
      ORCHESTRATOR_QUEUE,
      async (job) => {
        log.info({ guest: job.data.guest, to: job.data.to, job: job.id }, 'migration started');
        const out = await runMigration(job, deps);
        log.info({ guest: out.guest, from: out.from, to: out.to, totalMs: out.totalMs, resumeToBaMs: out.resumeToBaMs }, 'migration done');
        if (out.clockSkewMs) log.warn({ guest: out.guest, clockSkewMs: out.clockSkewMs }, 'host clocks are off from the orchestrator\'s (timings corrected); keep hosts under NTP');
        return out;
      },
      { connection: this.redis.duplicate(), prefix: this.keys.queuePrefix, concurrency, ...workerTiming(opts.timing) },
    );
    w.on('failed', (job, err) => log.warn({ guest: job?.data.guest, job: job?.id, err: err.message }, 'migration failed'));
    w.on('error', (err) => log.error({ err: err.message }, 'orchestrator worker error'));
    return w;
  }

  /** A host agent's worker: executes the steps the orchestrator puts on its queue. */
  startHostWorker(hostId: string, agent: HostAgent, driver: HypervisorPort, opts: WorkerOptions = {}): Worker<HostJobData> {
    const log = opts.log ?? silentLogger;
    const failpoint = opts.failpoint ?? (() => {});
    const w = new Worker<HostJobData>(
      hostQueue(hostId),
      async (job) => {
        failpoint(`host.${job.name}.before`);
        const result = await this.runStep(job, agent, driver, opts.handover, log);
        failpoint(`host.${job.name}.after`);
        return result;
      },
      { connection: this.redis.duplicate(), prefix: this.keys.queuePrefix, concurrency: opts.concurrency ?? 16, ...workerTiming(opts.timing) },
    );
    w.on('error', (err) => log.error({ err: err.message }, 'host worker error'));
    return w;
  }

  private async runStep(job: Job<HostJobData>, agent: HostAgent, driver: HypervisorPort, handover: HandoverPort | undefined, log: Logger): Promise<unknown> {
    const { guest } = job.data;
    switch (job.name as HostJobName) {
      case 'prepare':
        return agent.prepare(guest, { arriving: true });
      case 'migrate': {
        const to = job.data.to;
        if (!to) throw new Error('migrate job without a destination');
        // Make before break: the HA holds the guest's packets from the moment it pauses here
        // until the BU from `to` moves the binding, and lets its first packets from there in.
        const nextCoa = tryParseIpv6(job.data.toCoa ?? '') ?? undefined;
        const hold = handover ? onceHold(handover, guest, nextCoa, log) : null;
        try {
          const r = await driver.migrate(
            guest,
            to,
            (p) => {
              void job.updateProgress(p as unknown as object);
              if (p.phase === 'paused') void hold?.ask();
              if (p.phase === 'left') void hold?.switchToNext();
            },
            { ...(job.data.incoming ? { incoming: job.data.incoming } : {}), ...(hold ? { beforePause: async () => void (await hold.ask()) } : {}) },
          );
          const pausedAt = r.resumedAt - r.downtimeMs;
          const out: MigrateStepResult = { totalMs: r.totalMs, downtimeMs: r.downtimeMs, pausedAt, resumedAt: r.resumedAt, held: (await hold?.held()) ?? false };
          return out;
        } catch (e) {
          await hold?.releaseIfHeld(); // the guest did not leave (or we cannot tell): what is held goes to its CoA now
          throw e;
        }
      }
      case 'activate':
        return agent.activate(guest);
      case 'release':
        await agent.release(guest);
        return { released: guest };
      case 'locate':
        return { runsHere: await driver.runsHere(guest) };
      default:
        throw new Error(`unknown host job ${job.name}`);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.events.values()].map((e) => e.close()));
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
  }
}

/** One hold request per migrate step, whichever of the driver's hooks asks first. */
function onceHold(handover: HandoverPort, guest: string, nextCoa: Ipv6Address | undefined, log: Logger) {
  let asked: Promise<boolean> | null = null;
  return {
    ask: (): Promise<boolean> =>
      (asked ??= handover.hold(guest, nextCoa).then((o) => {
        if (!o.held) log.warn({ guest, reason: o.reason }, 'the HA does not hold this handover; packets in flight may be lost');
        return o.held;
      })),
    held: async (): Promise<boolean> => (asked ? asked : false),
    /** The guest left: what is held goes to the next CoA now, ahead of its BU. */
    switchToNext: async (): Promise<void> => {
      if (asked && nextCoa && (await asked) && !(await handover.switchToNext(guest))) {
        log.warn({ guest }, 'the HA did not forward ahead of the BU; the new host\'s BU will move the held packets');
      }
    },
    releaseIfHeld: async (): Promise<void> => {
      if (asked && (await asked)) await handover.release(guest);
    },
  };
}
