/**
 * The `qemu` hypervisor driver: real live migration of a QEMU guest over QMP.
 *
 * Every guest of this host is one daemonized QEMU whose files live in `stateDir`, named by the
 * guest's TAP (`guestPortName(guest)`): `<stem>.pid`, `<stem>.qmp` (QMP socket), `<stem>.serial`
 * (console log), and while it waits for a migration `<stem>.migrate` (unix transport) and
 * `<stem>.incoming.json`. QEMU outlives the agent; the driver finds it again by these files.
 *
 * A migration, as the orchestrator runs it:
 *   destination `prepareIncoming` — start the same machine with `-incoming defer` and its TAP
 *       (which the agent then attaches to the guest link), `migrate-incoming URI`;
 *   source `migrate` — `migrate URI` over QMP, follow `query-migrate` and the STOP / MIGRATION
 *       events, report the downtime and total time. When the caller wants to act before the
 *       pause (`MigrateOptions.beforePause`: the HA holds the guest's packets), the driver
 *       decides the switchover itself — see `#migrate`;
 *   destination — resume the guest when it arrives paused (the source paused it for the
 *       switchover), at once on the incoming side's MIGRATION event;
 *   source `discardGuest` (release) — `quit` the source QEMU, left paused in `postmigrate`;
 *   destination `discardGuest` (rollback) — `quit` the incoming QEMU that never got the guest.
 *
 * The two command lines are identical except the backends (command-line.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../ports/clock.js';
import type { HypervisorPort, IncomingMigration, IncomingOptions, MigrateOptions, MigrationProgress, MigrationResult } from '../../ports/hypervisor.js';
import { silentLogger, type Logger } from '../../ports/log.js';
import { KeyedQueue } from '../../core/keyed-queue.js';
import { parseQemuGuestFile, type QemuGuestDefinitionInput } from '../../config/hypervisor-config.js';
import { systemClock } from '../system-clock.js';
import { HypervisorError, HypervisorTimeoutError } from '../hypervisor/errors.js';
import { processAlive, processMentions, readPidfile, stopProcess, waitForExit } from '../hypervisor/process.js';
import { DEFAULT_GUEST_DEFINITION, qemuArgs, qemuGuestPaths, type QemuGuestDefinition, type QemuGuestPaths } from './command-line.js';
import { QmpClient, QmpError, type QmpEvent } from './qmp.js';

export type QemuIncomingTransport = { readonly transport: 'unix' } | { readonly transport: 'tcp'; readonly address: string; readonly ports: readonly [number, number] };

export interface QemuDriverOptions {
  readonly stateDir: string;
  /** Per-guest definition files `<encodeURIComponent(id)>.json` (default `<stateDir>/guests`). */
  readonly guestsDir?: string;
  /** Definitions from the agent config, by guest id (win over files). */
  readonly guests?: Readonly<Record<string, QemuGuestDefinitionInput>>;
  readonly defaults?: QemuGuestDefinitionInput;
  readonly binary?: string;
  readonly incoming?: QemuIncomingTransport;
  readonly maxBandwidthMiBs?: number;
  readonly downtimeLimitMs?: number;
  readonly migrateTimeoutMs?: number;
  readonly startTimeoutMs?: number;
  /** Run QEMU through this prefix (the lab: `ip netns exec <host>`); QEMU daemonizes either way. */
  readonly spawnPrefix?: readonly string[];
  /** Whether an interface exists on this host (default: rtnetlink in this namespace). */
  readonly linkExists?: (ifname: string) => Promise<boolean>;
  /** Poll interval of `query-migrate` (default 50 ms; 2 ms while the driver switches over). */
  readonly pollMs?: number;
  /**
   * Who decides the moment of the stop-and-copy when the caller acts before the pause:
   * `driver` (default) — the driver, so the HA's hold is in place before the guest stops;
   * `qemu` — QEMU itself, and the caller acts on its STOP event (packets the HA forwards in
   * between are lost in the source TAP).
   */
  readonly switchover?: 'driver' | 'qemu';
  /** `driver` switchover: how long before the first pass ends to ask for the hold, at first and at most (default 25 ms; see `switchoverLead`). */
  readonly switchoverLeadMs?: number;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** QEMU's run state (`query-status`), or `absent` when no QEMU of the guest runs here. */
export type QemuRunState = 'absent' | 'unresponsive' | string;

