#!/bin/sh
# Control-plane abuse by users the daemon lets in: members of the read-only
# control group (uids via setpriv, no accounts) hold many idle connections,
# dribble a request a byte at a time, pipeline large `show` requests without
# reading; root and the admin group still get in and are answered at once,
# and the daemon's memory stays bounded. The metrics listener under many
# connections keeps the daemon's descriptors bounded. `load` of /etc/shadow by
# an admin who is not root is refused without its contents; `load` of a FIFO
# is refused at once. The CLI piped into a reader that went away prints an
# error instead of dying silently of SIGPIPE.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

GROUP=nogroup
GID=$(getent group $GROUP | cut -d: -f3)
ADMIN_GROUP=staff
AGID=$(getent group $ADMIN_GROUP | cut -d: -f3)
[ -n "$GID" ] && [ -n "$AGID" ] || { fail groups "no group $GROUP or $ADMIN_GROUP"; exit 1; }
# The unprivileged clients need a python3 outside root's home.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
# Under AddressSanitizer (HVGATED= a sanitizer build) freed memory waits in
# a quarantine of 256 MB, which would be counted as the daemon's peak RSS.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
lab_ns fw || { fail lab-up; exit 1; }
chmod 755 "$LAB_TMP" # the unprivileged clients must reach the socket
POL="$LAB_TMP/policy.hvp"
cp conf/policies/demo.hvp "$POL"
# 300 more rules: a `show rules` reply of about 100 KB, so that unread
# replies add up fast.
i=0; while [ $i -lt 300 ]; do echo "pass from lan to dmz service tcp port $((10000 + i))"; i=$((i + 1)); done >> "$POL"
chmod 644 "$POL"
daemon_conf "$POL"
sed -i "s/group = \"root\"; admin_group = \"root\";/group = \"$GROUP\"; admin_group = \"$ADMIN_GROUP\"; idle_seconds = 60; request_seconds = 2; max_clients_per_uid = 40;/" "$DAEMON_CONF"
grep -q "max_clients_per_uid = 40" "$DAEMON_CONF" || { fail conf "$(grep control "$DAEMON_CONF")"; exit 1; }
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

# member UID CMD...: as a read-only member; admin CMD...: as an admin who is
# not root (uid 65533, in the admin group and the socket's group).
member() { u=$1; shift; setpriv --reuid="$u" --regid="$GID" --clear-groups "$@"; }
admin() { setpriv --reuid=65533 --regid="$AGID" --groups="$GID" env HVGATE_SOCKET="$DAEMON_SOCK" "$HVGATE" "$@"; }
ms_now() { echo $(($(date +%s%N) / 1000000)); }
# timed NAME LIMIT_MS CMD...: CMD succeeds within LIMIT_MS.
timed() {
	n=$1; lim=$2; shift 2
	t0=$(ms_now)
	"$@" > "$LAB_TMP/out" 2>&1; rc=$?
	t=$(($(ms_now) - t0))
	[ $rc = 0 ] && [ $t -lt "$lim" ] && pass "$n(${t} ms)" || fail "$n" "rc=$rc ${t} ms $(head -c 200 "$LAB_TMP/out")"
}

# hold UID N OUT: N connections as UID, kept open until killed (at most
# 90 s); OUT gets "accepted A refused R" and the first refusal.
cat > "$LAB_TMP/hold.py" <<'PY'
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(path); socks.append(s)
time.sleep(1.0)
accepted, refused, why = 0, 0, ""
for s in socks:
    s.setblocking(False)
    try:
        d = s.recv(4096)
        refused += 1
        why = why or d.decode(errors="replace").strip()
    except BlockingIOError:
        accepted += 1
print("accepted %d refused %d %s" % (accepted, refused, why), flush=True)
time.sleep(90)
PY
chmod 644 "$LAB_TMP/hold.py"
hold() { setpriv --reuid="$1" --regid="$GID" --clear-groups "$PY" "$LAB_TMP/hold.py" "$DAEMON_SOCK" "$2" > "$3" 2>&1 & LAB_PIDS="$LAB_PIDS $!"; HOLD_PID=$!; }

