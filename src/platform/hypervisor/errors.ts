/**
 * Errors of the hypervisor drivers (qemu, libvirt, xen). The message always names the guest
 * and the hypervisor's own words (QMP `desc`, virsh's `error:` lines, xl's last lines), so an
 * operator reading `roam6 migrate`'s failure knows what the hypervisor said.
 */
export class HypervisorError extends Error {
  static override readonly name: string = 'HypervisorError';
  readonly code: string = 'ROAM6_ERR_HYPERVISOR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HypervisorError';
  }
}

/** A hypervisor command or operation did not finish in time; the driver stopped it. */
export class HypervisorTimeoutError extends HypervisorError {
  static override readonly name = 'HypervisorTimeoutError';
  override readonly code = 'ROAM6_ERR_HYPERVISOR_TIMEOUT';
  constructor(message: string) {
    super(message);
    this.name = 'HypervisorTimeoutError';
  }
}
