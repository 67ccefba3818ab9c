/**
 * The orchestrator's migration flow: validate → prepare (destination) → live-migrate (source)
 * → activate (destination) → verify (HA binding) → release (source). Each step is a job on a
 * host's queue with a deterministic id, so a retried or resumed migration re-uses finished
 * steps instead of repeating them. A failure before the hypervisor switch rolls back (the
 * guest stays, reachable, on the source); after the switch it rolls forward.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import type { HostJobData, HostJobName, MigrateRequest, MigrationOutcome, MigrationPhase, MigrationProgressData } from './jobs.js';

/** What the flow needs from the world; Redis/BullMQ implementations live in orchestrator/runtime.ts. */
export interface MigrationDeps {
  /** The host that holds the guest now, or undefined for an unknown guest. */
  guestHost(guest: string): Promise<{ known: boolean; host: string | undefined }>;
  /** The host's CoA if its agent is alive. */
  hostCoa(host: string): Promise<string | undefined>;
  /** Run a step on a host's queue and wait for its result. */
  step<T>(host: string, name: HostJobName, data: HostJobData): Promise<T>;
  /** The CoA the HA has for the guest now (from the persisted binding), if any. */
  bindingCoa(guest: string): Promise<string | undefined>;
  /** Count a completed migration (moves the guest's epoch on). */
  completeEpoch(guest: string): Promise<void>;
  now(): number;
  sleep(ms: number): Promise<void>;
  /**
   * What a step already waited for tells about its host's clock (see {@link ClockBounds}), or
   * undefined when nothing can be said. Without it, hosts' clocks are taken as ours.
   */
  stepClock?(host: string, name: HostJobName, data: HostJobData): Promise<ClockBounds | undefined>;
}

/**
 * A host's clock minus the orchestrator's, bounded NTP-style by one step: the step was asked for
 * at `askedAt` and heard back at `heardAt` (our clock); the host started it at `startedAt` and
 * finished it at `finishedAt` (its clock). Whatever the queue's delays, the offset lies in
 * [finishedAt − heardAt, startedAt − askedAt]; without `askedAt` there is no upper bound.
 */
export interface ClockBounds {
  readonly minMs: number;
  readonly maxMs: number;
}

export function clockBounds(t: { askedAt?: number; startedAt: number; finishedAt: number; heardAt: number }): ClockBounds | undefined {
  const minMs = t.finishedAt - t.heardAt;
  const maxMs = t.askedAt === undefined ? Infinity : t.startedAt - t.askedAt;
  // Inconsistent readings (a clock stepped during the step): say nothing.
  return minMs <= maxMs ? { minMs, maxMs } : undefined;
}

/**
 * The correction to apply to a host's epoch ms before comparing them with another host's: 0
 * when the bounds allow synchronised clocks (hosts under NTP, the lab), else the bound nearest
 * to 0 (the smallest skew the step proves). Its error is at most the queue's delay on that side.
 */
export function clockOffsetMs(b: ClockBounds | undefined): number {
  if (!b || (b.minMs <= 0 && b.maxMs >= 0)) return 0;
  return b.minMs > 0 ? b.minMs : b.maxMs;
}

export interface PrepareStepResult {
  readonly ifname: string;
  /** The destination hypervisor's incoming-migration URI (QEMU), passed on to the migrate step. */
  readonly incoming?: string;
}

export interface MigrateStepResult {
  readonly totalMs: number;
  readonly downtimeMs: number;
  readonly pausedAt: number;
  /** Epoch ms the guest resumed on the destination, as the hypervisor reports it. */
  readonly resumedAt?: number;
  /** The HA held the guest's packets over the switch (make before break). */
  readonly held?: boolean;
}

export interface ActivateStepResult {
  readonly seq: number;
  readonly elapsedMs: number;
  readonly attempts: number;
  /** Epoch ms the guest's interface was attached here (it runs here from then on). */
  readonly attachedAt: number;
  /** Epoch ms the BA arrived. */
  readonly registeredAt: number;
}

const VERIFY_TIMEOUT_MS = 5000;

