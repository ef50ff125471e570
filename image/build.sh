#!/bin/sh
# Builds the hvgate appliance VM image from Debian packages (make image).
#
#   image/build.sh [BUILD_DIR]        BUILD_DIR holds hvgate and hvgated (default build)
#
# Needs root (mmdebstrap's root mode, file ownership in the filesystem image)
# and the Debian archive; no loop devices, no mounts outside the chroot.
#
# Writes image/out/ (or $HVGATE_IMAGE_OUT):
#   hvgate-rootfs.img   raw ext4 filesystem, label hvgate-root, no partition
#                       table: qemu boots it with -kernel/-initrd (make image-smoke)
#   vmlinuz, initrd.img the kernel and initramfs of that filesystem
#   hvgate.img          raw GPT disk: an EFI system partition with systemd-boot,
#                       the kernel and initramfs, and the same root filesystem;
#                       boots on any UEFI hypervisor (import this one)
#   hvgate.qcow2        hvgate.img as compressed qcow2
#   packages.txt        the Debian packages in the image, with versions
#   cmdline             the kernel command line both boot paths use
#
# Settings (environment):
#   HVGATE_ROOT_PASSWORD_HASH  crypt(3) hash for root (console login); default:
#                              root locked, no password login at all
#   HVGATE_SSH_KEYS            an authorized_keys file for root over ssh
#   HVGATE_IMAGE_SIZE_MB       root filesystem size (default 2048, sparse)
#   HVGATE_MIRROR              Debian mirror URL for mmdebstrap (default: its own)
#   HVGATE_APT_CACHE           where downloaded packages are kept (image/out/apt-cache)
#   HVGATE_UNIT                the systemd unit of hvgated (default appliance/hvgated.service)
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
UNIT=${HVGATE_UNIT:-$REPO/appliance/hvgated.service}
BUILD=$(cd "${1:-$REPO/build}" && pwd)
OUT=${HVGATE_IMAGE_OUT:-$REPO/image/out}
SUITE=bookworm
ROOT_LABEL=hvgate-root
ROOT_SIZE_MB=${HVGATE_IMAGE_SIZE_MB:-2048}
APT_CACHE=${HVGATE_APT_CACHE:-$OUT/apt-cache}
# The EFI system partition holds systemd-boot, one kernel and one initramfs
# (about 40 MB for linux-image-cloud-amd64); 128 MiB leaves room for a second.
ESP_SIZE_MB=128
# GPT needs 34 sectors at each end (UEFI spec 2.10, 5.3); partitions start at
# 1 MiB, the usual alignment.
GPT_ALIGN_MB=1
# net.ifnames=0: the kernel's names eth0, eth1..., which conf/hvgate.conf, the
# network files and the default policy use whatever the hypervisor's NIC model.
CMDLINE="root=LABEL=$ROOT_LABEL ro console=tty0 console=ttyS0,115200n8 net.ifnames=0"

# Runtime libraries of hvgate and hvgated (check: ldd build/hvgated), the
# tools the appliance runs on (nft, ip; sfdisk to grow the root partition),
# and what makes it a bootable system.
PKGS="systemd-sysv udev linux-image-cloud-amd64 initramfs-tools kmod
nftables iproute2 libnftnl11 libmnl0 libnetfilter-queue1 libnetfilter-log1
libpcre2-8-0 libconfig9 libsodium23 libssl3 libedit2 libpcap0.8 libgit2-1.5
libmicrohttpd12 libsystemd0 openssh-server systemd-boot-efi
iputils-ping procps less fdisk"

