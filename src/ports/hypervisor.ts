/**
 * HypervisorPort: the small interface every hypervisor driver implements (netns lab guests,
 * QEMU over QMP, libvirt, Xen). The source host's agent calls `migrate`; the driver reports
 * the moments the guest paused on the source and resumed on the destination, which is where
 * the mobility layer's make-before-break hooks in.
 */
export interface MigrationProgress {
  readonly phase: 'setup' | 'copying' | 'paused' | 'resumed' | 'completed';
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
  migrate(guest: string, targetHost: string, onProgress: (p: MigrationProgress) => void): Promise<MigrationResult>;
}
