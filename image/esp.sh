#!/bin/sh
# Builds the EFI system partition of the hvgate disk as a FAT image file,
# without mounting it (mtools writes into the image): systemd-boot as the
# removable-media loader EFI/BOOT/BOOTX64.EFI, so no firmware boot entry is
# needed, one loader entry, and the kernel and initramfs of the root filesystem.
#
#   image/esp.sh ROOTFS VMLINUZ INITRD CMDLINE OUT_IMG SIZE_MB
set -eu
ROOTFS=$1 VMLINUZ=$2 INITRD=$3 CMDLINE=$4 OUT=$5 SIZE_MB=$6
# Where bookworm's systemd-boot-efi package puts the loader.
LOADER=$ROOTFS/usr/lib/systemd/boot/efi/systemd-bootx64.efi
# Seconds the menu waits: a chance to edit the command line (key e) for
# recovery; 0 would hide the menu unless a key is held.
MENU_TIMEOUT=3
# The image is not a floppy: skip mtools' geometry sanity check.
export MTOOLS_SKIP_CHECK=1

[ -f "$LOADER" ] || { echo "esp: $LOADER missing (systemd-boot-efi)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rm -f "$OUT"
truncate -s "${SIZE_MB}M" "$OUT"
mkfs.vfat -F 32 -n HVGATE-ESP "$OUT" >/dev/null

printf 'default hvgate.conf\ntimeout %s\nconsole-mode keep\neditor yes\n' "$MENU_TIMEOUT" > "$tmp/loader.conf"
printf 'title   hvgate appliance\nlinux   /hvgate/vmlinuz\ninitrd  /hvgate/initrd.img\noptions %s\n' \
	"$CMDLINE" > "$tmp/hvgate.conf"

mmd -i "$OUT" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/hvgate
mcopy -i "$OUT" "$LOADER" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$OUT" "$LOADER" ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$OUT" "$tmp/loader.conf" ::/loader/loader.conf
mcopy -i "$OUT" "$tmp/hvgate.conf" ::/loader/entries/hvgate.conf
mcopy -i "$OUT" "$VMLINUZ" ::/hvgate/vmlinuz
mcopy -i "$OUT" "$INITRD" ::/hvgate/initrd.img
