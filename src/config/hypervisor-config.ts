/**
 * `hypervisor` in agent.json: which driver runs this host's guests, and its settings.
 * Documented in docs/configuration.md and docs/hypervisors.md. The QEMU guest definition
 * schema is also used for per-guest JSON files in `hypervisor.qemu.guestsDir`.
 */
import { z } from 'zod';
import { ConfigError, formatIssues } from './common.js';

const absolutePath = z.string().regex(/^\//, 'an absolute path');
const mac = z
  .string()
  .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i, 'a MAC address aa:bb:cc:dd:ee:ff')
  .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, 'a unicast MAC (the first octet even)');

/** One guest's machine; every key optional here, merged over the driver's defaults. */
export const qemuGuestDefinitionSchema = z
  .object({
    memoryMiB: z.number().int().min(16).max(4_194_304),
    cpus: z.number().int().min(1).max(1024),
    kernel: absolutePath,
    initrd: absolutePath,
    append: z.string().max(4096),
    disks: z.array(absolutePath),
    mac,
    machine: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/i, 'a machine type such as pc-i440fx-7.2 or pc-q35-7.2'),
    cpu: z.string().min(1),
    accel: z.enum(['tcg', 'kvm']),
    nic: z.enum(['virtio-net-pci', 'e1000']),
    extraArgs: z.array(z.string()),
  })
  .partial()
  .strict();
export type QemuGuestDefinitionInput = z.output<typeof qemuGuestDefinitionSchema>;

/** A per-guest file `<guestsDir>/<encodeURIComponent(id)>.json`: the definition plus its id. */
export const qemuGuestFileSchema = qemuGuestDefinitionSchema.extend({ id: z.string().min(1) }).strict();

export function parseQemuGuestFile(raw: unknown, file: string): z.output<typeof qemuGuestFileSchema> {
  const r = qemuGuestFileSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(file, r.error.issues));
  return r.data;
}

export const qemuConfigSchema = z
  .object({
    binary: z.string().default('qemu-system-x86_64'),
    /** pidfiles, QMP sockets, serial logs and incoming migration sockets of this host's guests. */
    stateDir: absolutePath.default('/var/lib/roam6/qemu'),
    /** Per-guest definition files (default `<stateDir>/guests`). */
    guestsDir: absolutePath.optional(),
    defaults: qemuGuestDefinitionSchema.default({}),
    guests: z.record(z.string(), qemuGuestDefinitionSchema).default({}),
    /**
     * Where the destination listens for the migration stream. `unix`: a socket in stateDir
     * (hosts that share a filesystem, like the lab's namespaces); `tcp`: the given address
     * (usually the CoA) and a port from `ports`.
     */
    incoming: z
      .discriminatedUnion('transport', [
        z.object({ transport: z.literal('unix') }).strict(),
        z
          .object({
            transport: z.literal('tcp'),
            address: z.string().min(1),
            ports: z.tuple([z.number().int().min(1).max(65535), z.number().int().min(1).max(65535)]).default([49152, 49215]),
          })
          .strict(),
      ])
      .default({ transport: 'unix' }),
    /**
     * migrate-set-parameters max-bandwidth (MiB/s). Unset: QEMU's default (128 MiB/s) when QEMU
     * decides the switchover, none when the driver does (a capped QEMU can sleep through a stop).
     */
    maxBandwidthMiBs: z.number().positive().optional(),
    /** migrate-set-parameters downtime-limit (ms); QEMU's default (300) when unset. */
    downtimeLimitMs: z.number().int().min(1).max(2_000_000).optional(),
    /**
     * Who decides when the guest stops for the stop-and-copy when the HA can hold its packets:
     * `driver` — after the hold is in place (no packet dies in the source TAP); `qemu` — QEMU,
     * and the hold follows its STOP event.
     */
    switchover: z.enum(['driver', 'qemu']).default('driver'),
    /** `driver` switchover: how long before the first RAM pass ends the hold is asked for (the first time, and at most: see the driver's `switchoverLead`). */
    switchoverLeadMs: z.number().int().min(1).max(10_000).default(25),
    migrateTimeoutMs: z.number().int().min(1000).default(120_000),
    /** QEMU start until its QMP answers. */
    startTimeoutMs: z.number().int().min(500).default(15_000),
  })
  .strict();
export type QemuConfig = z.output<typeof qemuConfigSchema>;

export const libvirtConfigSchema = z
  .object({
    binary: z.string().default('virsh'),
    /** This host's libvirt URI. */
    uri: z.string().default('qemu:///system'),
    /**
     * Destination libvirt URI per host id, or a template with `{host}`
     * (default `qemu+ssh://{host}/system`).
     */
    peers: z.record(z.string(), z.string()).default({}),
    peerTemplate: z.string().default('qemu+ssh://{host}/system'),
    /** Optional migration data URI per host id (`tcp://[2001:db8:b::2]`), `--migrateuri`. */
    migrateUris: z.record(z.string(), z.string()).default({}),
    /** Guest id → libvirt domain name (default: the guest id). */
    domains: z.record(z.string(), z.string()).default({}),
    commandTimeoutMs: z.number().int().min(100).default(30_000),
    migrateTimeoutMs: z.number().int().min(1000).default(300_000),
  })
  .strict();
export type LibvirtConfig = z.output<typeof libvirtConfigSchema>;

export const xenConfigSchema = z
  .object({
    binary: z.string().default('xl'),
    /** Destination host name per host id for `xl migrate` (default: the host id). */
    peers: z.record(z.string(), z.string()).default({}),
    /** `xl migrate -s`: the ssh command (default xl's own `ssh`). */
    sshCommand: z.string().optional(),
    /** Guest id → Xen domain name (default: the guest id). */
    domains: z.record(z.string(), z.string()).default({}),
    commandTimeoutMs: z.number().int().min(100).default(30_000),
    migrateTimeoutMs: z.number().int().min(1000).default(300_000),
  })
  .strict();
export type XenConfig = z.output<typeof xenConfigSchema>;

export const hypervisorConfigSchema = z
  .object({
    driver: z.enum(['netns', 'qemu', 'libvirt', 'xen']).default('netns'),
    /** netns driver: host id → network namespace name of every host guests may move to. */
    namespaces: z.record(z.string(), z.string()).default({}),
    qemu: qemuConfigSchema.optional(),
    libvirt: libvirtConfigSchema.optional(),
    xen: xenConfigSchema.optional(),
  })
  .strict();
export type HypervisorConfig = z.output<typeof hypervisorConfigSchema>;
