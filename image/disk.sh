#!/bin/sh
# Puts the EFI system partition and the root filesystem images into one GPT
# disk image file: sfdisk writes the partition table into the file, dd copies
# each filesystem to its partition's offset. No loop device, no mount.
#
#   image/disk.sh ESP_IMG ROOT_IMG OUT_IMG ALIGN_MB
set -eu
ESP=$1 ROOT=$2 OUT=$3 ALIGN_MB=$4
SECTOR=512
MIB=1048576
# Partition type GUIDs: the EFI system partition (UEFI spec 2.10, table 5.7)
# and "Linux root (x86-64)" of the Discoverable Partitions Specification.
TYPE_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
TYPE_ROOT_X86_64=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709

size_mib() {
	bytes=$(stat -c %s "$1")
	[ $((bytes % MIB)) -eq 0 ] || { echo "disk: $1 is not a whole number of MiB" >&2; exit 1; }
	echo $((bytes / MIB))
}
esp_mb=$(size_mib "$ESP")
root_mb=$(size_mib "$ROOT")
# The backup GPT lives in the last 33 sectors: one aligned MiB at the end.
total_mb=$((ALIGN_MB + esp_mb + root_mb + ALIGN_MB))
per_mib=$((MIB / SECTOR))

rm -f "$OUT"
truncate -s "${total_mb}M" "$OUT"
sfdisk --quiet --no-reread --no-tell-kernel "$OUT" <<T
label: gpt
start=$((ALIGN_MB * per_mib)), size=$((esp_mb * per_mib)), type=$TYPE_ESP, name="EFI system"
start=$(((ALIGN_MB + esp_mb) * per_mib)), size=$((root_mb * per_mib)), type=$TYPE_ROOT_X86_64, name="hvgate-root"
T
dd if="$ESP" of="$OUT" bs=1M seek="$ALIGN_MB" conv=notrunc,sparse status=none
dd if="$ROOT" of="$OUT" bs=1M seek=$((ALIGN_MB + esp_mb)) conv=notrunc,sparse status=none
