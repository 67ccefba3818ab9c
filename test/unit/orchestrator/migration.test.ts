/** The migration flow's order, rollback and roll-forward rules, with fake steps. */
import { describe, expect, it } from 'vitest';
import { clockBounds, clockOffsetMs, runMigration, type MigrationDeps } from '../../../src/orchestrator/migration.js';
import type { HostJobName } from '../../../src/orchestrator/jobs.js';

function world(opts: { fail?: Partial<Record<HostJobName, number>>; host?: string; alive?: string[] } = {}) {
  const calls: string[] = [];
  const failures = { ...opts.fail };
  let coa: string | undefined = '2001:db8:a::2';
  let now = 1000;
  const deps: MigrationDeps = {
    guestHost: async (g) => ({ known: g === 'g1', host: opts.host ?? 'host-a' }),
    hostCoa: async (h) => ((opts.alive ?? ['host-a', 'host-b']).includes(h) ? (h === 'host-a' ? '2001:db8:a::2' : '2001:db8:b::2') : undefined),
    step: async <T,>(host: string, name: HostJobName): Promise<T> => {
      calls.push(`${host}:${name}`);
      now += 5;
      if ((failures[name] ?? 0) > 0) {
        failures[name]!--;
        throw new Error(`${name} broke`);
      }
      if (name === 'migrate') return { totalMs: 30, downtimeMs: 20, pausedAt: now } as T;
      if (name === 'activate') {
        coa = '2001:db8:b::2';
        return { seq: 2, elapsedMs: 3, attempts: 1, attachedAt: now + 10, registeredAt: now + 14 } as T;
      }
      return {} as T;
    },
    bindingCoa: async () => coa,
    completeEpoch: async () => void calls.push('epoch++'),
    now: () => now,
    sleep: async () => void (now += 20),
  };
  const job = { id: 'mig.g1.0', data: { guest: 'g1', to: 'host-b' }, timestamp: 1, attemptsMade: 0, updateProgress: async () => {} };
  return { calls, deps, job };
}

