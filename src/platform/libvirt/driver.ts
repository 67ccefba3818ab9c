/**
 * The `libvirt` hypervisor driver: a thin adapter over `virsh`.
 *
 *   guests     virsh --connect URI list --name
 *   runsHere   virsh --connect URI domstate DOMAIN
 *   migrate    virsh --connect URI migrate --live --p2p --persistent --undefinesource --verbose
 *                    --domain DOMAIN --desturi DEST [--migrateuri MIG]
 *              while `virsh --connect URI event --domain DOMAIN --event lifecycle --loop`
 *              reports `Suspended Migrated` (the pause) and `Stopped Migrated` (the source let go);
 *              afterwards `virsh --connect DEST domjobinfo --completed DOMAIN` gives libvirt's
 *              own `Time elapsed` and `Total downtime`.
 *
 * The guest's interface is `<interface type='bridge'>` with `<source bridge='r6g…'/>` (the guest
 * link's bridge: the same name on every host) and `<target dev='r6v…'/>` (guestPortName), so
 * libvirt attaches the destination's TAP to the bridge the agent prepared. docs/hypervisors.md.
 *
 * On a timeout virsh is killed and the job aborted (`virsh domjobabort`): killing virsh alone
 * would leave the migration running inside libvirtd.
 */
import type { Clock } from '../../ports/clock.js';
import type { HypervisorPort, MigrateOptions, MigrationProgress, MigrationResult } from '../../ports/hypervisor.js';
import { silentLogger, type Logger } from '../../ports/log.js';
import { guestPortName } from '../../core/guest-link-identity.js';
import { systemClock } from '../system-clock.js';
import { describeCommand, errorLines, runCommand, type CommandResult } from '../hypervisor/command.js';
import { HypervisorError, HypervisorTimeoutError } from '../hypervisor/errors.js';
import { LinkProbe } from '../hypervisor/link-probe.js';

export interface LibvirtDriverOptions {
  readonly binary?: string;
  readonly uri?: string;
  readonly peers?: Readonly<Record<string, string>>;
  readonly peerTemplate?: string;
  readonly migrateUris?: Readonly<Record<string, string>>;
  readonly domains?: Readonly<Record<string, string>>;
  readonly commandTimeoutMs?: number;
  readonly migrateTimeoutMs?: number;
  readonly linkExists?: (ifname: string) => Promise<boolean>;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** Domain states (virsh domstate) in which the guest lives on this host. */
const LIVE_STATES = new Set(['running', 'paused', 'idle', 'in shutdown', 'pmsuspended', 'blocked']);

/** `Time elapsed:     1375         ms` → { 'Time elapsed': '1375 ms', … } */
export function parseDomjobinfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s+(.*?)\s*$/.exec(line);
    if (m) out[m[1]!.trim()] = m[2]!.replace(/\s+/g, ' ');
  }
  return out;
}

/** A "NNN ms" field as a number, or null. */
export function msField(v: string | undefined): number | null {
  const m = v === undefined ? null : /^(\d+(?:\.\d+)?) ms$/.exec(v);
  return m ? Number(m[1]) : null;
}

/** One `virsh event` line: `[timestamp: ]event 'lifecycle' for domain 'NAME': Suspended Migrated`. */
export function parseLifecycleEvent(line: string): { domain: string; event: string; detail: string } | null {
  const m = /event 'lifecycle' for domain '?([^':]+?)'?: (\S+) (\S+)/.exec(line);
  return m ? { domain: m[1]!, event: m[2]!, detail: m[3]! } : null;
}

export class LibvirtDriver implements HypervisorPort {
  readonly name = 'libvirt';
  readonly #o: LibvirtDriverOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #links = new LinkProbe();