# A commit that must be confirmed while the connections are taken.
cp "$POL" "$LAB_TMP/policy2.hvp"; echo "pass from lan to dmz service tcp port 9999" >> "$LAB_TMP/policy2.hvp"
chmod 644 "$LAB_TMP/policy2.hvp"
hv load "$LAB_TMP/policy2.hvp" > /dev/null && hv commit confirmed 120 > /dev/null || fail commit-confirmed "$(hv status 2>&1 | tail -3)"
# 1. Idle connections. One uid gets max_clients_per_uid (40) and no more.
hold 65534 41 "$LAB_TMP/hold1"
wait_for 10 test -s "$LAB_TMP/hold1"
H1=$HOLD_PID
grep -q "^accepted 40 refused 1 .*too many connections from uid 65534 (control.max_clients_per_uid is 40)" "$LAB_TMP/hold1" \
	&& pass per-uid-limit-refuses-with-error || fail per-uid-limit-refuses-with-error "$(cat "$LAB_TMP/hold1")"
# A second uid tries to take the rest: it gets the slots left to read-only
# users (64 - 8 kept).
hold 65532 24 "$LAB_TMP/hold2"
wait_for 10 test -s "$LAB_TMP/hold2"
H2=$HOLD_PID
grep -q "^accepted 16 refused 8 .*kept for root and the admin group" "$LAB_TMP/hold2" \
	&& pass read-only-users-cannot-take-reserved-slots || fail read-only-users-cannot-take-reserved-slots "$(cat "$LAB_TMP/hold2")"
timed root-status-with-56-idle-clients 1000 hv status
timed admin-status-with-56-idle-clients 1000 admin status
timed root-confirm-gets-in 1000 "$HVGATE" confirm --socket "$DAEMON_SOCK"
member 65531 env HVGATE_SOCKET="$DAEMON_SOCK" "$HVGATE" status > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc != 0 ] && grep -q "too many clients" "$LAB_TMP/out" && pass third-member-refused-clearly \
	|| fail third-member-refused-clearly "rc=$rc $(cat "$LAB_TMP/out")"
kill "$H1" "$H2" 2>/dev/null; wait "$H1" "$H2" 2>/dev/null
wait_for 5 sh -c "[ \$(ls /proc/$DAEMON_PID/fd | wc -l) -lt 40 ]"
expect member-gets-in-after-release member 65534 env HVGATE_SOCKET="$DAEMON_SOCK" "$HVGATE" status

# 2. A request dribbled a byte every 0.5 s: cut off after request_seconds (2).
member 65534 "$PY" - "$DAEMON_SOCK" > "$LAB_TMP/dribble" 2>&1 <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(0.5)
start, got = time.time(), b""
for b in b'{"cmd":"status"' + b" " * 40:
    try:
        s.send(bytes([b]))
        d = s.recv(4096)
        got += d
        if not d: break
    except socket.timeout:
        continue
    except OSError:
        break
    if time.time() - start > 15: break
print("closed after %.1f s: %s" % (time.time() - start, got.decode(errors="replace").strip()))
PY
secs=$(sed -n 's/^closed after \([0-9]*\)\..*/\1/p' "$LAB_TMP/dribble")
[ -n "$secs" ] && [ "$secs" -le 5 ] && grep -q "request not complete within control.request_seconds" "$LAB_TMP/dribble" \
	&& pass "dribbling-client-cut-off($(cat "$LAB_TMP/dribble"))" || fail dribbling-client-cut-off "$(cat "$LAB_TMP/dribble")"

# 3. 30 clients pipelining `show rules` without reading: root's status is
# answered within 1 s each time, the daemon's peak memory stays bounded.
cat > "$LAB_TMP/pipe.py" <<'PY'
import socket, sys, time
path, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
req = b'{"cmd":"show","what":"rules"}\n' * 64
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(path); s.setblocking(False); socks.append(s)
print("started", flush=True)
sent, end = 0, time.time() + secs
while time.time() < end and socks:
    for s in list(socks):
        try:
            sent += s.send(req)
        except BlockingIOError:
            pass
        except OSError:
            socks.remove(s)
    time.sleep(0.01)
