#!/bin/sh
# Installs every build and test dependency of hvgate from Debian packages.
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev clang-format cppcheck valgrind
libnftnl-dev libmnl-dev libnetfilter-queue-dev libnetfilter-log-dev
libnetfilter-conntrack-dev libpcre2-dev libconfig-dev check libsodium-dev libssl-dev
libedit-dev libpcap-dev libgit2-dev libmicrohttpd-dev libsystemd-dev
nftables iptables iproute2 conntrack iperf3 tcpreplay tcpdump python3 python3-scapy
wireguard-go wireguard-tools nmap hping3 netcat-openbsd socat git procps kmod psmisc strace
iputils-ping iperf3 tshark curl util-linux mount systemd dnsmasq-base tmux bind9-dnsutils openssl
qemu-system-x86 mmdebstrap e2fsprogs qemu-utils fdisk dosfstools mtools ovmf openssh-client"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "deps: all $(echo $PKGS | wc -w) packages present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing:$missing (run 'make deps' as root)" >&2
    exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
