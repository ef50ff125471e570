#!/bin/sh
# Boots the hvgate image under qemu and checks it from the serial console
# (make image-smoke). Nothing inside the VM is typed: the image's agent
# hvgate-smoke.service runs when asked to, prints one marker line per check on
# the console and powers off; this script reads the console log.
#
#   image/smoke.sh [kernel|uefi|all]      (default all)
#
#   kernel  hvgate-rootfs.img with the image's own vmlinuz and initrd.img
#           (qemu -kernel), asked by hvgate.smoke=1 on the kernel command line
#   uefi    the importable disk hvgate.img through OVMF firmware and
#           systemd-boot, asked by the system credential hvgate.smoke; also
#           passes operator access as credentials (root password hash, ssh
#           key); booted twice, the second boot must keep what the first made
#
# Every boot writes to a throw-away copy-on-write layer (snapshot=on, or a
# qcow2 overlay in a temporary directory); the image files are not changed. Each has two user-mode NICs (eth0 uplink,
# eth1 management) with restrict=on: qemu's own DHCP answers, nothing is
# routed anywhere. Prints "PASS name" / "FAIL name: why" per check; exits
# non-zero on any failure. Settings: HVGATE_IMAGE_OUT (image/out),
# HVGATE_SMOKE_TIMEOUT (seconds per boot, 180), HVGATE_SMOKE_ACCEL (tcg).
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${HVGATE_IMAGE_OUT:-$REPO/image/out}
BOOT_TIMEOUT=${HVGATE_SMOKE_TIMEOUT:-180}
ACCEL=${HVGATE_SMOKE_ACCEL:-tcg}
# bookworm's ovmf package: code and variables in one file, used read-only
# (qemu -bios), so no firmware state is kept between boots.
OVMF=/usr/share/ovmf/OVMF.fd
# The kernel, systemd, hvgated and the page cache of a TCG guest; 512 MB
# boots too, 1 GB leaves the first nft apply unhurried.
MEM_MB=1024
# The uefi boots get a disk 1 GiB larger than the image: the root
# filesystem must grow into it on the first boot.
GROWN_DISK_MB=$(( ($(stat -c %s "$OUT/hvgate.img" 2>/dev/null || echo 0) / 1048576) + 1024 ))
# What the uefi boot passes as operator access (checked by the agent): a
# SHA-512 crypt(3) hash of "hvgate-smoke" and a key pair made for the run.
SMOKE_ROOT_HASH='$6$hvgatesmoke$3KAOc0iJ8zPT2s9IoB4uyb3jhK83O4HC4oiJQfnSQUlS0RWxvgkb4bz7HwGyDlyfM4Onich8lAp0jvB.GB1ft0'
# Bounds of the ssh checks: a TCG guest needs a few seconds for the key
# exchange; a connection the policy drops must not hold the boot for long.
SSH_LOGIN_TIMEOUT=60
SSH_BLOCKED_TIMEOUT=20

TMP=$(mktemp -d /tmp/hvgate-smoke.XXXXXX)
QEMU_PID=""
# Set by boot_uefi for its first boot: host loopback ports forwarded by qemu
# to port 22 of eth0 (uplink) and eth1 (management).
SSH_UPLINK_PORT=""
SSH_MGMT_PORT=""
N_PASS=0
N_FAIL=0

