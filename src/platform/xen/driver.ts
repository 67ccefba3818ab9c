/**
 * The `xen` hypervisor driver: a thin adapter over `xl` (Xen's toolstack).
 *
 *   guests     xl list                      (every domain but Domain-0)
 *   runsHere   xl domid DOMAIN
 *   migrate    xl migrate [-s SSHCOMMAND] DOMAIN HOST
 *
 * xl reports no downtime. It prints the protocol's steps (on stderr), and the driver timestamps
 * them as they arrive: "migration sender: Target has acknowledged transfer." (the last memory
 * round is done; the domain is suspended) to "migration sender: Target reports successful
 * startup." (it runs on the target) is reported as the downtime — a lower bound, since the
 * domain was suspended a little before the final round ended.
 *
 * The guest's vif is `vifname=r6v…` (guestPortName) on `bridge=r6g…` (the guest link's bridge,
 * the same name on every host), so the hotplug script attaches the destination's vif to the
 * bridge the agent prepared. docs/hypervisors.md.
 */
import type { Clock } from '../../ports/clock.js';
import type { HypervisorPort, MigrateOptions, MigrationProgress, MigrationResult } from '../../ports/hypervisor.js';
import { silentLogger, type Logger } from '../../ports/log.js';
import { guestPortName } from '../../core/guest-link-identity.js';
import { systemClock } from '../system-clock.js';
import { describeCommand, errorLines, runCommand, type CommandResult } from '../hypervisor/command.js';
import { HypervisorError, HypervisorTimeoutError } from '../hypervisor/errors.js';
import { LinkProbe } from '../hypervisor/link-probe.js';

export interface XenDriverOptions {
  readonly binary?: string;
  readonly peers?: Readonly<Record<string, string>>;
  readonly sshCommand?: string;
  readonly domains?: Readonly<Record<string, string>>;
  readonly commandTimeoutMs?: number;
  readonly migrateTimeoutMs?: number;
  readonly linkExists?: (ifname: string) => Promise<boolean>;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** `xl list` rows: name, id, memory (MiB), vcpus, state, time. */
export function parseXlList(text: string): { name: string; id: number; memMiB: number; vcpus: number; state: string }[] {
  const rows: { name: string; id: number; memMiB: number; vcpus: number; state: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+([-rbpscd]{6})\s+[\d.]+\s*$/.exec(line);
    if (m) rows.push({ name: m[1]!, id: Number(m[2]), memMiB: Number(m[3]), vcpus: Number(m[4]), state: m[5]! });
  }
  return rows;
}

/** The steps of `xl migrate`'s output the driver follows. */
export const XL_STEPS = {
  ready: /migration target: Ready to receive domain/,
  saving: /Saving to migration stream/,
  acknowledged: /migration sender: Target has acknowledged transfer/,
  permission: /migration sender: Giving target permission to start/,
  started: /migration sender: Target reports successful startup|migration target: Domain started succe/,
  success: /^Migration successful/,
  failedResuming: /Migration failed, resuming at sender/,
} as const;

export class XenDriver implements HypervisorPort {
  readonly name = 'xen';
  readonly #o: XenDriverOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #links = new LinkProbe();

  constructor(opts: XenDriverOptions = {}) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log ?? silentLogger;
  }

  get #bin(): string {
    return this.#o.binary ?? 'xl';
  }

  domain(guest: string): string {
    return this.#o.domains?.[guest] ?? guest;
  }

  async guestInterface(guest: string): Promise<string | null> {
    const name = guestPortName(guest);
    return (await (this.#o.linkExists ?? ((n: string) => this.#links.exists(n)))(name)) ? name : null;
  }

  async guests(): Promise<string[]> {
    const r = await this.#xl(['list']);
    if (r.code !== 0) throw new HypervisorError(`xl list failed: ${errorLines(r.stderr)}`);
    const byDomain = new Map(Object.entries(this.#o.domains ?? {}).map(([g, d]) => [d, g]));
    return parseXlList(r.stdout)
      .filter((d) => d.id !== 0)
      .map((d) => byDomain.get(d.name) ?? d.name)
      .sort();
  }

  async runsHere(guest: string): Promise<boolean> {
    const r = await this.#xl(['domid', this.domain(guest)]);
    if (r.code === 0 && /^\d+$/.test(r.stdout.trim())) return true;
    if (/does not exist|Invalid domain identifier/i.test(r.stderr)) return false;
    throw new HypervisorError(`xl domid ${this.domain(guest)} failed: ${errorLines(r.stderr)}`);
  }

  async migrate(guest: string, targetHost: string, onProgress: (p: MigrationProgress) => void, _opts: MigrateOptions = {}): Promise<MigrationResult> {
    const dom = this.domain(guest);
    const host = this.#o.peers?.[targetHost] ?? targetHost;
    const args = ['migrate', ...(this.#o.sshCommand ? ['-s', this.#o.sshCommand] : []), dom, host];
    const timeoutMs = this.#o.migrateTimeoutMs ?? 300_000;
    const seen: Partial<Record<keyof typeof XL_STEPS, number>> = {};
    const t0 = this.#clock.now();
    onProgress({ phase: 'setup', at: t0 });
    let r: CommandResult;
    try {
      r = await runCommand(this.#bin, args, {
        timeoutMs,
        onLine: (line) => {
          for (const [k, re] of Object.entries(XL_STEPS) as [keyof typeof XL_STEPS, RegExp][]) {
            if (!re.test(line.trim()) || seen[k] !== undefined) continue;
            const at = this.#clock.now();
            seen[k] = at;
            if (k === 'saving') onProgress({ phase: 'copying', at });
            if (k === 'acknowledged') onProgress({ phase: 'paused', at });
          }
        },
      });
    } catch (e) {
      if (e instanceof HypervisorTimeoutError) {
        throw new HypervisorTimeoutError(`live migration of ${guest} to ${targetHost} did not finish within ${timeoutMs} ms; xl was killed (check \`xl list\` on both hosts: the domain may be paused)`);
      }
      throw e;
    }
    const endedAt = this.#clock.now();
    const out = `${r.stdout}\n${r.stderr}`;
    if (r.code !== 0 || seen.success === undefined) {
      const resumed = XL_STEPS.failedResuming.test(out) ? '; xl resumed the domain here' : '';
      throw new HypervisorError(`live migration of ${guest} to ${targetHost} failed: ${errorLines(out)}${resumed}`);
    }
    const pausedAt = seen.acknowledged ?? seen.permission ?? endedAt;
    const resumedAt = seen.started ?? endedAt;
    const downtimeMs = Math.max(0, resumedAt - pausedAt);
    onProgress({ phase: 'resumed', at: resumedAt });
    onProgress({ phase: 'completed', fraction: 1, at: endedAt });
    this.#log.info({ guest, to: targetHost, totalMs: endedAt - t0, downtimeMs }, 'xl migrate completed');
    return { totalMs: endedAt - t0, downtimeMs, resumedAt };
  }

  close(): void {
    this.#links.close();
  }

  #xl(args: string[]): Promise<CommandResult> {
    this.#log.debug({ cmd: describeCommand(this.#bin, args) }, 'xl');
    return runCommand(this.#bin, args, { timeoutMs: this.#o.commandTimeoutMs ?? 30_000 });
  }
}