say() { echo "image: $*"; }
die() { echo "image: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap root mode; file owners in the image)"
for tool in mmdebstrap mkfs.ext4 mkfs.vfat mcopy sfdisk qemu-img; do
	command -v "$tool" >/dev/null || die "$tool missing (make deps)"
done
for f in "$BUILD/hvgate" "$BUILD/hvgated" "$UNIT" \
	"$REPO/conf/hvgate.conf"; do
	[ -e "$f" ] || die "$f missing (make first)"
done

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/work.XXXXXX")
# mmdebstrap mounts /proc, /sys and /dev inside the root filesystem while it
# works and unmounts them; should one be left (mmdebstrap killed), removing
# the directory must not reach into it.
cleanup() {
	if grep -q " $WORK/" /proc/self/mounts; then
		echo "image: mounts left under $WORK: not removing it" >&2
	else
		rm -rf --one-file-system "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ROOTFS=$WORK/rootfs
start=$(date +%s)

say "debian $SUITE root filesystem (mmdebstrap)"
# Downloaded packages are kept between builds (apt checks each against the
# archive's index, so a cached file is only used when it is still current).
# Documentation and manual pages are not read on an appliance; copyright
# files stay (the licences of what we ship).
mkdir -p "$APT_CACHE"
mmdebstrap --variant=minbase --include="$(echo $PKGS | tr ' ' ',')" \
	--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
	--setup-hook="sync-in '$APT_CACHE' /var/cache/apt/archives" \
	--customize-hook="sync-out /var/cache/apt/archives '$APT_CACHE'" \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--quiet "$SUITE" "$ROOTFS" ${HVGATE_MIRROR:-} ||
	die "mmdebstrap failed"

say "installing hvgate"
cp -R "$REPO/image/overlay/." "$ROOTFS/"
chown -R 0:0 "$ROOTFS/etc/hvgate" "$ROOTFS/usr/lib/hvgate"
install -m 0755 "$BUILD/hvgated" "$ROOTFS/usr/sbin/hvgated"
install -m 0755 "$BUILD/hvgate" "$ROOTFS/usr/bin/hvgate"
install -m 0644 "$UNIT" "$ROOTFS/usr/lib/systemd/system/hvgated.service"
install -D -m 0644 "$REPO/appliance/hvgated.tmpfiles" "$ROOTFS/usr/lib/tmpfiles.d/hvgate.conf"
install -m 0640 "$REPO/conf/hvgate.conf" "$ROOTFS/etc/hvgate/hvgate.conf"
install -d -m 0755 "$ROOTFS/usr/share/hvgate/examples" "$ROOTFS/usr/share/doc/hvgate"
cp -R "$REPO/conf/policies/." "$ROOTFS/usr/share/hvgate/examples/"
for doc in "$REPO"/docs/*.md; do install -m 0644 "$doc" "$ROOTFS/usr/share/doc/hvgate/"; done
install -d -m 0750 "$ROOTFS/var/lib/hvgate" "$ROOTFS/var/log/hvgate"
# The journal on disk (journald's Storage=auto writes there when the
# directory exists): what hvgated did, and who committed what, survive a
# reboot. journald caps it at 10% of the filesystem (journald.conf(5)).
chroot "$ROOTFS" install -d -m 2755 -g systemd-journal /var/log/journal

missing=$(chroot "$ROOTFS" ldd /usr/sbin/hvgated /usr/bin/hvgate | grep 'not found' || true)
[ -z "$missing" ] || die "libraries missing in the image: $missing"
chroot "$ROOTFS" /usr/sbin/hvgated --check-config -c /etc/hvgate/hvgate.conf >/dev/null ||
	die "conf/hvgate.conf does not pass hvgated --check-config in the image"
chroot "$ROOTFS" /usr/bin/hvgate check /etc/hvgate/policy >/dev/null ||
	die "the default policy does not pass hvgate check"

say "system configuration"
chroot "$ROOTFS" systemctl enable --quiet hvgated.service hvgate-provision.service \
	hvgate-smoke.service systemd-networkd.service serial-getty@ttyS0.service
# systemd-firstboot would prompt on the console for locale, timezone and a
# root password and block the boot of an appliance nobody watches;
# hvgate-provision takes the credentials instead.
chroot "$ROOTFS" systemctl mask --quiet systemd-firstboot.service
# Locked, not empty: no password opens any login until the operator sets access.
if [ -n "${HVGATE_ROOT_PASSWORD_HASH:-}" ]; then
	chroot "$ROOTFS" usermod -p "$HVGATE_ROOT_PASSWORD_HASH" root
	say "root password set from HVGATE_ROOT_PASSWORD_HASH"
else
	chroot "$ROOTFS" usermod -p '!' root
fi
if [ -n "${HVGATE_SSH_KEYS:-}" ]; then
	install -d -m 0700 "$ROOTFS/root/.ssh"
	install -m 0600 "$HVGATE_SSH_KEYS" "$ROOTFS/root/.ssh/authorized_keys"
	say "root ssh keys from $HVGATE_SSH_KEYS"
fi
# Per-machine identity is made on first boot: "uninitialized" makes systemd
# generate a machine-id and run the ConditionFirstBoot units (machine-id(5);
# an empty file would get an id but no first boot); host keys are generated
# by hvgate-provision.
echo uninitialized > "$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id" "$ROOTFS"/etc/ssh/ssh_host_*
rm -f "$ROOTFS/etc/resolv.conf"
echo "$CMDLINE" > "$ROOTFS/etc/kernel/cmdline"
chroot "$ROOTFS" dpkg-query -W -f '${Package} ${Version}\n' > "$WORK/packages.txt"

kernel=$(ls "$ROOTFS"/boot/vmlinuz-* | tail -1)
initrd=$(ls "$ROOTFS"/boot/initrd.img-* | tail -1)
[ -f "$kernel" ] && [ -f "$initrd" ] || die "no kernel or initramfs in the root filesystem"
cp "$kernel" "$WORK/vmlinuz"
cp "$initrd" "$WORK/initrd.img"
used_mb=$(du -sm "$ROOTFS" | cut -f1)
[ "$used_mb" -lt "$ROOT_SIZE_MB" ] || die "root filesystem ($used_mb MB) larger than HVGATE_IMAGE_SIZE_MB"

say "ext4 root filesystem ($used_mb MB used of $ROOT_SIZE_MB MB)"
mkfs.ext4 -q -F -L "$ROOT_LABEL" -d "$ROOTFS" "$WORK/rootfs.img" "${ROOT_SIZE_MB}M" >/dev/null ||
	die "mkfs.ext4 failed"

say "EFI system partition (systemd-boot)"
"$REPO/image/esp.sh" "$ROOTFS" "$WORK/vmlinuz" "$WORK/initrd.img" "$CMDLINE" \
	"$WORK/esp.img" "$ESP_SIZE_MB" || die "EFI system partition failed"

say "GPT disk"
"$REPO/image/disk.sh" "$WORK/esp.img" "$WORK/rootfs.img" "$WORK/disk.img" "$GPT_ALIGN_MB" ||
	die "disk assembly failed"
qemu-img convert -c -O qcow2 "$WORK/disk.img" "$WORK/disk.qcow2" || die "qemu-img convert failed"

mv "$WORK/rootfs.img" "$OUT/hvgate-rootfs.img"
mv "$WORK/vmlinuz" "$OUT/vmlinuz"
mv "$WORK/initrd.img" "$OUT/initrd.img"
mv "$WORK/disk.img" "$OUT/hvgate.img"
mv "$WORK/disk.qcow2" "$OUT/hvgate.qcow2"
mv "$WORK/packages.txt" "$OUT/packages.txt"
echo "$CMDLINE" > "$OUT/cmdline"
say "done in $(($(date +%s) - start)) s: $OUT ($(wc -l < "$OUT/packages.txt") packages," \
	"kernel $(basename "$kernel" | sed 's/^vmlinuz-//'), qcow2 $(du -m "$OUT/hvgate.qcow2" | cut -f1) MB)"