  constructor(opts: LibvirtDriverOptions = {}) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log ?? silentLogger;
  }

  get #bin(): string {
    return this.#o.binary ?? 'virsh';
  }

  get #uri(): string {
    return this.#o.uri ?? 'qemu:///system';
  }

  domain(guest: string): string {
    return this.#o.domains?.[guest] ?? guest;
  }

  destinationUri(targetHost: string): string {
    return this.#o.peers?.[targetHost] ?? (this.#o.peerTemplate ?? 'qemu+ssh://{host}/system').replaceAll('{host}', targetHost);
  }

  async guestInterface(guest: string): Promise<string | null> {
    const name = guestPortName(guest);
    return (await (this.#o.linkExists ?? ((n: string) => this.#links.exists(n)))(name)) ? name : null;
  }

  async guests(): Promise<string[]> {
    const r = await this.#virsh(['--connect', this.#uri, 'list', '--name']);
    if (r.code !== 0) throw new HypervisorError(`virsh list failed: ${errorLines(r.stderr)}`);
    const byDomain = new Map(Object.entries(this.#o.domains ?? {}).map(([g, d]) => [d, g]));
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map((d) => byDomain.get(d) ?? d)
      .sort();
  }

  async runsHere(guest: string): Promise<boolean> {
    const r = await this.#virsh(['--connect', this.#uri, 'domstate', this.domain(guest)]);
    if (r.code !== 0) {
      if (/failed to get domain|Domain not found/i.test(r.stderr)) return false;
      throw new HypervisorError(`virsh domstate ${this.domain(guest)} failed: ${errorLines(r.stderr)}`);
    }
    return LIVE_STATES.has(r.stdout.trim().split('\n')[0]!.trim());
  }

  async migrate(guest: string, targetHost: string, onProgress: (p: MigrationProgress) => void, _opts: MigrateOptions = {}): Promise<MigrationResult> {
    const dom = this.domain(guest);
    const dest = this.destinationUri(targetHost);
    const migrateUri = this.#o.migrateUris?.[targetHost];
    const args = ['--connect', this.#uri, 'migrate', '--live', '--p2p', '--persistent', '--undefinesource', '--verbose', '--domain', dom, '--desturi', dest, ...(migrateUri ? ['--migrateuri', migrateUri] : [])];
    const timeoutMs = this.#o.migrateTimeoutMs ?? 300_000;

    let pausedAt: number | null = null;
    let stoppedAt: number | null = null;
    const events = new AbortController();
    const watcher = runCommand(this.#bin, ['--connect', this.#uri, 'event', '--domain', dom, '--event', 'lifecycle', '--loop', '--timestamp'], {
      timeoutMs: timeoutMs + 10_000,
      signal: events.signal,
      killGraceMs: 500,
      onLine: (line) => {
        const ev = parseLifecycleEvent(line);
        if (!ev || ev.domain !== dom) return;
        const at = this.#clock.now();
        if (ev.event === 'Suspended' && pausedAt === null) {
          pausedAt = at;
          onProgress({ phase: 'paused', at });
        } else if (ev.event === 'Stopped' && ev.detail === 'Migrated') {
          stoppedAt = at;
        }
      },
    }).catch(() => null);

    const t0 = this.#clock.now();
    onProgress({ phase: 'setup', at: t0 });
    let r: CommandResult;
    try {
      r = await runCommand(this.#bin, args, {
        timeoutMs,
        onLine: (line) => {
          const m = /Migration: \[\s*(\d+)\s*%\]/.exec(line);
          if (m) onProgress({ phase: 'copying', fraction: Number(m[1]) / 100, at: this.#clock.now() });
        },
      });
    } catch (e) {
      events.abort();
      await watcher;
      if (e instanceof HypervisorTimeoutError) {
        const abort = await this.#virsh(['--connect', this.#uri, 'domjobabort', dom]).catch((x: unknown) => ({ code: 1, stderr: String(x) }) as CommandResult);
        throw new HypervisorTimeoutError(`live migration of ${guest} to ${targetHost} did not finish within ${timeoutMs} ms; virsh was killed and ${abort.code === 0 ? 'the migration job aborted' : `aborting the job failed (${errorLines(abort.stderr)})`}`);
      }
      throw e;
    }
    const endedAt = this.#clock.now();
    // The Stopped event can trail virsh's exit by a moment.
    for (let i = 0; i < 20 && stoppedAt === null && r.code === 0; i++) await new Promise((res) => setTimeout(res, 10));
    events.abort();
    await watcher;
    if (r.code !== 0) {
      throw new HypervisorError(`live migration of ${guest} to ${targetHost} failed: ${errorLines(r.stderr)}`);
    }

    let totalMs = endedAt - t0;
    let downtimeMs: number | null = null;
    const info = await this.#virsh(['--connect', dest, 'domjobinfo', '--completed', dom]).catch(() => null);
    if (info?.code === 0) {
      const f = parseDomjobinfo(info.stdout);
      totalMs = msField(f['Time elapsed']) ?? totalMs;
      downtimeMs = msField(f['Total downtime']);
    } else {
      this.#log.warn({ guest, dest, err: info ? errorLines(info.stderr) : 'not run' }, 'no completed-job statistics from the destination; downtime estimated from events');
    }
    const p = pausedAt as number | null;
    const s = stoppedAt as number | null;
    downtimeMs ??= p !== null && s !== null ? s - p : 0;
    const resumedAt = (p ?? endedAt - downtimeMs) + downtimeMs;
    if (p === null) onProgress({ phase: 'paused', at: resumedAt - downtimeMs }); // no Suspended event seen
    onProgress({ phase: 'resumed', at: resumedAt });
    onProgress({ phase: 'completed', fraction: 1, at: endedAt });
    return { totalMs, downtimeMs, resumedAt };
  }

  close(): void {
    this.#links.close();
  }

  #virsh(args: string[]): Promise<CommandResult> {
    this.#log.debug({ cmd: describeCommand(this.#bin, args) }, 'virsh');
    return runCommand(this.#bin, args, { timeoutMs: this.#o.commandTimeoutMs ?? 30_000 });
  }
}
