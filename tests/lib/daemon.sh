# Helpers for the hvgated suites (tests/net/daemon_*.sh). Source after
# tests/lib/netns.sh. The daemon runs with its state, socket and event log in
# $LAB_TMP and works in namespace $LAB-$DAEMON_ROLE (default fw).
#
#   daemon_conf POLICY_PATH [EXTRA_CONFIG_LINES]   writes $DAEMON_CONF
#   daemon_start                                   starts, waits for "ready"
#   daemon_stop                                    SIGTERM, waits (bounded)
#   hv VERB ...                                    hvgate against our socket
#   fw_ruleset                                     `nft list ruleset` in the fw namespace

DAEMON_ROLE=${DAEMON_ROLE:-fw}
DAEMON_CONF="$LAB_TMP/hvgate.conf"
DAEMON_LOG="$LAB_TMP/hvgated.log"
DAEMON_SOCK="$LAB_TMP/control.sock"
DAEMON_STATE="$LAB_TMP/state"
DAEMON_EVENTS="$LAB_TMP/events.log"
DAEMON_PID=""
HVGATED=${HVGATED:-$HVGATE_BUILD/hvgated}
# Private copies: a rebuild of the tree during a run cannot swap the
# binaries under a suite.
cp "$HVGATED" "$LAB_TMP/hvgated.bin" && HVGATED="$LAB_TMP/hvgated.bin"
cp "$HVGATE" "$LAB_TMP/hvgate.bin" && HVGATE="$LAB_TMP/hvgate.bin"
# Port for metrics inside the lab namespace (namespaces do not share ports).
DAEMON_METRICS_PORT=${DAEMON_METRICS_PORT:-9469}

daemon_conf() {
	cat > "$DAEMON_CONF" <<C
interfaces = ( { name = "lan0"; role = "tenant"; }, { name = "dmz0"; role = "uplink"; } );
policy: { path = "$1"; };
state_dir = "$DAEMON_STATE";
control: { socket = "$DAEMON_SOCK"; mode = "0660"; group = "root"; admin_group = "root"; };
log: { file = "$DAEMON_EVENTS"; syslog = false; rate = 1000; burst = 1000; nflog_group = 1; };
metrics: { enabled = true; listen = "127.0.0.1:$DAEMON_METRICS_PORT"; };
netns = "$LAB-$DAEMON_ROLE";
on_stop = "keep";
counter_interval_ms = 200;
${2:-}
C
}

# daemon_start [WRAPPER...]: e.g. daemon_start valgrind --leak-check=full
daemon_start() {
	: > "$DAEMON_LOG"
	"$@" "$HVGATED" -c "$DAEMON_CONF" >> "$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	LAB_PIDS="$LAB_PIDS $DAEMON_PID"
	wait_for "${DAEMON_START_SECONDS:-10}" grep -q "hvgated: ready" "$DAEMON_LOG"
}

daemon_alive() { [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; }

daemon_stop() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	i=0
	while daemon_alive && [ $i -lt ${DAEMON_STOP_TENTHS:-100} ]; do sleep 0.1; i=$((i + 1)); done
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_RC=$?
	DAEMON_PID=""
	return 0
}

hv() { HVGATE_SOCKET="$DAEMON_SOCK" "$HVGATE" "$@"; }
fw_ruleset() { at "$DAEMON_ROLE" nft list ruleset; }
# json_get JSON PATH: a value from a JSON document (PATH like running.revision).
json_get() { printf '%s' "$1" | python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v[int(k)] if isinstance(v,list) else (v.get(k) if v is not None else None)
print("" if v is None else v)' "$2"; }
