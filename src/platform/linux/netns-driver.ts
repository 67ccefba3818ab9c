/**
 * The `netns` hypervisor driver: a lab guest is a network namespace whose single link (a veth)
 * has its host-side end, named guestPortName(guest), in the namespace of the host that "runs"
 * it. Live migration moves that end into the destination host's namespace: the guest keeps
 * its MAC, addresses and neighbour cache, exactly as a live-migrated VM does. The pause is the
 * time the link is in neither host's bridge (until the destination agent attaches it).
 *
 * The driver runs in the source host's namespace and reaches the destination namespace by its
 * name under /run/netns (filesystem paths cross namespaces).
 */
import { closeSync, openSync } from 'node:fs';
import type { Clock } from '../../ports/clock.js';
import type { HypervisorPort, MigrateOptions, MigrationProgress, MigrationResult } from '../../ports/hypervisor.js';
import { GUEST_PORT_IFNAME_PREFIX, guestPortName } from '../../core/guest-link-identity.js';
import { systemClock } from '../system-clock.js';
import { Rtnl } from './rtnl.js';

export interface NetnsDriverOptions {
  /** Host id → network namespace name of every host this host may migrate to. */
  readonly namespaces: Readonly<Record<string, string>>;
  readonly clock?: Clock;
  readonly netnsDir?: string;
}

export class NetnsDriverError extends Error {
  static override readonly name = 'NetnsDriverError';
  readonly code = 'ROAM6_ERR_HYPERVISOR';
  constructor(message: string) {
    super(message);
    this.name = 'NetnsDriverError';
  }
}

export class NetnsDriver implements HypervisorPort {
  readonly name = 'netns';
  private readonly clock: Clock;
  private nl: Rtnl | null = null;

  constructor(private readonly opts: NetnsDriverOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** The guest's interface on this host, or null (used by the guest links to attach it). */
  async guestInterface(guest: string): Promise<string | null> {
    const name = guestPortName(guest);
    return (await this.rtnl().linkByName(name)) ? name : null;
  }

  async guests(): Promise<string[]> {
    const links = await this.rtnl().listLinks();
    return links.filter((l) => l.name.startsWith(GUEST_PORT_IFNAME_PREFIX) && l.alias).map((l) => l.alias!.replace(/^roam6 guest /, ''));
  }

  async runsHere(guest: string): Promise<boolean> {
    return (await this.guestInterface(guest)) !== null;
  }

  async migrate(guest: string, targetHost: string, onProgress: (p: MigrationProgress) => void, opts: MigrateOptions = {}): Promise<MigrationResult> {
    const ns = this.opts.namespaces[targetHost];
    if (!ns) throw new NetnsDriverError(`no namespace known for host ${targetHost} (hypervisor.namespaces in the agent config)`);
    const name = guestPortName(guest);
    const t0 = this.clock.now();
    onProgress({ phase: 'setup', at: t0 });
    const link = await this.rtnl().linkByName(name);
    if (!link) throw new NetnsDriverError(`guest ${guest} does not run here (no interface ${name})`);
    let fd: number;
    try {
      fd = openSync(`${this.opts.netnsDir ?? '/run/netns'}/${ns}`, 'r');
    } catch (e) {
      throw new NetnsDriverError(`cannot open namespace ${ns} of host ${targetHost}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    try {
      await opts.beforePause?.();
      const pausedAt = this.clock.now();
      onProgress({ phase: 'paused', at: pausedAt });
      await this.rtnl().moveLinkToNetns(link.index, fd, name);
      const resumedAt = this.clock.now();
      onProgress({ phase: 'resumed', at: resumedAt });
      onProgress({ phase: 'completed', fraction: 1, at: resumedAt });
      return { totalMs: resumedAt - t0, downtimeMs: resumedAt - pausedAt, resumedAt };
    } finally {
      closeSync(fd);
    }
  }

  close(): void {
    this.nl?.close();
    this.nl = null;
  }

  private rtnl(): Rtnl {
    this.nl ??= Rtnl.open();
    return this.nl;
  }
}