cleanup() {
	if [ -n "$QEMU_PID" ]; then
		kill "$QEMU_PID" 2>/dev/null
		sleep 1
		kill -9 "$QEMU_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS $1"; N_PASS=$((N_PASS + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; N_FAIL=$((N_FAIL + 1)); }

# A free TCP port on the host's loopback (the kernel picks it).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ssh_checks MODE: while the agent waits, log in as an operator would. The
# default policy lets ssh in on management (eth1) only: the same key over
# the uplink (eth0) must not get a shell. The management login runs hvgate
# and then tells the agent it may power off.
ssh_checks() {
	opts="-i $TMP/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=10"
	t0=$(date +%s)
	# shellcheck disable=SC2086
	if timeout "$SSH_BLOCKED_TIMEOUT" ssh $opts -p "$SSH_UPLINK_PORT" root@127.0.0.1 true > "$TMP/ssh-uplink" 2>&1; then
		fail "$1-ssh-uplink-blocked" "root got a shell over eth0"
	else
		why=$(head -1 "$TMP/ssh-uplink")
		pass "$1-ssh-uplink-blocked (no shell after $(($(date +%s) - t0)) s${why:+: $why})"
	fi
	# shellcheck disable=SC2086
	timeout "$SSH_LOGIN_TIMEOUT" ssh $opts -p "$SSH_MGMT_PORT" root@127.0.0.1 \
		'hvgate status && touch /run/hvgate-smoke-ssh' > "$TMP/ssh-mgmt" 2>&1
	if grep -q 'revision' "$TMP/ssh-mgmt"; then
		pass "$1-ssh-management (key from the credential, hvgate status over ssh)"
	else
		fail "$1-ssh-management" "$(head -c 300 "$TMP/ssh-mgmt" | tr '\n' ' ')"
	fi
}

# boot MODE QEMU_ARGS...: one boot, bounded by BOOT_TIMEOUT; console in
# $TMP/console-MODE.log (kept in $OUT/console-MODE.log for reading).
boot() {
	mode=$1
	shift
	log=$TMP/console-$mode.log
	: > "$log"
	start=$(date +%s)
	qemu-system-x86_64 -accel "$ACCEL" -m "$MEM_MB" -smp 1 -display none -monitor none \
		-serial "file:$log" -no-reboot \
		-netdev "user,id=uplink,restrict=on${SSH_UPLINK_PORT:+,hostfwd=tcp:127.0.0.1:$SSH_UPLINK_PORT-:22}" \
		-device virtio-net-pci,netdev=uplink \
		-netdev "user,id=mgmt,restrict=on,net=10.0.3.0/24${SSH_MGMT_PORT:+,hostfwd=tcp:127.0.0.1:$SSH_MGMT_PORT-:22}" \
		-device virtio-net-pci,netdev=mgmt \
		"$@" > "$TMP/qemu-$mode.err" 2>&1 &
	QEMU_PID=$!
	timed_out=0
	ssh_done=0
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		if [ -n "$SSH_MGMT_PORT" ] && [ "$ssh_done" = 0 ] &&
			grep -q 'HVGATE-SMOKE INFO waiting-for-ssh' "$log"; then
			ssh_checks "$mode"
			ssh_done=1
		fi
		if [ $(($(date +%s) - start)) -ge "$BOOT_TIMEOUT" ]; then
			timed_out=1
			kill "$QEMU_PID" 2>/dev/null
			break
		fi
		sleep 1
	done
	wait "$QEMU_PID"
	qemu_rc=$?
	QEMU_PID=""
	seconds=$(($(date +%s) - start))
	tr -d '\r' < "$log" > "$OUT/console-$mode.log"
	log=$OUT/console-$mode.log

	if [ "$timed_out" = 1 ]; then
		fail "$mode-boot" "no power-off within $BOOT_TIMEOUT s (console: $log)"
	elif [ "$qemu_rc" != 0 ]; then
		fail "$mode-boot" "qemu exited $qemu_rc: $(head -c 300 "$TMP/qemu-$mode.err")"
	else
		pass "$mode-boot (booted, checked and powered off in $seconds s)"
	fi
	# Agent lines look like "[   18.25] smoke-agent[246]: HVGATE-SMOKE PASS name".
	sed -n 's/.*HVGATE-SMOKE \(PASS\|FAIL\) /\1 /p' "$log" | while read -r verdict rest; do
		echo "$verdict $mode-$rest"
	done > "$TMP/verdicts"
	cat "$TMP/verdicts"
	N_PASS=$((N_PASS + $(grep -c '^PASS ' "$TMP/verdicts")))
	N_FAIL=$((N_FAIL + $(grep -c '^FAIL ' "$TMP/verdicts")))
	if grep -q 'HVGATE-SMOKE DONE' "$log"; then
		at=$(sed -n 's/^\[ *\([0-9.]*\)\].*HVGATE-SMOKE PASS multi-user.*/\1/p' "$log" | head -1)
		ready=$(sed -n 's/.*HVGATE-SMOKE INFO hvgated-ready-at=\([0-9]*\)ms.*/\1/p' "$log" | head -1)
		pass "$mode-agent-finished (guest time: hvgated ready at ${ready:-?} ms, multi-user at ${at:-?} s)"
	else
		fail "$mode-agent-finished" "no HVGATE-SMOKE DONE line (console: $log)"
		tail -15 "$log" | sed 's/^/   | /'
	fi
}

boot_kernel() {
	for f in hvgate-rootfs.img vmlinuz initrd.img cmdline; do
		[ -f "$OUT/$f" ] || { fail kernel-boot "$OUT/$f missing (make image)"; return; }
	done
	boot kernel -drive "file=$OUT/hvgate-rootfs.img,format=raw,if=virtio,snapshot=on" \
		-kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" \
		-append "$(cat "$OUT/cmdline") hvgate.smoke=1"
}

# info MODE KEY: a "HVGATE-SMOKE INFO KEY=VALUE" value of that boot.
info() { sed -n "s/.*HVGATE-SMOKE INFO $2=\([^ ]*\).*/\1/p" "$OUT/console-$1.log" 2>/dev/null | head -1; }

# The importable disk, booted twice on one copy-on-write layer: the first
# boot provisions, the second must keep what the first made (machine-id,
# host keys, one copy of the ssh key) and apply the policy again.
boot_uefi() {
	[ -f "$OUT/hvgate.img" ] || { fail uefi-boot "$OUT/hvgate.img missing (make image)"; return; }
	[ -f "$OVMF" ] || { fail uefi-boot "$OVMF missing (make deps: ovmf)"; return; }
	qemu-img create -q -f qcow2 -b "$OUT/hvgate.img" -F raw "$TMP/uefi.qcow2" "${GROWN_DISK_MB}M" ||
		{ fail uefi-boot "qemu-img create failed"; return; }
	ssh-keygen -q -t ed25519 -N '' -C hvgate-smoke -f "$TMP/id" || { fail uefi-boot "ssh-keygen failed"; return; }
	key=$(cat "$TMP/id.pub")
	for run in uefi uefi-again; do
		ask_ssh=""
		if [ "$run" = uefi ]; then
			SSH_UPLINK_PORT=$(free_port) SSH_MGMT_PORT=$(free_port)
			ask_ssh=io.systemd.credential:hvgate.smoke.ssh=1
		else
			SSH_UPLINK_PORT="" SSH_MGMT_PORT=""
		fi
		boot "$run" -bios "$OVMF" ${ask_ssh:+-smbios "type=11,value=$ask_ssh"} \
			-drive "file=$TMP/uefi.qcow2,format=qcow2,if=virtio" \
			-smbios "type=11,value=io.systemd.credential:hvgate.smoke=1" \
			-smbios "type=11,value=io.systemd.credential:passwd.hashed-password.root=$SMOKE_ROOT_HASH" \
			-smbios "type=11,value=io.systemd.credential:ssh.authorized_keys.root=$key"
		if [ "$(info "$run" firmware)" = uefi ]; then
			pass "$run-firmware"
		else
			fail "$run-firmware" "the guest did not see EFI firmware"
		fi
	done
	first=$(info uefi first-boot) again=$(info uefi-again first-boot)
	if [ "$first" = yes ] && [ "$again" = no ]; then
		pass uefi-first-boot-once
	else
		fail uefi-first-boot-once "first boot: ${first:-?}, second: ${again:-?}"
	fi
	# Grown, the root partition runs from 1 MiB + the 128 MiB ESP to 1 MiB
	# before the end (image/build.sh); provision leaves up to 16 MiB unused.
	got=$(info uefi root-fs-mib)
	if [ "${got:-0}" -ge $((GROWN_DISK_MB - 2 - 128 - 16)) ]; then
		pass "uefi-root-grown (root filesystem ${got} MiB on a ${GROWN_DISK_MB} MiB disk)"
	else
		fail uefi-root-grown "root filesystem ${got:-?} MiB on a ${GROWN_DISK_MB} MiB disk"
	fi
	# hvgated's state survives the reboot: the revision that ran at the end
	# of the first boot (the agent commits a vpn policy and reloads the
	# configured one) runs again on the fresh kernel, not a new one.
	for key in machine-id hostkey revision; do
		first=$(info uefi "$key") again=$(info uefi-again "$key")
		[ "$key" = revision ] && first=$(info uefi revision-at-end)
		if [ -n "$first" ] && [ "$first" = "$again" ]; then
			pass "uefi-$key-kept"
		else
			fail "uefi-$key-kept" "first boot '${first}', second '${again}'"
		fi
	done
}

command -v qemu-system-x86_64 >/dev/null || { echo "image-smoke: qemu-system-x86_64 missing (make deps)" >&2; exit 1; }
case "${1:-all}" in
kernel) boot_kernel ;;
uefi) boot_uefi ;;
all) boot_kernel; boot_uefi ;;
*) echo "usage: image/smoke.sh [kernel|uefi|all]" >&2; exit 2 ;;
esac
echo "image-smoke: $N_PASS passed, $N_FAIL failed"
[ "$N_FAIL" -eq 0 ]
