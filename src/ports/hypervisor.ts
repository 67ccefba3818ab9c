/**
 * HypervisorPort: the small interface every hypervisor driver implements (netns lab guests,
 * QEMU over QMP, libvirt, Xen). The source host's agent calls `migrate`; the driver reports
 * the moments the guest paused on the source and resumed on the destination, which is where
 * the mobility layer's make-before-break hooks in.
 */
export interface MigrationProgress {
  /**
   * `left`: the guest's last state is on the destination, it will run there and nowhere else,
   * and its interface there already takes packets (QEMU: MIGRATION completed on the source, the
   * TAP attached at prepare). Drivers that cannot promise both (netns: the link is attached on
   * arrival) skip it.
   */
  readonly phase: 'setup' | 'copying' | 'paused' | 'left' | 'resumed' | 'completed';
  /** 0..1 when the driver knows. */
  readonly fraction?: number;
  readonly at: number;
}

export interface MigrationResult {
  /** Wall time of the live migration, ms. */
  readonly totalMs: number;
  /** Time the guest was paused (the hypervisor's downtime), ms. */
  readonly downtimeMs: number;
  /** Epoch ms when the guest resumed on the destination. */
  readonly resumedAt: number;
}

/** Where the destination waits for the guest (from `prepareIncoming`), handed to the source's `migrate`. */
export interface IncomingMigration {
  /** The hypervisor's migration URI, e.g. `unix:/var/lib/roam6/qemu/r6v….migrate` or `tcp:[2001:db8:b::2]:49152`. */
  readonly uri: string;
}

export interface IncomingOptions {
  /**
   * Called once when the guest resumes here (QEMU's RESUME event on the incoming side), with
   * the hypervisor's timestamp (epoch ms). The host agent registers the guest right then,
   * before the orchestrator's activate step arrives.
   */
  readonly onResumed?: (at: number) => void;
}

export interface MigrateOptions {
  /** The destination's `IncomingMigration.uri`, when its driver prepared one. */
  readonly incoming?: string;
  /**
   * Make before break: a driver that decides the moment the guest pauses (netns; QEMU, which
   * stops the guest itself once this resolved) awaits this before it, so the HA holds the
   * guest's packets first. A driver whose hypervisor pauses on its own (libvirt, Xen) reports
   * 'paused' instead, and the caller acts on that as fast as it can.
   */
  readonly beforePause?: () => Promise<void>;
}

export interface HypervisorPort {
  readonly name: string;
  /** Guests this host runs now. */
  guests(): Promise<string[]>;
  /** Whether the guest runs on this host. */
  runsHere(guest: string): Promise<boolean>;
  /**
   * Live-migrate the guest from this host to `targetHost`. Progress arrives through
   * `onProgress` (paused and resumed are the events the handover uses).
   */
  migrate(guest: string, targetHost: string, onProgress: (p: MigrationProgress) => void, opts?: MigrateOptions): Promise<MigrationResult>;
  /**
   * Destination host, before the migration starts (the `prepare` step): make the place the
   * guest lands in — for QEMU, a QEMU started with `-incoming` whose TAP can be attached to the
   * guest link now. Resolves null when nothing is needed (the hypervisor creates the vif during
   * the migration) or the guest already runs here. Idempotent.
   */
  prepareIncoming?(guest: string, opts?: IncomingOptions): Promise<IncomingMigration | null>;
  /**
   * The guest does not run on this host (it left, or its incoming migration was rolled back):
   * free what the hypervisor still holds for it — an incoming QEMU that never got the guest, a
   * source QEMU left paused after the migration. Never stops a guest that runs here. Idempotent.
   */
  discardGuest?(guest: string): Promise<void>;
}

/** What the host agent asks of the hypervisor: prepare and release hooks, and (at start) where a guest runs. */
export type HypervisorHooks = Pick<HypervisorPort, 'prepareIncoming' | 'discardGuest'> & Partial<Pick<HypervisorPort, 'runsHere'>>;
