/**
 * The agent's hypervisor driver, from `hypervisor` in agent.json. Every driver implements
 * HypervisorPort and tells the guest links which interface is the guest's (`guestInterface`).
 */
import type { HypervisorPort } from '../ports/hypervisor.js';
import type { Logger } from '../ports/log.js';
import { libvirtConfigSchema, qemuConfigSchema, xenConfigSchema, type HypervisorConfig } from '../config/hypervisor-config.js';
import { NetnsDriver } from '../platform/linux/netns-driver.js';
import { QemuDriver } from '../platform/qemu/driver.js';
import { LibvirtDriver } from '../platform/libvirt/driver.js';
import { XenDriver } from '../platform/xen/driver.js';

export type AgentHypervisor = HypervisorPort & {
  guestInterface(guest: string): Promise<string | null>;
  /** At start: free what earlier runs left behind (qemu: QEMUs in postmigrate). */
  removeLeftovers?(): Promise<string[]>;
  close(): void;
};

export function createHypervisorDriver(config: HypervisorConfig, log: Logger): AgentHypervisor {
  switch (config.driver) {
    case 'netns':
      return new NetnsDriver({ namespaces: config.namespaces });
    case 'qemu': {
      const q = config.qemu ?? qemuConfigSchema.parse({});
      return new QemuDriver({
        stateDir: q.stateDir,
        ...(q.guestsDir ? { guestsDir: q.guestsDir } : {}),
        guests: q.guests,
        defaults: q.defaults,
        binary: q.binary,
        incoming: q.incoming,
        ...(q.maxBandwidthMiBs !== undefined ? { maxBandwidthMiBs: q.maxBandwidthMiBs } : {}),
        ...(q.downtimeLimitMs !== undefined ? { downtimeLimitMs: q.downtimeLimitMs } : {}),
        switchover: q.switchover,
        switchoverLeadMs: q.switchoverLeadMs,
        migrateTimeoutMs: q.migrateTimeoutMs,
        startTimeoutMs: q.startTimeoutMs,
        log,
      });
    }
    case 'libvirt':
      return new LibvirtDriver({ ...(config.libvirt ?? libvirtConfigSchema.parse({})), log });
    case 'xen':
      return new XenDriver({ ...(config.xen ?? xenConfigSchema.parse({})), log });
  }
}
