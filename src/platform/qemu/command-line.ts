/**
 * The QEMU command line of a roam6 guest. A live migration needs the source and the destination
 * to describe the same machine — machine type, CPU model, memory, devices and their ids, the
 * NIC's MAC — so both come from one guest definition through this one function. Only the
 * backends differ per host and per role: the TAP (always guestPortName(guest), on the guest
 * link of the host it runs on), the QMP socket, the pidfile, the serial log, and `-incoming
 * defer` on the destination.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { guestPortName } from '../../core/guest-link-identity.js';

export interface QemuGuestDefinition {
  readonly memoryMiB: number;
  readonly cpus: number;
  /** A kernel to boot directly (`-kernel`), with an optional initrd and command line. */
  readonly kernel?: string;
  readonly initrd?: string;
  readonly append?: string;
  /**
   * Disk images (`-drive if=virtio`). Live migration without block migration needs the same
   * path on shared storage on every host.
   */
  readonly disks: readonly string[];
  /** The NIC's MAC; default derived from the guest id (the same on every host). */
  readonly mac?: string;
  /** Machine type, pinned (never the `pc` alias: it resolves per QEMU version). */
  readonly machine: string;
  readonly cpu: string;
  /** `tcg` (no hardware virtualisation, as in the lab) or `kvm`. */
  readonly accel: 'tcg' | 'kvm';
  readonly nic: 'virtio-net-pci' | 'e1000';
  /** Extra arguments, the same on both sides (devices, -rtc, …). */
  readonly extraArgs: readonly string[];
}

export const DEFAULT_GUEST_DEFINITION: QemuGuestDefinition = {
  memoryMiB: 128,
  cpus: 1,
  disks: [],
  machine: 'pc-i440fx-7.2',
  cpu: 'qemu64',
  accel: 'tcg',
  nic: 'virtio-net-pci',
  extraArgs: [],
};

/** Where one guest's per-host files live: all under the driver's state dir, named by its TAP. */
export interface QemuGuestPaths {
  readonly stem: string;
  /** The TAP QEMU creates: guestPortName(guest), the name the guest links attach. */
  readonly tap: string;
  readonly pidfile: string;
  readonly qmp: string;
  readonly serial: string;
  /** The unix socket an incoming QEMU listens on (unix migration transport). */
  readonly migrationSocket: string;
  /** What the driver remembers about an incoming QEMU (its URI). */
  readonly incomingRecord: string;
}

export function qemuGuestPaths(stateDir: string, guest: string): QemuGuestPaths {
  const stem = guestPortName(guest);
  return {
    stem,
    tap: stem,
    pidfile: join(stateDir, `${stem}.pid`),
    qmp: join(stateDir, `${stem}.qmp`),
    serial: join(stateDir, `${stem}.serial`),
    migrationSocket: join(stateDir, `${stem}.migrate`),
    incomingRecord: join(stateDir, `${stem}.incoming.json`),
  };
}

/**
 * The guest NIC's MAC when the definition gives none: 52:54:00 (QEMU's locally administered
 * range) + three octets of SHA-256("roam6 nic " + guest id). Deterministic, so every host
 * computes the same, and distinct from the guest link's router MAC (02:…).
 */
export function defaultGuestMac(guest: string): string {
  const d = createHash('sha256').update(`roam6 nic ${guest}`, 'utf8').digest();
  return ['52', '54', '00', ...[d[0]!, d[1]!, d[2]!].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * argv (without the binary) for the guest. `incoming` adds `-incoming defer` (the URI is given
 * later over QMP, `migrate-incoming`). Always `-daemonize`: QEMU outlives the agent, which
 * finds it again by its pidfile and QMP socket.
 */
export function qemuArgs(guest: string, def: QemuGuestDefinition, paths: QemuGuestPaths, role: { incoming: boolean }): string[] {
  const args = [
    '-name', `guest=${guest.replace(/,/g, ',,')}`,
    '-machine', def.machine,
    '-accel', def.accel,
    '-cpu', def.cpu,
    '-m', String(def.memoryMiB),
    '-smp', String(def.cpus),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-rtc', 'base=utc',
  ];
  if (def.kernel) args.push('-kernel', def.kernel);
  if (def.initrd) args.push('-initrd', def.initrd);
  if (def.append !== undefined) args.push('-append', def.append);
  def.disks.forEach((d, i) => args.push('-drive', `file=${d.replace(/,/g, ',,')},if=virtio,cache=none,id=disk${i}`));
  args.push(
    '-netdev', `tap,id=n0,ifname=${paths.tap},script=no,downscript=no,vhost=off`,
    '-device', `${def.nic},netdev=n0,mac=${def.mac ?? defaultGuestMac(guest)},id=nic0`,
    ...def.extraArgs,
    // backends: per host
    '-chardev', `file,id=serial0,path=${paths.serial},append=on`,
    '-serial', 'chardev:serial0',
    '-qmp', `unix:${paths.qmp},server=on,wait=off`,
    '-pidfile', paths.pidfile,
    '-daemonize',
  );
  if (role.incoming) args.push('-incoming', 'defer');
  return args;
}

/** The part of two command lines that must be equal for a migration (backends removed). */
export function migrationRelevantArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-chardev' || a === '-qmp' || a === '-pidfile' || a === '-incoming' || a === '-serial') {
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}