/** QEMU's default `downtime-limit`, ms, and `max-bandwidth`, bytes/s (7.2: 128 MiB/s). */
const QEMU_DOWNTIME_LIMIT_MS = 300;
const QEMU_MAX_BANDWIDTH = 128 * 1024 * 1024;
/**
 * `max-bandwidth` when the driver switches over and none is configured: no cap. A capped QEMU
 * sleeps out each 100 ms rate-limit window once it has sent the window's share, and a `stop`
 * that lands in such a sleep waits for it: up to 100 ms more downtime. (QEMU's own stop-and-copy
 * is not throttled.) With `maxBandwidthMiBs` set, that cap holds and so can the wait.
 */
const UNCAPPED = 64 * 1024 * 1024 * 1024;
/**
 * The `downtime-limit` the source runs with while the driver waits to switch over: QEMU does
 * not converge (stop the guest) on its own before the end of the first pass over the RAM.
 */
const PARKED_DOWNTIME_LIMIT_MS = 1;
/** Poll interval of `query-migrate` while the driver waits to switch over, ms. */
const SWITCH_POLL_MS = 2;

/** Run states in which the guest lives on this host (everything but waiting for or having given it away). */
const NOT_HERE = new Set(['absent', 'inmigrate', 'postmigrate', 'prelaunch', 'shutdown', 'unresponsive']);

export function runsInState(state: QemuRunState): boolean {
  return !NOT_HERE.has(state);
}

export interface MigrateInfo {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'expected-downtime'?: number;
  'setup-time'?: number;
  'error-desc'?: string;
  ram?: { transferred?: number; total?: number; remaining?: number; mbps?: number; 'dirty-sync-count'?: number };
}

interface IncomingRecord {
  readonly guest: string;
  readonly uri: string;
  readonly pid: number;
  readonly startedAt: string;
}

export class QemuDriver implements HypervisorPort {
  readonly name = 'qemu';
  readonly #opts: QemuDriverOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #queue = new KeyedQueue();
  /** QMP connections kept open to incoming QEMUs, to see their RESUME at once. */
  readonly #incoming = new Map<string, QmpClient>();
  /** How long the last holds took to be in place (`beforePause`), ms: the switchover's lead follows them. */
  readonly #holdMs: number[] = [];
  #rtnl: { linkByName(n: string): Promise<unknown>; close(): void } | null = null;

  constructor(opts: QemuDriverOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log ?? silentLogger;
  }

  get stateDir(): string {
    return this.#opts.stateDir;
  }

  get guestsDir(): string {
    return this.#opts.guestsDir ?? join(this.#opts.stateDir, 'guests');
  }

