/**
 * The hypervisor driver contract: what the host agent and the orchestrator rely on from every
 * HypervisorPort, checked against each driver with a fake hypervisor (a fake `virsh`/`xl` binary
 * answering with real output, a fake QMP server for QEMU). libp2p's interface-compliance
 * suites and BullMQ's adapter conformance are the model.
 */
import { describe, expect, it } from 'vitest';
import type { HypervisorPort, MigrateOptions, MigrationProgress } from '../../../src/ports/hypervisor.js';
import { HypervisorError, HypervisorTimeoutError } from '../../../src/platform/hypervisor/errors.js';

export type Scenario = 'ok' | 'fail' | 'unavailable' | 'hang';

export interface ContractSetup {
  readonly driver: HypervisorPort;
  /** A guest that runs here in the fake hypervisor. */
  readonly guest: string;
  /** Guests the fake lists as running here. */
  readonly listed: readonly string[];
  /** A guest the hypervisor does not know. */
  readonly unknown: string;
  readonly target: string;
  readonly migrateOptions?: MigrateOptions;
  /** The hypervisor's own words for the failed migration and for "not reachable". */
  readonly failureText: RegExp;
  readonly unavailableText: RegExp;
  /** The call that meets the unreachable hypervisor (default: guests()). */
  readonly unavailableCall?: (driver: HypervisorPort) => Promise<unknown>;
  /** Upper bound for the driver's reaction to a hanging hypervisor, ms. */
  readonly hangBoundMs: number;
  /** Whether the hung hypervisor process (or operation) is gone afterwards. */
  readonly hungGone?: () => boolean | Promise<boolean>;
  cleanup(): Promise<void> | void;
}

export function hypervisorContract(name: string, setup: (scenario: Scenario) => Promise<ContractSetup>): void {
  describe(`${name}: HypervisorPort contract`, () => {
    const withSetup = async (scenario: Scenario, fn: (s: ContractSetup) => Promise<void>) => {
      const s = await setup(scenario);
      try {
        await fn(s);
      } finally {
        await s.cleanup();
      }
    };

    it('lists the guests that run here, and knows which do', () =>
      withSetup('ok', async (s) => {
        expect(await s.driver.guests()).toEqual([...s.listed].sort());
        expect(await s.driver.runsHere(s.guest)).toBe(true);
        expect(await s.driver.runsHere(s.unknown)).toBe(false);
      }));

    it('migrates: progress setup → paused → resumed → completed, and the hypervisor\'s own times', () =>
      withSetup('ok', async (s) => {
        const phases: MigrationProgress[] = [];
        const t0 = Date.now();
        const r = await s.driver.migrate(s.guest, s.target, (p) => phases.push(p), s.migrateOptions);
        const t1 = Date.now();
        const order = phases.map((p) => p.phase).filter((p) => p !== 'copying');
        expect(order[0]).toBe('setup');
        expect(order.indexOf('paused')).toBeGreaterThan(0);
        expect(order.indexOf('resumed')).toBeGreaterThan(order.indexOf('paused'));
        expect(order.at(-1)).toBe('completed');
        expect(r.totalMs).toBeGreaterThan(0);
        expect(r.downtimeMs).toBeGreaterThanOrEqual(0);
        expect(r.downtimeMs).toBeLessThanOrEqual(r.totalMs);
        expect(r.resumedAt).toBeGreaterThanOrEqual(t0 - 5);
        expect(r.resumedAt).toBeLessThanOrEqual(t1 + 5);
        for (const p of phases.filter((x) => x.fraction !== undefined)) expect(p.fraction).toBeGreaterThanOrEqual(0);
      }));

    it("a failed migration rejects with the hypervisor's error, naming the guest", () =>
      withSetup('fail', async (s) => {
        const err = await s.driver.migrate(s.guest, s.target, () => {}, s.migrateOptions).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HypervisorError);
        expect((err as Error).message).toMatch(s.failureText);
        expect((err as Error).message).toContain(s.guest);
        expect((err as HypervisorError).code).toBe('ROAM6_ERR_HYPERVISOR');
      }));

    it('an unreachable hypervisor is a clear error, not a hang', () =>
      withSetup('unavailable', async (s) => {
        const err = await (s.unavailableCall ? s.unavailableCall(s.driver) : s.driver.guests()).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HypervisorError);
        expect((err as Error).message).toMatch(s.unavailableText);
      }));

    it('a hypervisor that hangs is stopped, with a timeout error', () =>
      withSetup('hang', async (s) => {
        const t0 = Date.now();
        const err = await s.driver.migrate(s.guest, s.target, () => {}, s.migrateOptions).catch((e: unknown) => e);
        expect(Date.now() - t0).toBeLessThan(s.hangBoundMs);
        expect(err).toBeInstanceOf(HypervisorTimeoutError);
        expect((err as HypervisorTimeoutError).code).toBe('ROAM6_ERR_HYPERVISOR_TIMEOUT');
        expect((err as Error).message).toMatch(/did not (finish|complete) within \d+ ms/);
        if (s.hungGone) expect(await s.hungGone()).toBe(true);
      }));
  });
}
