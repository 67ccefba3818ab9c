/**
 * The `netns` hypervisor driver: a lab guest is a network namespace whose single link (a veth)
 * has its host-side end, named guestPortName(guest), in the namespace of the host that "runs"
 * it. Live migration moves that end into the destination host's namespace: the guest keeps
 * its MAC, addresses and neighbour cache, exactly as a live-migrated VM does. The pause is the
 * time the link is in neither host's bridge (until the destination agent attaches it).
 *
 * The driver runs in the source host's namespace and reaches the destination namespace by its
 * name under /run/netns (filesystem paths cross namespaces).
 *
 * On the destination, `prepareIncoming` watches this namespace's link notifications for the
 * guest's interface: the moment it arrives, the agent attaches it and registers the guest (as
 * on QEMU's RESUME), instead of waiting for the orchestrator's activate step. The watch only
 * speeds things up: if it misses the arrival, activate attaches as before.
 */
import { closeSync, openSync } from 'node:fs';
import type { Cancel, Clock } from '../../ports/clock.js';
import type { HypervisorPort, IncomingMigration, IncomingOptions, MigrateOptions, MigrationProgress, MigrationResult } from '../../ports/hypervisor.js';
import { GUEST_PORT_IFNAME_PREFIX, guestPortName } from '../../core/guest-link-identity.js';
import { systemClock } from '../system-clock.js';
import { Rtnl, watchNewLinks, type LinkWatch } from './rtnl.js';

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

/** How long prepareIncoming waits for the guest's interface (the migrate step's own timeout). */
const ARRIVAL_WAIT_MS = 120_000;

interface Arrival {
  readonly onResumed: (at: number) => void;
  readonly expire: Cancel;
}

export class NetnsDriver implements HypervisorPort {
  readonly name = 'netns';
  private readonly clock: Clock;
  private nl: Rtnl | null = null;
  /** Guests expected here, by interface name; the watch runs while there are any. */
  private readonly arriving = new Map<string, Arrival>();
  private watch: LinkWatch | null = null;

  constructor(private readonly opts: NetnsDriverOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** The guest's interface on this host, or null (used by the guest links to attach it). */
  async guestInterface(guest: string): Promise<string | null> {
    const name = guestPortName(guest);
    return (await this.rtnl().indexOf(name)) !== null ? name : null;
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
    const index = await this.rtnl().indexOf(name);
    if (index === null) throw new NetnsDriverError(`guest ${guest} does not run here (no interface ${name})`);
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
      await this.rtnl().moveLinkToNetns(index, fd, name);
      const resumedAt = this.clock.now();
      onProgress({ phase: 'resumed', at: resumedAt });
      onProgress({ phase: 'completed', fraction: 1, at: resumedAt });
      return { totalMs: resumedAt - t0, downtimeMs: resumedAt - pausedAt, resumedAt };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Destination, prepare step: report the guest's arrival through `onResumed` as soon as its
   * interface appears here. Resolves null (the netns driver needs no incoming endpoint). When
   * the interface is here already, there is nothing to wait for: the activate step attaches it.
   */
  async prepareIncoming(guest: string, opts: IncomingOptions = {}): Promise<IncomingMigration | null> {
    const name = guestPortName(guest);
    this.stopWaiting(name);
    if (!opts.onResumed) return null;
    this.watch ??= watchNewLinks((n) => this.onNewLink(n), () => {
      // The socket overflowed or failed: arrivals may be lost (activate attaches those). Open a
      // fresh one for the guests prepared from now on.
      this.watch?.close();
      this.watch = null;
    });
    const arrival: Arrival = { onResumed: opts.onResumed, expire: this.clock.after(ARRIVAL_WAIT_MS, () => this.stopWaiting(name, arrival)) };
    this.arriving.set(name, arrival);
    // Watching first, then looking: an interface that arrives in between is not missed.
    if ((await this.rtnl().indexOf(name)) !== null) this.stopWaiting(name, arrival);
    return null;
  }

  /** The guest left or never came: stop waiting for it. Never touches an interface. */
  async discardGuest(guest: string): Promise<void> {
    this.stopWaiting(guestPortName(guest));
  }

  close(): void {
    for (const name of [...this.arriving.keys()]) this.stopWaiting(name);
    this.nl?.close();
    this.nl = null;
  }

  private onNewLink(name: string): void {
    const arrival = this.arriving.get(name);
    if (!arrival) return;
    // RTM_NEWLINK also reports changes; the interface is here when this namespace resolves it.
    void this.rtnl().indexOf(name).then((index) => {
      if (index === null || this.arriving.get(name) !== arrival) return;
      this.stopWaiting(name, arrival);
      arrival.onResumed(this.clock.now());
    }, () => { /* the activate step attaches it */ });
  }

  private stopWaiting(name: string, only?: Arrival): void {
    const arrival = this.arriving.get(name);
    if (!arrival || (only && arrival !== only)) return;
    arrival.expire();
    this.arriving.delete(name);
    if (this.arriving.size === 0) {
      this.watch?.close();
      this.watch = null;
    }
  }

  private rtnl(): Rtnl {
    this.nl ??= Rtnl.open();
    return this.nl;
  }
}
