#!/bin/sh
# The control socket: mode 0660 and its group; a member of the control group
# (an unprivileged uid via setpriv) can read (status, show, history) but not
# change (commit, block, reload); someone outside the group cannot connect;
# 1 MiB of garbage, malformed JSON and an oversized line are answered with
# errors and the daemon keeps serving; several clients at once.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

GROUP=nogroup
GID=$(getent group $GROUP | cut -d: -f3)
[ -n "$GID" ] || { skip socket "no group $GROUP"; exit 0; }
lab_ns fw || { fail lab-up; exit 1; }
chmod 755 "$LAB_TMP" # the unprivileged client must reach the socket
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
chmod 644 "$POL"
daemon_conf "$POL"
sed -i "s/group = \"root\"; admin_group/group = \"$GROUP\"; admin_group/" "$DAEMON_CONF"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

[ "$(stat -c '%a %G' "$DAEMON_SOCK")" = "660 $GROUP" ] && pass socket-mode-group || fail socket-mode-group "$(stat -c '%a %G' "$DAEMON_SOCK")"

member() { setpriv --reuid=65534 --regid="$GID" --clear-groups env HVGATE_SOCKET="$DAEMON_SOCK" "$HVGATE" "$@"; }
outsider() { setpriv --reuid=65534 --regid=65533 --clear-groups env HVGATE_SOCKET="$DAEMON_SOCK" "$HVGATE" "$@"; }

expect member-status member status
expect member-show-rules member show rules
expect member-history member history
member load "$POL" > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "permission denied" "$LAB_TMP/out" && pass member-load-denied || fail member-load-denied "rc=$rc $(cat "$LAB_TMP/out")"
member commit > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "permission denied" "$LAB_TMP/out" && pass member-commit-denied || fail member-commit-denied "rc=$rc"
expect_not member-block-denied member block 192.0.2.1
expect_not member-reload-denied member reload
outsider status > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "Permission denied" "$LAB_TMP/out" && pass outsider-cannot-connect || fail outsider-cannot-connect "rc=$rc"
expect root-load hv load "$POL"

# Client exit codes: 2 for usage and I/O errors, 1 when the daemon says no.
hv commit confirmed > /dev/null 2>&1; rc=$?; [ $rc -eq 2 ] && pass client-usage-exit-2 || fail client-usage-exit-2 "rc=$rc"
HVGATE_SOCKET=/nonexistent.sock "$HVGATE" status > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && pass client-no-daemon-exit-2 || fail client-no-daemon-exit-2 "rc=$rc"
hv rollback 999 > /dev/null 2>&1; rc=$?; [ $rc -eq 1 ] && pass client-refused-exit-1 || fail client-refused-exit-1 "rc=$rc"
out=$("$HVGATE" status --socket "$DAEMON_SOCK" --json); [ "$(json_get "$out" ok)" = True ] && pass client-socket-option || fail client-socket-option

# Garbage: 1 MiB without a newline, then a newline: one error, still serving.
reply=$(python3 -c 'import sys; sys.stdout.write("\x01garbage" * 131072 + "\n")' | timeout 10 socat -t 5 - "UNIX-CONNECT:$DAEMON_SOCK")
echo "$reply" | grep -q '"request line longer than 65536 bytes"' && pass garbage-1MiB-error || fail garbage-1MiB-error "$(echo "$reply" | head -c 200)"
# 1 MiB of random bytes with newlines: an error per line, never a crash.
head -c 1048576 /dev/urandom | timeout 20 socat -t 10 - "UNIX-CONNECT:$DAEMON_SOCK" > "$LAB_TMP/garbage.out"
n=$(grep -c '"ok":false' "$LAB_TMP/garbage.out")
[ "$n" -gt 100 ] && pass "random-1MiB-errors($n)" || fail random-1MiB-errors "$n replies"
daemon_alive && pass alive-after-garbage || fail alive-after-garbage
r=$(printf '{"cmd":"status"\n[1,2]\n{"cmd":5}\n{"cmd":"nope"}\n{"cmd":"status"}\n' | timeout 5 socat -t 2 - "UNIX-CONNECT:$DAEMON_SOCK")
[ "$(echo "$r" | grep -c '"ok":false')" = 4 ] && [ "$(echo "$r" | grep -c '"ok":true')" = 1 ] \
	&& pass malformed-each-answered || fail malformed-each-answered "$r"
printf '{"cmd":"status"}\n{"cmd":"status"}\n' | timeout 5 socat -t 2 - "UNIX-CONNECT:$DAEMON_SOCK" | grep -c '"ok":true' | grep -q 2 \
	&& pass pipelined-requests || fail pipelined-requests

# Several clients at once: 20 in parallel, plus one that never reads.
python3 - "$DAEMON_SOCK" > "$LAB_TMP/par.out" 2>&1 <<'PY'
import socket, sys, threading
path = sys.argv[1]
idle = socket.socket(socket.AF_UNIX); idle.connect(path)  # connected, silent
idle.sendall(b'{"cmd":"sta')                              # half a request
ok = []
def one():
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(path)
    s.sendall(b'{"cmd":"show","what":"rules"}\n{"cmd":"status"}\n')
    buf = b""
    while buf.count(b"\n") < 2:
        d = s.recv(65536)
        if not d: break
        buf += d
    ok.append(buf.count(b'"ok":true') == 2)
t = [threading.Thread(target=one) for _ in range(20)]
[x.start() for x in t]; [x.join() for x in t]
print(sum(ok))
PY
[ "$(cat "$LAB_TMP/par.out")" = 20 ] && pass parallel-clients-20 || fail parallel-clients-20 "$(cat "$LAB_TMP/par.out")"
expect still-serving hv status

daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-clean || fail stop-clean "exit $DAEMON_RC $(tail -5 "$DAEMON_LOG")"
lab_done
