#!/usr/bin/env bash
# Build roam6's QEMU test guest from Debian packages on this machine; nothing is downloaded.
#
#   deploy/guest-image/build.sh [OUTDIR]      (default /var/tmp/roam6-guest-image)
#
# Needs: linux-image-amd64 (the kernel in /boot and its virtio modules), busybox-static, gcc
# with a static libc (libc6-dev), cpio (or busybox cpio) and gzip. Writes OUTDIR/vmlinuz,
# OUTDIR/initramfs.gz and OUTDIR/manifest.json ({kernel, initrd, kernelVersion, key}).
# `key` hashes every input, so callers can skip a rebuild when nothing changed.
#
# The guest is an unmodified Linux: busybox, the virtio NIC modules, and r6stream (a paced UDP
# sender and an echo/receiver with sequence numbers, the packet layout of src/lab/stream.ts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/var/tmp/roam6-guest-image}

kernel=${ROAM6_GUEST_KERNEL:-$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)}
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "build.sh: no kernel in /boot (apt-get install linux-image-amd64)" >&2; exit 1; }
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver/kernel
[ -d "$moddir" ] || { echo "build.sh: no modules for $kver in /lib/modules" >&2; exit 1; }
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file_is_static=$( (LC_ALL=C ldd "$busybox" 2>&1 || true) | grep -c 'not a dynamic' || true)
[ -n "$busybox" ] && [ "${file_is_static:-0}" != 0 ] || { echo "build.sh: need a static busybox (apt-get install busybox-static)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "build.sh: need gcc" >&2; exit 1; }

modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"
declare -A modpath=(
  [virtio_ring]=drivers/virtio/virtio_ring.ko [virtio]=drivers/virtio/virtio.ko
  [virtio_pci_modern_dev]=drivers/virtio/virtio_pci_modern_dev.ko [virtio_pci_legacy_dev]=drivers/virtio/virtio_pci_legacy_dev.ko
  [virtio_pci]=drivers/virtio/virtio_pci.ko [failover]=net/core/failover.ko
  [net_failover]=drivers/net/net_failover.ko [virtio_net]=drivers/net/virtio_net.ko
)

key=$( { cat "$here/build.sh" "$here/init" "$here/r6stream.c"; echo "$kver"; sha256sum "$kernel" "$busybox"; } | sha256sum | cut -d ' ' -f 1)
if [ -f "$out/manifest.json" ] && grep -q "\"key\": \"$key\"" "$out/manifest.json" && [ -f "$out/initramfs.gz" ] && [ -f "$out/vmlinuz" ]; then
  echo "guest image up to date in $out"
  exit 0
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/root/bin" "$stage/root/lib/modules" "$stage/root/proc" "$stage/root/sys" "$stage/root/dev" "$stage/root/tmp"
cp "$busybox" "$stage/root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$stage/root/bin/$applet"
done
for m in $modules; do
  src=$moddir/${modpath[$m]}
  for ext in "" .xz .zst; do
    if [ -f "$src$ext" ]; then
      case $ext in
        .xz) xz -dc "$src$ext" >"$stage/root/lib/modules/$m.ko" ;;
        .zst) zstd -qdc "$src$ext" >"$stage/root/lib/modules/$m.ko" ;;
        *) cp "$src" "$stage/root/lib/modules/$m.ko" ;;
      esac
      continue 2
    fi
  done
  echo "build.sh: module $m not found under $moddir" >&2
  exit 1
done
gcc -O2 -Wall -static -o "$stage/root/bin/r6stream" "$here/r6stream.c"
strip "$stage/root/bin/r6stream" 2>/dev/null || true
install -m 0755 "$here/init" "$stage/root/init"

mkdir -p "$out"
if command -v cpio >/dev/null; then cpio_cmd=(cpio --quiet -o -H newc -R 0:0); else cpio_cmd=("$busybox" cpio -o -H newc -R 0:0); fi
(cd "$stage/root" && find . -mindepth 1 | LC_ALL=C sort | "${cpio_cmd[@]}") | gzip -9n >"$stage/initramfs.gz"
install -m 0644 "$stage/initramfs.gz" "$out/initramfs.gz"
install -m 0644 "$kernel" "$out/vmlinuz"
cat >"$out/manifest.json" <<JSON
{
  "kernel": "$out/vmlinuz",
  "initrd": "$out/initramfs.gz",
  "kernelVersion": "$kver",
  "key": "$key",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
echo "guest image built in $out: kernel $kver, initramfs $(du -k "$out/initramfs.gz" | cut -f 1) KiB"
