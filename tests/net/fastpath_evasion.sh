#!/bin/sh
# Inspection that cannot be walked around (docs/fastpath.md, "TCP
# normalisation"): through hvgated with `block content /union\s+select/i`,
# clients try to get "UNION SELECT" to the server's application with urgent
# data, a FIN past the data, an RST inside the window, a first copy the
# receiver discards (a TCP-MD5 option; a timestamp that fails PAWS), nine
# IPv6 extension headers, and a connection whose conntrack entry was
# deleted in its middle, and a request cut into one-byte segments. Each
# server records what its application read;
# none may have read the injection. Controls: a raw client's benign request
# arrives, its one-segment injection does not; the counters of each case
# show in `status`.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/lab3.sh
. tests/lib/daemon.sh

# PORTS: one recording server per technique
PORTS="82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107 108 109"
lab3_up || { fail lab-up; exit 1; }
for p in $PORTS; do
	bg server socat -u TCP6-LISTEN:"$p",fork,reuseaddr,ipv6only=0 OPEN:"$LAB_TMP/read-$p",creat,append
done
wait_for 5 sh -c "[ \$(ip netns exec $LAB-server ss -ltn | grep -cE ':(8[2-9]|9[0-9]|10[0-9]) ') -eq 28 ]" || fail servers-up

POL="$LAB_TMP/evasion.hvp"
cat > "$POL" <<'P'
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
pass from lan to dmz service tcp port 82-109 inspect {
  block content /union\s+select/i log "sqli"
}
P
daemon_conf "$POL" 'fastpath: { enabled = true; queue = 100; workers = 2; };'
if daemon_start; then pass start-ready; else fail start-ready "$(tail -5 "$DAEMON_LOG")"; exit 1; fi

# The raw clients' connections are not the client kernel's: it must not
# reset them (the raw clients mark their own packets).
at client nft -f - <<EOF
table inet hvfp_client {
	chain out {
		type filter hook output priority 0; policy accept;
		tcp flags & rst == rst meta mark != 0x4856 drop
	}
}
EOF

# try NAME TECHNIQUE PORT [DST SRC]: runs the client; PASS if the server's
# application never read an injection.
try() {
	dst=${4:-10.10.2.2}; src=${5:-10.10.1.2}
	n=$(at client timeout 15 python3 tests/net/fastpath_evasion.py "$2" "$src" "$dst" "$3" 2>&1)
	sleep 0.3 # the server writes what it read
	if grep -Eiq 'union[[:space:]]+select' "$LAB_TMP/read-$3" 2>/dev/null; then
		fail "$1" "the application read: $(tr -d '\r\n' < "$LAB_TMP/read-$3" | head -c 120) (acked $n)"
	else
		pass "$1"
	fi
}
# fp_stat NAME: a fast path counter from `status`.
fp_stat() { json_get "$(hv status --json)" "fastpath.$1"; }

# Controls: the raw client works (its benign request arrives), and a plain
# injection is stopped.
at client timeout 15 python3 tests/net/fastpath_evasion.py benign 10.10.1.2 10.10.2.2 90 > /dev/null 2>&1
wait_for 3 grep -q 'harmless' "$LAB_TMP/read-90" && pass control-raw-benign-arrives ||
	fail control-raw-benign-arrives "read: $(cat "$LAB_TMP/read-90" 2>/dev/null)"
try control-plain-injection-stopped plain 89

# 1. Urgent data: the judge would see "UNIONX   SELECT", the application
# reads "UNION   SELECT".
try urgent-data oob 82
[ "$(fp_stat urgent)" -ge 1 ] 2>/dev/null && pass urgent-counted || fail urgent-counted "urgent=$(fp_stat urgent)"

# 2. A FIN past the data, an RST inside the window (a challenge ACK): the
# receiver does not end the stream, so the judge must not either.
try fin-past-the-data fin-ahead 83
try rst-inside-the-window rst-window 84
[ "$(fp_stat bad_end)" -ge 2 ] 2>/dev/null && pass bad-end-counted || fail bad-end-counted "bad_end=$(fp_stat bad_end)"

# 3. A decoy first copy the receiver discards, then the real one at the
# same sequence number.
try decoy-md5-option decoy-md5 85
try decoy-old-timestamp decoy-paws 86
[ "$(fp_stat conflicts)" -ge 1 ] 2>/dev/null && pass conflicts-counted || fail conflicts-counted "conflicts=$(fp_stat conflicts)"

