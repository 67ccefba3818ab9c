/**
 * The flow with a hypervisor that prepares an incoming guest (QEMU): the destination's incoming
 * URI reaches the source's migrate step, and the outcome's pause and resume→BA are measured from
 * the hypervisor's resume when the guest's TAP was attached before it.
 */
import { describe, expect, it } from 'vitest';
import { runMigration, type MigrationDeps } from '../../../src/orchestrator/migration.js';
import type { HostJobData, HostJobName } from '../../../src/orchestrator/jobs.js';

describe('migration flow with an incoming guest', () => {
  it('passes the incoming URI on and measures from the resume', async () => {
    const steps: { host: string; name: HostJobName; data: HostJobData }[] = [];
    let coa = '2001:db8:a::2';
    const deps: MigrationDeps = {
      guestHost: async () => ({ known: true, host: 'host-a' }),
      hostCoa: async (h) => (h === 'host-a' ? '2001:db8:a::2' : '2001:db8:b::2'),
      step: async <T,>(host: string, name: HostJobName, data: HostJobData): Promise<T> => {
        steps.push({ host, name, data });
        if (name === 'prepare') return { ifname: 'r6gx', incoming: 'unix:/state/r6vx.migrate' } as T;
        // paused 10_000, QEMU downtime 40 ms → resumed 10_040; the TAP was attached at prepare (9_000)
        if (name === 'migrate') return { totalMs: 700, downtimeMs: 40, pausedAt: 10_000, resumedAt: 10_040 } as T;
        if (name === 'activate') {
          coa = '2001:db8:b::2';
          return { seq: 3, elapsedMs: 4, attempts: 1, attachedAt: 9_000, registeredAt: 10_052 } as T;
        }
        return {} as T;
      },
      bindingCoa: async () => coa,
      completeEpoch: async () => {},
      now: () => 20_000,
      sleep: async () => {},
    };
    const job = { id: 'mig.g1.0', data: { guest: 'g1', to: 'host-b' }, timestamp: 1, attemptsMade: 0, updateProgress: async () => {} };
    const out = await runMigration(job, deps);
    expect(steps.find((s) => s.name === 'migrate')?.data).toMatchObject({ to: 'host-b', toCoa: '2001:db8:b::2', incoming: 'unix:/state/r6vx.migrate' });
    expect(out).toMatchObject({ downtimeMs: 40, resumeToBaMs: 12 });
  });
});