describe('migration flow', () => {
  it('runs validate, prepare (dest), migrate (src), activate (dest), verify, release (src) in order', async () => {
    const w = world();
    const out = await runMigration(w.job, w.deps);
    expect(w.calls).toEqual(['host-b:prepare', 'host-a:migrate', 'host-b:activate', 'host-a:release', 'epoch++']);
    expect(out).toMatchObject({ from: 'host-a', to: 'host-b', newCoa: '2001:db8:b::2', resumeToBaMs: 4, registrationMs: 3 });
    expect(out.downtimeMs).toBeGreaterThanOrEqual(20);
  });

  it('rolls back when the live migration fails: the destination is released, the guest stays', async () => {
    const w = world({ fail: { migrate: 1 } });
    await expect(runMigration(w.job, w.deps)).rejects.toThrow(/rolled back \(guest stays on host-a\)/);
    expect(w.calls).toEqual(['host-b:prepare', 'host-a:migrate', 'host-b:locate', 'host-b:release']);
  });

  it('rolls forward when the migrate step failed after the switch (the guest already runs on the destination)', async () => {
    const w = world({ fail: { migrate: 1 } });
    const step = w.deps.step;
    w.deps.step = async <T,>(host: string, name: Parameters<typeof step>[1], data: Parameters<typeof step>[2]): Promise<T> =>
      name === 'locate' ? ({ runsHere: true } as T) : step<T>(host, name, data);
    const out = await runMigration(w.job, w.deps);
    expect(out).toMatchObject({ from: 'host-a', to: 'host-b', newCoa: '2001:db8:b::2' });
    expect(w.calls).toEqual(['host-b:prepare', 'host-a:migrate', 'host-b:activate', 'host-a:release', 'epoch++']);
  });

  it('a retry after the switch finishes the roll-forward from the recorded source', async () => {
    // First attempt: the switch happens, then verify fails (the HA was down).
    const w = world();
    let recorded: { from?: string } = {};
    const job = { ...w.job, updateData: async (d: typeof w.job.data & { from?: string }) => void (recorded = d) };
    w.deps.bindingCoa = async () => undefined;
    await expect(runMigration(job, w.deps)).rejects.toThrow(/shows nothing/);
    expect(recorded.from).toBe('host-a');
    // The retry: the registry already says host-b; it re-activates, verifies and releases host-a.
    const r = world({ host: 'host-b' });
    const out = await runMigration({ ...r.job, attemptsMade: 1, data: { ...r.job.data, from: 'host-a' } }, r.deps);
    expect(out).toMatchObject({ from: 'host-a', to: 'host-b' });
    expect(r.calls).toEqual(['host-b:activate', 'host-a:release', 'epoch++']);
  });

  it('rejects bad requests without touching any host', async () => {
    for (const [w, msg] of [
      [world({ host: 'host-b' }), /already runs on host-b/],
      [world({ alive: ['host-a'] }), /target host host-b is not alive/],
    ] as const) {
      await expect(runMigration(w.job, w.deps)).rejects.toThrow(msg);
      expect(w.calls).toEqual([]);
    }
    const unknown = world();
    await expect(runMigration({ ...unknown.job, data: { guest: 'nobody', to: 'host-b' } }, unknown.deps)).rejects.toThrow(/not enrolled/);
  });

  it('fails (to be retried, rolling forward) when the HA binding never shows the new CoA', async () => {
    const w = world();
    w.deps.bindingCoa = async () => '2001:db8:a::2';
    await expect(runMigration(w.job, w.deps)).rejects.toThrow(/expected 2001:db8:b::2/);
    expect(w.calls.at(-1)).toBe('host-b:activate');
  });

  describe('hosts whose clocks disagree', () => {
    /** host-b's clock is `skewMs` ahead of ours (and of host-a's); each step costs 5 ms and the queue 2 ms each way. */
    function skewedWorld(skewMs: number, withBounds = true) {
      const w = world();
      let now = 1000;
      const record = new Map<string, { askedAt: number; startedAt: number; finishedAt: number; heardAt: number }>();
      w.deps.now = () => now;
      w.deps.step = async <T,>(host: string, name: HostJobName): Promise<T> => {
        const askedAt = now;
        const hostClock = host === 'host-b' ? skewMs : 0;
        const startedAt = (now += 2) + hostClock;
        let out: unknown = {};
        // The netns driver: the link leaves host-a, 16 ms later host-b has it; attached at activate.
        if (name === 'migrate') out = { totalMs: 20, downtimeMs: 16, pausedAt: now + hostClock, resumedAt: now + 16 + hostClock };
        now += name === 'migrate' ? 20 : 5;
        if (name === 'activate') out = { seq: 2, elapsedMs: 3, attempts: 1, attachedAt: startedAt + 1, registeredAt: now + hostClock };
        const finishedAt = now + hostClock;
        record.set(`${host}:${name}`, { askedAt, startedAt, finishedAt, heardAt: (now += 2) });
        return out as T;
      };
      w.deps.bindingCoa = async () => '2001:db8:b::2';
      if (withBounds) w.deps.stepClock = async (host, name) => clockBounds(record.get(`${host}:${name}`)!);
      return w;
    }

    it('downtime and resume→BA do not carry the skew of the destination, ahead or behind', async () => {
      const base = await runMigration(skewedWorld(0).job, skewedWorld(0).deps);
      for (const skew of [30_000, -30_000, 250, -250]) {
        const w = skewedWorld(skew);
        const out = await runMigration(w.job, w.deps);
        // Off by at most the queue's one-way delay (2 ms here), never by the skew.
        expect(Math.abs(out.downtimeMs - base.downtimeMs), `skew ${skew}`).toBeLessThanOrEqual(2);
        expect(Math.abs(out.resumeToBaMs - base.resumeToBaMs), `skew ${skew}`).toBeLessThanOrEqual(2);
        expect(out.resumeToBaMs).toBeGreaterThanOrEqual(0);
        expect(out.clockSkewMs).toEqual({ 'host-b': expect.closeTo(skew, -1) as number });
      }
      expect(base.clockSkewMs).toBeUndefined();
    });

    it('without clock readings, the hosts\' epoch ms are compared as they are (what synchronised clocks need)', async () => {
      const out = await runMigration(skewedWorld(30_000, false).job, skewedWorld(30_000, false).deps);
      expect(out.downtimeMs).toBeGreaterThan(30_000);
    });

    it('bounds: 0 when the readings allow synchronised clocks, else the bound nearest to 0', () => {
      // Asked at 100, started at 103, finished at 110, heard at 112 (same clock): offset in [-2, 3].
      expect(clockBounds({ askedAt: 100, startedAt: 103, finishedAt: 110, heardAt: 112 })).toEqual({ minMs: -2, maxMs: 3 });
      expect(clockOffsetMs({ minMs: -2, maxMs: 3 })).toBe(0);
      // The host 30 s ahead / behind.
      expect(clockOffsetMs(clockBounds({ askedAt: 100, startedAt: 30_103, finishedAt: 30_110, heardAt: 112 }))).toBe(29_998);
      expect(clockOffsetMs(clockBounds({ askedAt: 100, startedAt: -29_897, finishedAt: -29_890, heardAt: 112 }))).toBe(-29_997);
      // A step found already running: no upper bound, so a host behind us cannot be told apart.
      expect(clockBounds({ startedAt: -29_897, finishedAt: -29_890, heardAt: 112 })).toEqual({ minMs: -30_002, maxMs: Infinity });
      expect(clockOffsetMs({ minMs: -30_002, maxMs: Infinity })).toBe(0);
      // Readings that contradict each other (a clock stepped mid-step) say nothing.
      expect(clockBounds({ askedAt: 100, startedAt: 90, finishedAt: 200, heardAt: 112 })).toBeUndefined();
      expect(clockOffsetMs(undefined)).toBe(0);
    });
  });
});