# 4. More IPv6 extension headers than the parser walks.
# The receiver took the SYN's timestamp; the judge never kept it (a bare SYN
# makes no entry). Data that opens a flow without the handshake's ACK may
# be a copy the receiver discards: no decision may clear the flow on it.
try decoy-older-than-the-syn syn-ts-decoy 92
# ... and a handshake ACK as old as the decoys (the receiver discards it
# too): the worker opens the flow's entry with what the SYN told.
try handshake-ack-older-than-the-syn ack-older-than-syn 93
try ipv6-nine-extension-headers ext-headers 87 fd00:10:2::2 fd00:10:1::2
[ "$(fp_stat ext_headers)" -ge 1 ] 2>/dev/null && pass ext-headers-counted || fail ext-headers-counted "ext_headers=$(fp_stat ext_headers)"

# The window is a number of bytes, not of segments: the request cut into
# one-byte segments (more than 16) is judged whole.
try one-byte-segments tiny 91

# Decoys the receiver discards for a reason the judge may not see, past
# the window (4096 bytes), then the real rest at the same sequence number:
# the decoys must not fill the window and clear the flow.
try decoy-ack-older-than-the-receivers-una ack-old 94
try decoy-ack-for-data-never-sent ack-unsent 96
try decoy-bad-tcp-checksum bad-sum 97
try ipv6-decoy-discard-option v6-dstopt 104 fd00:10:2::2 fd00:10:1::2
try ipv6-decoy-authentication-header v6-ah 105 fd00:10:2::2 fd00:10:1::2
try ipv6-decoy-routing-header v6-rh 106 fd00:10:2::2 fd00:10:1::2
# Before the handshake's ACK, decoys whose ACK is older than the server's
# ISN + 1 (the server's listener discards them, conntrack lets them by):
# the judge knows that ISN from the server's SYN-ACK, queued to it.
synacks_before=$(fp_stat synacks)
try decoy-acks-before-the-handshake ack-old-early 95
[ "$(fp_stat synacks)" -gt "${synacks_before:-0}" ] 2>/dev/null && pass synack-taken ||
	fail synack-taken "synacks=$(fp_stat synacks) before=$synacks_before"
# Where the stream starts: a bare ACK ahead of it, two SYNs with different
# ISNs (the receiver holds the first; or the second, the first signed).
try stream-start-ahead-of-the-syn start-ahead 98
try syn-again-with-another-isn isn-change 99
try signed-syn-then-another-isn isn-change-md5 100
# An end the receiver discards (TCP-MD5 without a key), then a bare ACK
# past it that would look like a new connection over the tuple.
try fin-discarded-then-new-stream fin-md5-reopen 101
try rst-discarded-then-new-stream rst-md5-reopen 102
# ... and a SYN after it that conntrack takes for a new connection, whose
# stream goes on where the old one (which the receiver still holds) stopped.
try rst-discarded-then-syn-continues-the-stream rst-md5-new-syn 107
# Old bytes that differ and new ones in one segment; a keep-alive of one
# byte; the request in the SYN.
try overlap-old-and-new-bytes overlap 103
try keepalive-one-byte keepalive 108
try data-in-the-syn syn-data 109
[ "$(fp_stat syn_data)" -ge 1 ] 2>/dev/null && pass syn-data-counted || fail syn-data-counted "syn_data=$(fp_stat syn_data)"
[ "$(fp_stat ip_options)" -ge 3 ] 2>/dev/null && pass ip-options-counted || fail ip-options-counted "ip_options=$(fp_stat ip_options)"
[ "$(fp_stat unseen_start)" -ge 3 ] 2>/dev/null && pass unseen-start-counted || fail unseen-start-counted "unseen_start=$(fp_stat unseen_start)"

# 5. The judge did not see the flow's start: its conntrack entry is deleted
# after "... UNION" and conntrack picks the connection up again at
# "   SELECT ...".
SYNC="$LAB_TMP/sync"
SYNC=$SYNC at client timeout 15 python3 tests/net/fastpath_evasion.py midstream 10.10.1.2 10.10.2.2 88 \
	> "$LAB_TMP/midstream.out" 2>&1 &
mid=$!
if wait_for 5 test -e "$SYNC.ready"; then
	at fw conntrack -D -p tcp --dport 88 > /dev/null 2>&1
	touch "$SYNC.go"
fi
i=0; while kill -0 "$mid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.3
if ! [ -e "$SYNC.ready" ]; then
	fail connection-picked-up-midstream "the client did not get going: $(cat "$LAB_TMP/midstream.out")"
elif grep -Eiq 'union[[:space:]]+select' "$LAB_TMP/read-88" 2>/dev/null; then
	fail connection-picked-up-midstream "the application read: $(tr -d '\r\n' < "$LAB_TMP/read-88")"
else
	pass connection-picked-up-midstream
fi
[ "$(fp_stat midstream)" -ge 1 ] 2>/dev/null && pass midstream-counted || fail midstream-counted "midstream=$(fp_stat midstream)"

echo "# $(hv status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fastpath"])' 2>/dev/null)"
daemon_stop
lab_done