print("sent %d bytes, %d connections left" % (sent, len(socks)))
PY
chmod 644 "$LAB_TMP/pipe.py"
hwm0=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$DAEMON_PID/status)
member 65534 "$PY" "$LAB_TMP/pipe.py" "$DAEMON_SOCK" 30 8 > "$LAB_TMP/pipe.out" 2>&1 &
PIPE=$!
wait_for 10 grep -q started "$LAB_TMP/pipe.out"
sleep 0.5
worst=0; n=0; bad=0
while kill -0 $PIPE 2>/dev/null && [ $n -lt 40 ]; do
	t0=$(ms_now)
	timeout 10 "$HVGATE" status --socket "$DAEMON_SOCK" > /dev/null 2>&1 || bad=$((bad + 1))
	t=$(($(ms_now) - t0)); [ $t -gt $worst ] && worst=$t
	n=$((n + 1)); sleep 0.1
done
wait $PIPE
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$DAEMON_PID/status)
[ $n -ge 3 ] && [ $bad = 0 ] && [ $worst -lt 1000 ] && pass "root-status-under-pipelining($n tries, worst $worst ms)" \
	|| fail root-status-under-pipelining "$n tries, $bad failed, worst $worst ms; $(cat "$LAB_TMP/pipe.out")"
# 30 clients x (256 KiB of unread replies, one more reply and buffers) is
# about 15 MB; without the limit each could queue 8 MiB.
grep -q "^sent [1-9][0-9]\{6,\} bytes, 30 connections left" "$LAB_TMP/pipe.out" && [ -n "$hwm" ] && [ "$hwm" -lt 98304 ] && pass "rss-bounded-under-pipelining(peak ${hwm} kB, before ${hwm0} kB; $(cat "$LAB_TMP/pipe.out"))" \
	|| fail rss-bounded-under-pipelining "peak ${hwm} kB, before ${hwm0} kB; $(cat "$LAB_TMP/pipe.out")"
expect status-after-pipelining hv status

# 4. The CLI and a reader that has gone: an error message and status 2.
{ hv show rules --json 2> "$LAB_TMP/pipe.err"; echo $? > "$LAB_TMP/pipe.rc"; } | (exec 0<&-; sleep 0.5)
[ "$(cat "$LAB_TMP/pipe.rc")" = 2 ] && grep -q "hvgate: write to standard output: Broken pipe" "$LAB_TMP/pipe.err" \
	&& pass cli-closed-stdout-error-not-sigpipe || fail cli-closed-stdout-error-not-sigpipe "rc=$(cat "$LAB_TMP/pipe.rc") $(cat "$LAB_TMP/pipe.err")"

# 5. Metrics: 200 connections that never send, from an unprivileged user:
# the daemon's descriptors stay bounded and it still answers.
fd0=$(ls /proc/$DAEMON_PID/fd | wc -l)
at fw setpriv --reuid=65534 --regid="$GID" --clear-groups "$PY" - "$DAEMON_METRICS_PORT" > "$LAB_TMP/met.out" 2>&1 <<'PY' &
import socket, sys, time
socks = []
for i in range(200):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2); socks.append(s)
    except OSError:
        pass
print("connected", len(socks), flush=True)
time.sleep(6)
PY
MET=$!
wait_for 15 grep -q connected "$LAB_TMP/met.out"
fd1=$(ls /proc/$DAEMON_PID/fd | wc -l)
grep -q "^connected [12][0-9][0-9]" "$LAB_TMP/met.out" && [ $((fd1 - fd0)) -le 40 ] && pass "metrics-connections-bounded(fds $fd0 -> $fd1, $(cat "$LAB_TMP/met.out"))" \
	|| fail metrics-connections-bounded "fds $fd0 -> $fd1, $(cat "$LAB_TMP/met.out")"