  paths(guest: string): QemuGuestPaths {
    return qemuGuestPaths(this.#opts.stateDir, guest);
  }

  /** The guest's machine: built-in defaults ← config defaults ← its file ← config guests[id]. */
  definition(guest: string): QemuGuestDefinition {
    const file = join(this.guestsDir, `${encodeURIComponent(guest)}.json`);
    let fromFile: QemuGuestDefinitionInput = {};
    if (existsSync(file)) {
      const { id, ...rest } = parseQemuGuestFile(JSON.parse(readFileSync(file, 'utf8')), file);
      if (id !== guest) throw new HypervisorError(`${file} describes guest ${id}, not ${guest}`);
      fromFile = rest;
    }
    const def: QemuGuestDefinition = { ...DEFAULT_GUEST_DEFINITION, ...this.#opts.defaults, ...fromFile, ...this.#opts.guests?.[guest] };
    if (!def.kernel && def.disks.length === 0) {
      throw new HypervisorError(`no QEMU definition for guest ${guest}: give it a kernel or disks (hypervisor.qemu.guests in the agent config, or ${file})`);
    }
    return def;
  }

  /** The argv (binary first) of the guest's QEMU on this host. */
  commandLine(guest: string, role: { incoming: boolean }): string[] {
    return [this.#opts.binary ?? 'qemu-system-x86_64', ...qemuArgs(guest, this.definition(guest), this.paths(guest), role)];
  }

  /** The guest's TAP when it exists on this host (the guest links attach it), else null. */
  async guestInterface(guest: string): Promise<string | null> {
    const name = this.paths(guest).stem;
    return (await this.#linkExists(name)) ? name : null;
  }

  /** QEMU's run state for the guest here, or `absent`. */
  state(guest: string): Promise<QemuRunState> {
    return this.#queue.run(guest, () => this.#state(guest));
  }

  async guests(): Promise<string[]> {
    let names: string[];
    try {
      names = readdirSync(this.#opts.stateDir).filter((n) => n.endsWith('.pid'));
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const n of names) {
      const pid = readPidfile(join(this.#opts.stateDir, n));
      const guest = pid === null ? null : guestOfProcess(pid);
      if (guest && runsInState(await this.state(guest))) out.push(guest);
    }
    return out.sort();
  }

  async runsHere(guest: string): Promise<boolean> {
    return runsInState(await this.state(guest));
  }

  /** Boot the guest on this host (not a migration). Resolves with QEMU's pid; joins a running one. */
  start(guest: string): Promise<{ pid: number; state: QemuRunState }> {
    return this.#queue.run(guest, async () => {
      const st = await this.#state(guest);
      if (runsInState(st)) return { pid: readPidfile(this.paths(guest).pidfile)!, state: st };
      if (st !== 'absent') await this.#quit(guest);
      const pid = await this.#spawn(guest, false);
      const client = await this.#connect(guest);
      try {
        const s = await client.execute<{ status: string }>('query-status');
        this.#log.info({ guest, pid, status: s.status }, 'qemu guest started');
        return { pid, state: s.status };
      } finally {
        client.close();
      }
    });
  }

  /** Power the guest off here (QMP quit), whatever its state. */
  stop(guest: string): Promise<void> {
    return this.#queue.run(guest, () => this.#quit(guest));
  }

  /**
   * Start the guest's QEMU here with `-incoming defer` and listen for its migration stream.
   * The QMP connection stays open until QEMU reports RESUME (then `onResumed`), so the agent
   * learns of the arrival without polling. Idempotent: a QEMU already waiting is reused.
   */
  prepareIncoming(guest: string, opts: IncomingOptions = {}): Promise<IncomingMigration | null> {
    return this.#queue.run(guest, async () => {
      const paths = this.paths(guest);
      const st = await this.#state(guest);
      if (runsInState(st)) return null;
      if (st === 'inmigrate') {
        const rec = readIncoming(paths.incomingRecord);
        if (rec && rec.pid === readPidfile(paths.pidfile)) {
          if (!this.#incoming.has(guest)) this.#watchIncoming(guest, await this.#connect(guest), opts);
          return { uri: rec.uri };
        }
      }
      // A QEMU that does not answer may be running the guest: never replace it blindly.
      if (st === 'unresponsive') throw new HypervisorError(`a QEMU for guest ${guest} runs here but does not answer on QMP; not replacing it (check it, then roam6 qemu stop)`);
      if (st !== 'absent') await this.#quit(guest); // a leftover (postmigrate, stale incoming)
      const pid = await this.#spawn(guest, true);
      const client = await this.#connect(guest);
      try {
        await client.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
        const uri = await this.#listen(client, guest, paths);
        const rec: IncomingRecord = { guest, uri, pid, startedAt: new Date(this.#clock.now()).toISOString() };
        writeFileSync(paths.incomingRecord, `${JSON.stringify(rec)}\n`);
        this.#watchIncoming(guest, client, opts);
        this.#log.info({ guest, pid, uri }, 'qemu incoming guest ready');
        return { uri };
      } catch (e) {
        client.close();
        await this.#quit(guest);
        throw e;
      }
    });
  }

  /**
   * At agent start: quit QEMUs left in `postmigrate` (their guest completed a migration away, but
   * the release step never ran, e.g. the agent died). Incoming QEMUs are left alone: a migration
   * may still be on its way to them. Returns the guests cleaned up.
   */
  async removeLeftovers(): Promise<string[]> {
    const done: string[] = [];
    for (const n of safeReaddir(this.#opts.stateDir).filter((f) => f.endsWith('.pid'))) {
      const pid = readPidfile(join(this.#opts.stateDir, n));
      const guest = pid === null ? null : guestOfProcess(pid);
      if (!guest) continue;
      await this.#queue.run(guest, async () => {
        if ((await this.#state(guest)) !== 'postmigrate') return;
        await this.#quit(guest);
        done.push(guest);
      });
    }
    if (done.length) this.#log.info({ guests: done }, 'quit QEMUs left after completed migrations');
    return done;
  }

  discardGuest(guest: string): Promise<void> {
    return this.#queue.run(guest, async () => {
      const st = await this.#state(guest);
      if (runsInState(st)) {
        this.#log.warn({ guest, state: st }, 'not discarding a guest that runs here');
        return;
      }
      if (st === 'unresponsive') {
        // It may be running the guest (a migration that did complete): a leftover QEMU is the lesser harm.
        this.#log.error({ guest }, 'not discarding a QEMU that does not answer on QMP: it may run the guest; check it, then roam6 qemu stop');
        return;
      }
      await this.#quit(guest);
    });
  }

  migrate(guest: string, targetHost: string, onProgress: (p: MigrationProgress) => void, opts: MigrateOptions = {}): Promise<MigrationResult> {
    return this.#queue.run(guest, async () => {
      const uri = opts.incoming;
      if (!uri) throw new HypervisorError(`migration of ${guest} to ${targetHost}: the destination prepared no incoming QEMU (is ${targetHost} running the qemu driver?)`);
      const st = await this.#state(guest);
      if (!runsInState(st)) throw new HypervisorError(`guest ${guest} does not run on this host (QEMU state: ${st})`);
      // The destination resumes a guest that arrives paused (ours paused it for the switchover),
      // so a guest paused on purpose would arrive running: refuse it instead.
      if (st === 'paused') throw new HypervisorError(`guest ${guest} is paused on this host; roam6 live-migrates running guests and resumes them at the destination: resume it first (QMP cont), or stop it`);
      const client = await this.#connect(guest);
      try {
        const driverSwitch = opts.beforePause !== undefined && st === 'running' && (this.#opts.switchover ?? 'driver') === 'driver';
        return await this.#migrate(client, guest, targetHost, uri, onProgress, driverSwitch ? opts.beforePause : undefined);
      } finally {
        client.close();
      }
    });
  }

  close(): void {
    for (const c of this.#incoming.values()) c.close();
    this.#incoming.clear();
    this.#rtnl?.close();
    this.#rtnl = null;
  }

  // -------------------------------------------------------------------------------------------

  /**
   * The source side of a migration. With `beforePause` the driver decides the switchover, so
   * the HA holds the guest's packets *before* the guest stops, and none die in the source TAP:
   *   1. QEMU copies with a 1 ms `downtime-limit` (and no bandwidth cap unless configured), so
   *      it does not stop the guest before its first pass over the RAM ends;
   *   2. `SwitchoverPlanner` predicts the end of the pass; a lead before it (`switchoverLead`),
   *      the hold (`beforePause`); with the hold in place any stop loses nothing, so the guest
   *      runs on until QEMU stops it at the end of the pass (or, if QEMU synced again instead,
   *      or after `MAX_HELD_RUNNING_MS`, QMP `stop`), then the real limit back, the cap lifted;
   *   3. QEMU copies the rest of the pass and what the guest dirtied meanwhile from the stopped
   *      guest, and completes; the destination resumes the guest.
   * If QEMU stops the guest on its own first (the hold took longer than the lead), the caller
   * acts on the 'paused' event as without, and packets in between may be lost.
   */
  async #migrate(client: QmpClient, guest: string, targetHost: string, uri: string, onProgress: (p: MigrationProgress) => void, beforePause?: () => Promise<void>): Promise<MigrationResult> {
    const timeoutMs = this.#opts.migrateTimeoutMs ?? 120_000;
    const pollMs = this.#opts.pollMs ?? 50;
    const limitMs = this.#opts.downtimeLimitMs ?? QEMU_DOWNTIME_LIMIT_MS;
    await client.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    // Always set both: QEMU keeps parameters, and a parked limit or a lifted cap must not outlive a failed migration.
    const cap = this.#opts.maxBandwidthMiBs !== undefined ? Math.round(this.#opts.maxBandwidthMiBs * 1024 * 1024) : beforePause ? UNCAPPED : QEMU_MAX_BANDWIDTH;
    await client.execute('migrate-set-parameters', { 'downtime-limit': beforePause ? PARKED_DOWNTIME_LIMIT_MS : limitMs, 'max-bandwidth': cap });
    const planner = beforePause ? new SwitchoverPlanner(switchoverLead(this.#opts.switchoverLeadMs ?? SWITCHOVER_LEAD_MS, this.#holdMs)) : null;

    let pausedAt: number | null = null;
    let completedAt: number | null = null;
    let eventStatus: string | null = null;
    let wake: (() => void) | null = null;
    const off = client.onEvent((e: QmpEvent) => {
      if (e.event === 'STOP' && pausedAt === null) {
        pausedAt = e.at;
        onProgress({ phase: 'paused', at: e.at });
      } else if (e.event === 'MIGRATION' && typeof e.data.status === 'string') {
        eventStatus = e.data.status;
        if (eventStatus === 'completed' && completedAt === null) {
          completedAt = e.at;
          onProgress({ phase: 'left', at: e.at }); // the destination has all of it and resumes it now
        }
        if (eventStatus === 'completed' || eventStatus === 'failed' || eventStatus === 'cancelled') wake?.();
      }
    });
    // Poll query-migrate for progress, but wake at once on the MIGRATION event that ends it.
    const nap = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        function done() {
          clearTimeout(t);
          wake = null;
          resolve();
        }
        wake = done;
      });
    /**
     * The driver's switchover: 'parked' (waiting for the lead), 'held' (the HA holds, the guest
     * still runs), 'done' (stopped, by us or by QEMU). null: QEMU decides.
     */
    let phase = (beforePause ? 'parked' : null) as 'parked' | 'held' | 'done' | null;
    let stoppedByUs = false;
    /** For the log: what was left of the pass at the hold and at the stop, and how long the hold took. */
    const sw: { remainingAtHold?: number; holdMs?: number; leadMs?: number; heldRunningMs?: number; remainingAtStop?: number } = {};
    let heldAt = 0;
    const hold = async (remaining: number | undefined): Promise<void> => {
      const t = this.#clock.now();
      try {
        await beforePause!();
      } catch (e) {
        this.#log.warn({ guest, err: String(e) }, 'the step before the pause failed; switching over anyway');
      }
      heldAt = this.#clock.now();
      Object.assign(sw, { remainingAtHold: remaining, holdMs: heldAt - t, leadMs: planner!.leadMs });
      this.#holdMs.push(heldAt - t);
      if (this.#holdMs.length > 8) this.#holdMs.shift();
      phase = 'held';
    };
    const stop = async (remaining: number | undefined): Promise<void> => {
      phase = 'done';
      if (pausedAt === null) {
        await client.execute('stop');
        stoppedByUs = true;
        Object.assign(sw, { remainingAtStop: remaining, heldRunningMs: this.#clock.now() - heldAt });
      }
      await client.execute('migrate-set-parameters', { 'downtime-limit': limitMs, ...(stoppedByUs ? { 'max-bandwidth': UNCAPPED } : {}) });
    };
    try {
      const t0 = this.#clock.now();
      onProgress({ phase: 'setup', at: t0 });
      this.#log.info({ guest, to: targetHost, uri, switchover: beforePause ? 'driver' : 'qemu' }, 'qemu live migration starting');
      try {
        await client.execute('migrate', { uri });
      } catch (e) {
        throw new HypervisorError(`live migration of ${guest} to ${targetHost} (${uri}) was refused: ${e instanceof Error ? e.message : String(e)}`);
      }
      let info: MigrateInfo = {};
      for (;;) {
        info = await client.execute<MigrateInfo>('query-migrate');
        const status = info.status ?? eventStatus ?? 'none';
        if (status === 'completed' || status === 'failed' || status === 'cancelled') break;
        if (status === 'active' && info.ram?.total) {
          onProgress({ phase: 'copying', fraction: Math.min(1, (info.ram.transferred ?? 0) / info.ram.total), at: this.#clock.now() });
        }
        if (status === 'active' && phase === 'parked' && (pausedAt !== null || planner!.ready(this.#clock.now(), info))) await hold(info.ram?.remaining);
        if (status === 'active' && phase === 'held') {
          // The hold is in place: any stop loses nothing now, and the later, the shorter the
          // pause. QEMU stops the guest itself at the end of the pass when what the guest
          // dirtied fits its 1 ms; if it did not (it synced again), or the pass drags on, we do.
          const overdue = pausedAt !== null || (info.ram?.['dirty-sync-count'] ?? 0) >= 2 || this.#clock.now() - heldAt >= MAX_HELD_RUNNING_MS;
          if (overdue) await stop(info.ram?.remaining);
        }
        if (this.#clock.now() - t0 > timeoutMs) {
          await client.execute('migrate_cancel').catch(() => undefined);
          await this.#ensureRunning(client, guest);
          throw new HypervisorTimeoutError(`live migration of ${guest} to ${targetHost} did not complete within ${timeoutMs} ms; cancelled, the guest keeps running here`);
        }
        await nap(phase === 'parked' || phase === 'held' ? Math.min(pollMs, SWITCH_POLL_MS) : pollMs);
      }
      const endedAt = this.#clock.now();
      if (info.status !== 'completed') {
        const why = info['error-desc'] ?? info.status ?? 'unknown error';
        await this.#ensureRunning(client, guest);
        throw new HypervisorError(`live migration of ${guest} to ${targetHost} failed: ${why}; the guest keeps running here`);
      }
      // QEMU 7.2 sets `completed` before it computes the times: ask again until they are there.
      for (let i = 0; i < 200 && !(info['total-time'] ?? 0); i++) {
        await sleep(5);
        info = await client.execute<MigrateInfo>('query-migrate');
      }
      // QEMU counts its downtime from its own stop; when we stopped the guest, count from ours.
      const qemuDowntime = info.downtime ?? 0;
      const downtimeMs = stoppedByUs && pausedAt !== null ? Math.max(qemuDowntime, (completedAt ?? endedAt) - pausedAt) : qemuDowntime;
      const totalMs = info['total-time'] || endedAt - t0;
      const paused = pausedAt ?? endedAt - downtimeMs;
      const resumedAt = paused + downtimeMs;
      if (pausedAt === null) onProgress({ phase: 'paused', at: paused }); // no STOP event seen
      onProgress({ phase: 'resumed', at: resumedAt });
      onProgress({ phase: 'completed', fraction: 1, at: endedAt });
      this.#log.info({ guest, to: targetHost, totalMs, downtimeMs, qemuDowntimeMs: qemuDowntime, stoppedBy: stoppedByUs ? 'driver' : 'qemu', ...(phase !== null ? { switchover: sw } : {}), setupMs: info['setup-time'] ?? null }, 'qemu live migration completed');
      return { totalMs, downtimeMs, resumedAt };
    } finally {
      off();
    }
  }

  #watchIncoming(guest: string, client: QmpClient, opts: IncomingOptions): void {
    this.#incoming.set(guest, client);
    let resuming: Promise<unknown> = Promise.resolve();
    const off = client.onEvent((e) => {
      if (e.event === 'MIGRATION' && e.data.status === 'completed') {
        // The guest arrived. QEMU sends RESUME before this when it started the guest itself;
        // without one, the source stopped it for the switchover: resume it now, no query first.
        resuming = this.#resumeArrival(guest, client, { paused: true });
        return;
      }
      if (e.event !== 'RESUME') return;
      off();
      if (this.#incoming.get(guest) === client) this.#incoming.delete(guest);
      // `cont`'s RESUME comes before its return: close only once that is read, or QEMU hands
      // the return to the next client in place of its greeting.
      void resuming.finally(() => client.close());
      this.#log.info({ guest, resumedAt: e.at }, 'qemu guest resumed here');
      opts.onResumed?.(e.at);
    });
    client.onClose(() => {
      if (this.#incoming.get(guest) === client) this.#incoming.delete(guest);
    });
  }

  /**
   * A guest that arrived here paused: its source stopped it for the switchover (the source
   * refuses to migrate a guest paused on purpose), so it is meant to run. Returns its state after.
   */
  async #resumeArrival(guest: string, client: QmpClient, known?: { paused: true }): Promise<string> {
    try {
      if (!known) {
        const { status } = await client.execute<{ status: string }>('query-status');
        if (status !== 'paused') return status;
      }
      await client.execute('cont');
      this.#log.info({ guest }, 'resumed the guest its source paused for the switchover');
      return 'running';
    } catch (e) {
      this.#log.error({ guest, err: String(e) }, 'could not resume the guest that arrived paused');
      return 'unresponsive';
    }
  }

  /** After a failed or cancelled migration QEMU normally resumes the source itself; make sure. */
  async #ensureRunning(client: QmpClient, guest: string): Promise<void> {
    try {
      const s = await client.execute<{ status: string }>('query-status');
      if (s.status === 'paused' || s.status === 'postmigrate' || s.status === 'finish-migrate') {
        this.#log.warn({ guest, status: s.status }, 'source paused after a failed migration; resuming it');
        await client.execute('cont');
      }
    } catch (e) {
      this.#log.error({ guest, err: String(e) }, 'could not check the source after a failed migration');
    }
  }

  async #listen(client: QmpClient, guest: string, paths: QemuGuestPaths): Promise<string> {
    const t = this.#opts.incoming ?? { transport: 'unix' as const };
    if (t.transport === 'unix') {
      rmSync(paths.migrationSocket, { force: true });
      const uri = `unix:${paths.migrationSocket}`;
      await client.execute('migrate-incoming', { uri });
      return uri;
    }
    const taken = new Set<number>();
    for (const n of safeReaddir(this.#opts.stateDir).filter((f) => f.endsWith('.incoming.json'))) {
      const rec = readIncoming(join(this.#opts.stateDir, n));
      const port = rec ? Number(/:(\d+)$/.exec(rec.uri)?.[1]) : NaN;
      if (rec && rec.guest !== guest && processAlive(rec.pid) && Number.isInteger(port)) taken.add(port);
    }
    const host = t.address.includes(':') ? `[${t.address}]` : t.address;
    let last: unknown = null;
    for (let port = t.ports[0]; port <= t.ports[1]; port++) {
      if (taken.has(port)) continue;
      const uri = `tcp:${host}:${port}`;
      try {
        await client.execute('migrate-incoming', { uri });
        return uri;
      } catch (e) {
        last = e;
        if (!(e instanceof QmpError) || !/in use|bind/i.test(e.message)) break;
      }
    }
    throw new HypervisorError(`guest ${guest}: no incoming migration port in ${t.ports[0]}–${t.ports[1]} on ${t.address}: ${last instanceof Error ? last.message : 'all taken'}`);
  }

  async #state(guest: string): Promise<QemuRunState> {
    const paths = this.paths(guest);
    const pid = readPidfile(paths.pidfile);
    if (pid === null || !processAlive(pid) || !processMentions(pid, paths.qmp)) return 'absent';
    const open = this.#incoming.get(guest);
    if (open && !open.closed) {
      try {
        return (await open.execute<{ status: string }>('query-status', undefined, { timeoutMs: 3000 })).status;
      } catch (e) {
        this.#log.warn({ guest, pid, err: String(e) }, 'incoming qemu does not answer on QMP');
        return 'unresponsive';
      }
    }
    try {
      const client = await QmpClient.connect(paths.qmp, { timeoutMs: 3000 });
      try {
        let status = (await client.execute<{ status: string }>('query-status')).status;
        if (runsInState(status) && existsSync(paths.incomingRecord)) {
          // It arrived. Paused: nobody resumed it after the switchover (the agent was down then).
          if (status === 'paused') status = await this.#resumeArrival(guest, client);
          rmSync(paths.incomingRecord, { force: true });
        }
        return status;
      } finally {
        client.close();
      }
    } catch (e) {
      this.#log.warn({ guest, pid, err: String(e) }, 'qemu does not answer on QMP');
      return 'unresponsive';
    }
  }

  async #spawn(guest: string, incoming: boolean): Promise<number> {
    const paths = this.paths(guest);
    mkdirSync(this.#opts.stateDir, { recursive: true, mode: 0o700 });
    for (const f of [paths.pidfile, paths.qmp, paths.migrationSocket, paths.incomingRecord]) rmSync(f, { force: true });
    const argv = this.commandLine(guest, { incoming });
    const full = [...(this.#opts.spawnPrefix ?? []), ...argv];
    const timeoutMs = this.#opts.startTimeoutMs ?? 15_000;
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new HypervisorTimeoutError(`QEMU for guest ${guest} did not daemonize within ${timeoutMs} ms: ${err.trim()}`));
      }, timeoutMs);
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new HypervisorError(`cannot run ${full[0]}: ${e.code ?? e.message}${e.code === 'ENOENT' ? ' (apt-get install qemu-system-x86)' : ''}`));
      });
      // `close`: the daemonizing parent has exited and the daemon has let go of stderr.
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stderr: err });
      });
    });
    if (code !== 0) throw new HypervisorError(`QEMU for guest ${guest} failed to start (exit ${code}): ${stderr.trim().split('\n').slice(-3).join('; ')}`);
    const pid = readPidfile(paths.pidfile);
    if (pid === null || !processAlive(pid)) throw new HypervisorError(`QEMU for guest ${guest} exited right after starting: ${stderr.trim() || 'no message'} (serial log ${paths.serial})`);
    return pid;
  }

  async #connect(guest: string): Promise<QmpClient> {
    const paths = this.paths(guest);
    const end = this.#clock.now() + (this.#opts.startTimeoutMs ?? 15_000);
    for (;;) {
      try {
        return await QmpClient.connect(paths.qmp, { timeoutMs: 5000 });
      } catch (e) {
        if (this.#clock.now() > end) throw new HypervisorError(`guest ${guest}: ${e instanceof Error ? e.message : String(e)}`);
        await sleep(50);
      }
    }
  }

  /** Stop the guest's QEMU (QMP `quit`, else signals by its pidfile) and remove its files. */
  async #quit(guest: string): Promise<void> {
    const paths = this.paths(guest);
    const pid = readPidfile(paths.pidfile);
    const open = this.#incoming.get(guest);
    this.#incoming.delete(guest);
    if (pid !== null && processAlive(pid) && processMentions(pid, paths.qmp)) {
      try {
        const client = open && !open.closed ? open : await QmpClient.connect(paths.qmp, { timeoutMs: 2000 });
        await client.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
        client.close();
      } catch {
        /* not answering: signals below */
      }
      if (!(await waitForExit(pid, 3000))) await stopProcess(pid);
      this.#log.info({ guest, pid }, 'qemu stopped');
    }
    open?.close();
    for (const f of [paths.pidfile, paths.qmp, paths.migrationSocket, paths.incomingRecord]) rmSync(f, { force: true });
  }

  async #linkExists(name: string): Promise<boolean> {
    if (this.#opts.linkExists) return this.#opts.linkExists(name);
    if (!this.#rtnl) {
      const { Rtnl } = await import('../linux/rtnl.js');
      this.#rtnl = Rtnl.open();
    }
    return (await this.#rtnl.linkByName(name)) !== null;
  }
}

/** How long before the predicted end of the first pass the driver asks for the hold, ms. */
export const SWITCHOVER_LEAD_MS = 25;
/**
 * The lead for this migration: the configured one until the driver has seen holds, then three
 * times the slowest of the last 8 plus a poll, at least 8 ms, at most the configured one. (The
 * first hold from an agent is the slowest: 11–19 ms here, against 2–5 ms after.)
 */
export function switchoverLead(configured: number, recentHoldMs: readonly number[]): number {
  if (recentHoldMs.length === 0) return configured;
  return Math.min(configured, Math.max(8, 3 * Math.max(...recentHoldMs) + SWITCH_POLL_MS));
}

/** With the hold in place, the guest is stopped after this long at the latest, ms. */
export const MAX_HELD_RUNNING_MS = 50;

/**
 * Predicts the end of QEMU's first pass over the RAM from successive `query-migrate` samples:
 * at the rate `remaining` has been falling (zero pages go much faster than the bytes sent
 * suggest; a speed-up counts at once, a slow-down gradually). QEMU (1 ms limit) stops the guest
 * itself at the end of that pass as soon as what the guest dirtied meanwhile is small, as it
 * usually is: the driver asks for the hold `leadMs` before (enough for the HA's answer) and
 * lets the guest run — and send — until then: little is left to copy once it is stopped.
 */
export class SwitchoverPlanner {
  #last: { at: number; remaining: number } | null = null;
  /** bytes of `remaining` per ms, smoothed. */
  #rate = 0;

  constructor(readonly leadMs: number) {}

  /** ms left in the first pass: 0 once it is over (QEMU synced again), Infinity while unknown. */
  #msLeft(now: number, info: MigrateInfo): number {
    const remaining = info.ram?.remaining;
    if (remaining === undefined || !info.ram?.total) return Infinity;
    if ((info.ram['dirty-sync-count'] ?? 0) >= 2) return 0;
    const last = this.#last;
    this.#last = { at: now, remaining };
    if (!last || now <= last.at || remaining > last.remaining) return this.#rate > 0 ? remaining / this.#rate : Infinity;
    const rate = (last.remaining - remaining) / (now - last.at);
    this.#rate = Math.max(rate, 0.7 * this.#rate + 0.3 * rate);
    return this.#rate > 0 ? remaining / this.#rate : Infinity;
  }

  /** Time to ask for the hold. */
  ready(now: number, info: MigrateInfo): boolean {
    return this.#msLeft(now, info) <= this.leadMs;
  }
}

/** The guest id of a QEMU process we started (`-name guest=<id>`), or null. */
export function guestOfProcess(pid: number): string | null {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('-name');
    const v = i >= 0 ? argv[i + 1] : undefined;
    return v?.startsWith('guest=') ? v.slice(6).replace(/,,/g, ',') : null;
  } catch {
    return null;
  }
}

function readIncoming(path: string): IncomingRecord | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as IncomingRecord;
  } catch {
    return null;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
