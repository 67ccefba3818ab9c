/**
 * Job names, payloads and ids of the migration flow (docs/orchestration.md describes each).
 *
 * Queues: one per host agent (`host-<id>`) and one for the orchestrator (`orchestrator`), all
 * under the hash-tagged BullMQ prefix from platform/redis/keys.ts so they work on Cluster.
 * A migration's job id is deterministic — `mig.<guest>.<epoch>` where the epoch is the guest's
 * completed-migration count — so a duplicate request while one runs joins it.
 */
import { z } from 'zod';

export const ORCHESTRATOR_QUEUE = 'orchestrator';
// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
export const hostQueue = (hostId: string): string => `host-${hostId}`;

export type HostJobName = 'prepare' | 'migrate' | 'activate' | 'release' | 'locate';

export const migrateRequest = z
  .object({
    guest: z.string().min(1).max(254).regex(NO_CONTROL, 'must not contain control characters'),
    to: z.string().min(1).max(63).regex(NO_CONTROL, 'must not contain control characters'),
    /** Group id when the migration is part of a rebalance. */
    batch: z.string().max(128).optional(),
    /** Set by the orchestrator once validated: the source host, so a retry can finish a roll-forward. */
    from: z.string().min(1).max(63).optional(),
  })
  .strict();
export type MigrateRequest = z.infer<typeof migrateRequest>;

export interface HostJobData {
  readonly guest: string;
  /** The migration this step belongs to (for logs and progress). */
  readonly migration: string;
  /** migrate only: the destination host. */
  readonly to?: string;
  /** migrate only: where the destination's hypervisor waits for the guest (its prepare result). */
  readonly incoming?: string;
  /** migrate only: the destination's CoA (the HA lets the guest's packets from it in during the hold). */
  readonly toCoa?: string;
}

export type MigrationPhase = 'validate' | 'prepare' | 'migrate' | 'activate' | 'verify' | 'release' | 'rollback' | 'done' | 'failed';

export interface MigrationProgressData {
  readonly phase: MigrationPhase;
  readonly from?: string;
  readonly to?: string;
  /** ms since the migration started, at the end of each completed phase. */
  readonly timings: Partial<Record<MigrationPhase, number>>;
}

export interface MigrationOutcome {
  readonly guest: string;
  readonly from: string;
  readonly to: string;
  readonly newCoa: string;
  readonly totalMs: number;
  /** The hypervisor's own downtime. */
  readonly downtimeMs: number;
  /** From the guest resuming on the destination to the BA. */
  readonly resumeToBaMs: number;
  /** BU → BA at the destination agent. */
  readonly registrationMs: number;
  /** The HA held the guest's packets over the switch and delivered them at the new host. */
  readonly held?: boolean;
  readonly timings: Partial<Record<MigrationPhase, number>>;
  /**
   * Hosts whose clock the steps proved off from the orchestrator's, ms (host minus orchestrator,
   * the smallest skew consistent with the queue's timestamps); absent when the clocks agree.
   * The times above are already corrected for it.
   */
  readonly clockSkewMs?: Readonly<Record<string, number>>;
}

/** Job ids may not contain ':' in BullMQ; guest ids (NAIs) may contain '@' and '.', which are fine. */
export function migrationJobId(guest: string, epoch: number): string {
  return `mig.${guest.replaceAll(':', '_')}.${epoch}`;
}

export function stepJobId(migration: string, step: HostJobName): string {
  return `${migration}.${step}`;
}