export async function runMigration(
  job: Pick<Job<MigrateRequest>, 'id' | 'data' | 'updateProgress' | 'timestamp' | 'attemptsMade'> & { updateData?: (d: MigrateRequest) => Promise<void> },
  deps: MigrationDeps,
): Promise<MigrationOutcome> {
  const { guest, to } = job.data;
  // Step job ids derive from this: a process that picks up a stalled migration (same job,
  // same attempt) re-uses the steps already done; a retry after a failure, or a new request
  // after a failed migration, runs every step again (each is idempotent).
  const migration = `${String(job.id)}.${job.timestamp}.${job.attemptsMade}`;
  const t0 = deps.now();
  const timings: Partial<Record<MigrationPhase, number>> = {};
  let from: string | undefined;
  const progress = async (phase: MigrationPhase) => {
    const data: MigrationProgressData = { phase, ...(from ? { from } : {}), to, timings: { ...timings } };
    await job.updateProgress(data as unknown as object);
  };
  const done = (phase: MigrationPhase) => {
    timings[phase] = deps.now() - t0;
  };

  // 1. validate
  await progress('validate');
  const where = await deps.guestHost(guest);
  if (!where.known) throw new UnrecoverableError(`guest ${guest} is not enrolled`);
  if (!where.host) throw new UnrecoverableError(`guest ${guest} has no current host; activate it somewhere first`);
  from = where.host;
  // A retry of a migration that already switched (activate ran, then verify or release failed):
  // the registry says the guest is on `to`; finish the roll-forward from the recorded source.
  const resuming = from === to && job.data.from !== undefined && job.data.from !== to;
  if (resuming) from = job.data.from!;
  else if (from === to) throw new UnrecoverableError(`guest ${guest} already runs on ${to}`);
  else if (job.data.from !== from) await job.updateData?.({ ...job.data, from });
  const newCoa = await deps.hostCoa(to);
  if (!newCoa) throw new Error(`target host ${to} is not alive (no heartbeat)`);
  if (!resuming && !(await deps.hostCoa(from))) throw new Error(`source host ${from} is not alive (no heartbeat)`);
  done('validate');
  const data: HostJobData = { guest, migration };
  let moved: MigrateStepResult;
  /** Whose clock `moved`'s epoch ms are on: the source's (its migrate step), or ours. */
  let movedClock: string | null = null;
  if (resuming) {
    const now = deps.now();
    moved = { totalMs: 0, downtimeMs: 0, pausedAt: now };
  } else {
    moved = await prepareAndMove();
  }

  async function prepareAndMove(): Promise<MigrateStepResult> {
    const source = from!;
    // 2. prepare on the destination (make before break)
    await progress('prepare');
    const prepared = await deps.step<PrepareStepResult | undefined>(to, 'prepare', data);
    done('prepare');

    // 3. live-migrate on the source; failure here rolls back
    await progress('migrate');
    let moved: MigrateStepResult;
    try {
      moved = await deps.step<MigrateStepResult>(source, 'migrate', { ...data, to, toCoa: newCoa, ...(prepared?.incoming ? { incoming: prepared.incoming } : {}) });
      movedClock = source;
    } catch (e) {
      // The step can fail after the switch (its worker died after moving the guest, and the
      // retry finds nothing to move). Ask the destination before undoing anything: releasing it
      // while the guest runs there would cut the guest off.
      const there = await deps.step<{ runsHere: boolean }>(to, 'locate', data).catch(() => ({ runsHere: false }));
      if (!there.runsHere) {
        await progress('rollback');
        await deps.step(to, 'release', data).catch(() => {});
        throw new UnrecoverableError(`live migration failed, rolled back (guest stays on ${source}): ${e instanceof Error ? e.message : String(e)}`);
      }
      const now = deps.now();
      moved = { totalMs: now - t0, downtimeMs: 0, pausedAt: now };
    }
    done('migrate');
    return moved;
  }

  // 4–6 roll forward: the guest runs on the destination now.
  await progress('activate');
  const reg = await deps.step<ActivateStepResult>(to, 'activate', data);
  done('activate');

  await progress('verify');
  const deadline = deps.now() + VERIFY_TIMEOUT_MS;
  for (;;) {
    const coa = await deps.bindingCoa(guest);
    if (coa === newCoa) break;
    if (deps.now() > deadline) throw new Error(`the HA binding for ${guest} shows ${coa ?? 'nothing'}, expected ${newCoa}`);
    await deps.sleep(20);
  }
  done('verify');

  await progress('release');
  await deps.step(from, 'release', data);
  done('release');
  await deps.completeEpoch(guest);
  done('done');
  await progress('done');

  // The guest is back on the network once it runs at the destination *and* its interface is on
  // the guest link there: the netns driver's link is attached after it moves; a QEMU TAP was
  // attached at prepare, before the guest resumed. Source and destination times are on two
  // hosts' clocks: both are put on ours first, so a skewed host cannot add or hide seconds.
  const totalMs = deps.now() - t0;
  const offset = async (host: string | null, name: HostJobName) =>
    host && deps.stepClock ? clockOffsetMs(await deps.stepClock(host, name, data).catch(() => undefined)) : 0;
  const srcOffset = await offset(movedClock, 'migrate');
  const dstOffset = await offset(to, 'activate');
  const skew: Record<string, number> = {};
  if (srcOffset !== 0) skew[from] = srcOffset;
  if (dstOffset !== 0) skew[to] = dstOffset;
  const pausedAt = moved.pausedAt - srcOffset;
  const attachedAt = reg.attachedAt - dstOffset;
  const liveAt = moved.resumedAt === undefined ? attachedAt : Math.max(moved.resumedAt - srcOffset, attachedAt);
  const downtimeMs = Math.max(moved.downtimeMs, liveAt - pausedAt);
  return {
    guest,
    from,
    to,
    newCoa,
    totalMs,
    downtimeMs,
    resumeToBaMs: reg.registeredAt - dstOffset - liveAt,
    registrationMs: reg.elapsedMs,
    held: moved.held ?? false,
    timings,
    ...(Object.keys(skew).length ? { clockSkewMs: skew } : {}),
  };
}