timed status-during-metrics-flood 1000 hv status
wait $MET
wait_for 15 sh -c "ip netns exec $LAB-fw curl -s -m 2 http://127.0.0.1:$DAEMON_METRICS_PORT/metrics | grep -q hvgate_running_revision" \
	&& pass metrics-serves-after-flood || fail metrics-serves-after-flood

# 6. load PATH by an admin who is not root: files are read with the
# admin's rights; what it cannot read is refused without its contents.
expect admin-loads-readable-policy admin load "$POL"
secret=$(head -1 /etc/shadow | cut -d: -f1-2)
admin load /etc/shadow > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "Permission denied" "$LAB_TMP/out" && ! grep -qF "$secret" "$LAB_TMP/out" \
	&& pass admin-load-shadow-refused-no-contents || fail admin-load-shadow-refused-no-contents "rc=$rc $(head -c 300 "$LAB_TMP/out")"
printf 'include "/etc/shadow"\n' > "$LAB_TMP/inc.hvp"; chmod 644 "$LAB_TMP/inc.hvp"
admin load "$LAB_TMP/inc.hvp" > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "Permission denied" "$LAB_TMP/out" && ! grep -qF "$secret" "$LAB_TMP/out" \
	&& pass admin-include-shadow-refused-no-contents || fail admin-include-shadow-refused-no-contents "rc=$rc $(head -c 300 "$LAB_TMP/out")"
# A git repository the admin can read still loads with the admin's rights.
REPO="$LAB_TMP/repo"
mkdir "$REPO" && cp "$POL" "$REPO/policy.hvp" &&
	git -C "$REPO" init -q && git -C "$REPO" add policy.hvp &&
	git -C "$REPO" -c user.name=t -c user.email=t@example.org commit -qm policy && chmod -R a+rX "$REPO"
expect admin-loads-readable-git-repo admin load git HEAD repo "$REPO"
cp -a "$REPO" "$LAB_TMP/secret-repo" && chmod 700 "$LAB_TMP/secret-repo"
admin load git HEAD repo "$LAB_TMP/secret-repo" > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "Permission denied" "$LAB_TMP/out" && pass admin-load-unreadable-git-repo-refused \
	|| fail admin-load-unreadable-git-repo-refused "rc=$rc $(head -c 300 "$LAB_TMP/out")"
expect root-loads-unreadable-git-repo hv load git HEAD repo "$LAB_TMP/secret-repo"
# 7. A FIFO: refused at once, the daemon goes on.
mkfifo "$LAB_TMP/fifo"; chmod 666 "$LAB_TMP/fifo"
for who in hv admin; do
	t0=$(ms_now)
	$who load "$LAB_TMP/fifo" > "$LAB_TMP/out" 2>&1; rc=$?
	t=$(($(ms_now) - t0))
	[ $rc = 1 ] && [ $t -lt 2000 ] && grep -q "is not a regular file or a directory" "$LAB_TMP/out" \
		&& pass "$who-load-fifo-refused(${t} ms)" || fail "$who-load-fifo-refused" "rc=$rc ${t} ms $(head -c 200 "$LAB_TMP/out")"
done
timed status-after-fifo 1000 hv status

# The limits follow a reload.
sed -i "s/max_clients_per_uid = 40;/max_clients_per_uid = 2;/" "$DAEMON_CONF"
expect reload-new-limits hv reload
hold 65534 3 "$LAB_TMP/hold3"
wait_for 10 test -s "$LAB_TMP/hold3"
kill "$HOLD_PID" 2>/dev/null
grep -q "^accepted 2 refused 1 .*max_clients_per_uid is 2)" "$LAB_TMP/hold3" && pass per-uid-limit-follows-reload \
	|| fail per-uid-limit-follows-reload "$(cat "$LAB_TMP/hold3")"

daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-clean || fail stop-clean "exit $DAEMON_RC $(tail -5 "$DAEMON_LOG")"
lab_done
