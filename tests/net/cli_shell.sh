#!/bin/sh
# The interactive shell as an operator uses it: the real `hvgate shell` on a
# terminal (tmux), against a hvgated in a lab namespace. Screens are captured
# (tmux capture-pane) and compared with what must be there:
#  - Tab completes keywords at the first and later positions, tenant, zone
#    and segment names and revisions fetched from the daemon, and paths
#    where a path goes;
#  - `?` lists the next words with their help; unique prefixes run (sh ten);
#  - | count, | match, | json, the pager and | no-more;
#  - one-line errors that say what was expected; help lists neither shell nor vpn;
#  - Ctrl-C cancels the line and the shell lives on; a daemon stopped and
#    started again mid-session: an error, then the shell works again;
#  - Ctrl-D leaves, and the history is on disk.
# Every wait is bounded (wait_screen polls for at most a few seconds).
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
LAB="${HVGATE_LAB_PREFIX:-w4s}$$"
. tests/lib/daemon.sh

command -v tmux >/dev/null || { skip cli-shell "tmux not installed"; exit 0; }
lab_ns fw || { fail lab-up; exit 1; }
POL="$LAB_TMP/policy.hvp"
cat > "$POL" <<'P'
zone uplink { interface "dmz0" }
tenant acme {
  segment lan { interface "lan0" address { 10.0.1.0/24 } }
  pass from lan to uplink service tcp port 443
}
tenant beta {
  segment lan { interface "lan1" address { 10.0.2.0/24 } }
  pass from lan to uplink service tcp port 80
  block from lan to uplink service tcp port 23
}
P
daemon_conf "$POL"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }

TMUX_SOCK="$LAB_TMP/tmux.sock"
tm() { tmux -S "$TMUX_SOCK" "$@"; }
LAB_CLEAN_TMUX() { tm kill-server 2>/dev/null; }
trap 'LAB_CLEAN_TMUX; lab_cleanup' EXIT
mkdir -p "$LAB_TMP/home"
# The scripted editor: the first save has an error, the second fixes it
# (and moves beta's web rule to port 8080).
cat > "$LAB_TMP/editor.sh" <<E
#!/bin/sh
n=\$(cat "$LAB_TMP/editor.count" 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > "$LAB_TMP/editor.count"
if [ \$n = 1 ]; then sed -i 's/port 443/port 443 frobnicate/' "\$1"
else sed -i 's/ frobnicate//; s/port 80\$/port 8080/' "\$1"; fi
E
chmod +x "$LAB_TMP/editor.sh"
for s in sh b; do
	tm new-session -d -s $s -x 120 -y 40 "env HOME=$LAB_TMP/home HVGATE_SOCKET=$DAEMON_SOCK TERM=screen \
		EDITOR=$LAB_TMP/editor.sh $HVGATE shell; echo shell-exited-\$?; sleep 600" || { fail tmux-start; exit 1; }
done

T=sh # the session screen, keys and the checks look at
screen() { tm capture-pane -p -t $T; }
keys() { tm send-keys -t $T "$@"; }
# Waits are scaled by WAIT_SCALE (3): a loaded 2-core machine took over 5 s
# to load a git revision; a wait that succeeds returns as soon as it can.
WAIT_SCALE=${WAIT_SCALE:-3}
# wait_screen SECONDS EGREP: the screen shows EGREP within SECONDS (scaled).
wait_screen() {
	i=0
	while [ $i -lt $(($1 * 10 * WAIT_SCALE)) ]; do
		screen | grep -Eq -- "$2" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
# The line the cursor is on (the prompt and what is typed).
cursor_line() { screen | sed -n "$(( $(tm display -p -t $T '#{cursor_y}') + 1 ))p"; }
# wait_line SECONDS EGREP: the cursor's line matches within SECONDS.
wait_line() {
	i=0
	while [ $i -lt $(($1 * 10 * WAIT_SCALE)) ]; do
		cursor_line | grep -Eq -- "$2" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
# check NAME SECONDS EGREP: PASS if the screen shows it, else FAIL with the screen.
check() { if wait_screen "$2" "$3"; then pass "$1"; else fail "$1" "$(screen | grep -v '^$' | tail -8 | tr '\n' '|')"; fi; }
check_line() { if wait_line "$2" "$3"; then pass "$1"; else fail "$1" "cursor line: '$(cursor_line)'"; fi; }
# fresh: an empty line and a clear screen (^U kills the line, ^L clears).
fresh() { keys C-u C-l; wait_screen 3 '^hvgate[^ ]*[>#] ?$' >/dev/null; }

check prompt 5 '^hvgate> ?$'

# Completion of the first word, then of the second.
fresh; keys 'sh' Tab
check_line complete-first-word 3 '^hvgate> show ?$'
keys 'rul' Tab
check_line complete-second-word 3 '^hvgate> show rules ?$'
# Tenant names come from the daemon: two of them, listed; one letter more picks one.
keys 'tenant ' Tab
check complete-tenant-list 3 '^acme +beta *$'
keys 'b' Tab
check_line complete-tenant-name 3 '^hvgate> show rules tenant beta ?$'
keys Enter
check show-rules-tenant-filter 5 'policy.hvp:9:.* block'
screen | grep -q 'policy.hvp:4:' && fail show-rules-tenant-filter-excludes "acme's rule shown" ||
	pass show-rules-tenant-filter-excludes
# show rules: tenant column, the rule's text under it, the implicit drops as rows.
fresh; keys 'show rules | no-more' Enter
check show-rules-tenant-column 5 'policy.hvp:9:[0-9a-f]+ +beta +block '
check show-rules-text 3 '^    block from lan to uplink service tcp port 23$'
check show-rules-implicit-blocklist 3 '^builtin:blocked +- +drop '
check show-rules-implicit-default 3 '^default:builtin +- +drop '
m=$(at fw curl -s --max-time 5 "http://127.0.0.1:$DAEMON_METRICS_PORT/metrics" 2>/dev/null)
echo "$m" | grep -q '^hvgate_implicit_packets_total{rule="builtin:blocked",kind="block-list",tenant=""} [0-9]' &&
	pass metrics-implicit || fail metrics-implicit "$(echo "$m" | grep implicit | head -3 | tr '\n' '|')"

# Revisions come from the daemon (history): only revision 1 exists.
fresh; keys 'rollback ' Tab
check_line complete-revision 3 '^hvgate> rollback 1 ?$'
keys C-c
check ctrl-c-cancels 3 '^hvgate> rollback 1 \^C$'
check_line ctrl-c-new-prompt 3 '^hvgate> ?$'

# Paths only where a path goes.
: > "$LAB_TMP/w4s-unique-policy.hvp"
fresh; keys "load $LAB_TMP/w4s-uni" Tab
check_line complete-path 3 "^hvgate> load $LAB_TMP/w4s-unique-policy.hvp ?\$"
keys C-u 'show ' Tab
check complete-lists-show-words 3 'rules +tenants +nat +conntrack +log +blocked +vpn'

# Interfaces of the configuration (status) complete too.
fresh; keys 'show interfaces d' Tab
check_line complete-interface 3 '^hvgate> show interfaces dmz0 ?$'
keys Enter
check show-interface 5 '^dmz0 +uplink +no$'
screen | grep -q '^lan0 ' && fail show-interface-filter "lan0 shown" || pass show-interface-filter

# Zones and segments (tenant.segment) come from the daemon (show tenants)
# where a command takes one: block/unblock ADDR zone Z.
fresh; keys 'block 192.0.2.7 zone ' Tab
check complete-zone-list 3 '(uplink +acme\.lan +beta\.lan|acme\.lan +beta\.lan +uplink) *$'
keys 'b' Tab
check_line complete-zone-segment 3 '^hvgate> block 192\.0\.2\.7 zone beta\.lan ?$'
keys Enter
wait_for 5 sh -c "HVGATE_SOCKET='$DAEMON_SOCK' '$HVGATE' show blocked --json | grep -q '\"addr\":\"192.0.2.7\",\"tenant\":\"\",\"zone\":\"beta.lan\"'" &&
	pass shell-block-zone || fail shell-block-zone "$(hv show blocked --json)"
fresh; keys 'unblock 192.0.2.7 zone be' Tab
check_line complete-unblock-zone 3 '^hvgate> unblock 192\.0\.2\.7 zone beta\.lan ?$'
keys Enter
wait_for 5 sh -c "! HVGATE_SOCKET='$DAEMON_SOCK' '$HVGATE' show blocked --json | grep -q 192.0.2.7" &&
	pass shell-unblock-zone || fail shell-unblock-zone "$(hv show blocked --json)"

# ? lists the next words with one line of help, and keeps the line.
fresh; keys 'show ' '?'
check help-key-lists 3 '^  conntrack +tracked connections$'
check_line help-key-keeps-line 3 '^hvgate> show ?$'
fresh; keys 'commit confirmed ' '?'
check help-key-argument 3 '^  DURATION +time to confirm'
# explain without a policy file: the packet's protocol is offered.
fresh; keys 'explain ' '?'
check help-explain-protocol 3 '^  icmpv6 +an ICMPv6 packet, against the running policy$'

# Prefixes run; filters.
fresh; keys 'sh ten' Enter
check prefix-runs 5 '^  - name=acme '
fresh; keys 'sh ru | match "^/" | count' Enter
check pipe-count 5 '^Count: 3 lines$'
fresh; keys 'show rules | match ":9:"' Enter
if wait_screen 5 'policy.hvp:9:' && ! screen | grep -q 'policy.hvp:8:'; then pass pipe-match; else
	fail pipe-match "$(screen | tr '\n' '|')"; fi
fresh; keys 'status | json' Enter
check pipe-json 5 '^\{"ok":true'

# Errors: one line, saying what was expected.
fresh; keys 'show rulez' Enter
check error-expected 3 "^hvgate: after 'show': expected rules\|tenants\|nat\|conntrack\|log\|blocked\|vpn\|running\|interfaces, got 'rulez'$"
fresh; keys 's' Enter
check error-ambiguous 3 "^hvgate: 's' is ambiguous: status\|show$"
fresh; keys 'rollback' Enter
check error-missing 3 "^hvgate: after 'rollback': expected REVISION$"

# help: the shell's commands, not itself nor the foreground engines.
fresh; keys 'help | no-more' Enter
if wait_screen 5 'Ctrl-C cancels the line' && ! screen | grep -Eq '^  (shell|vpn|fastpath) '; then
	pass help-without-shell-vpn; else fail help-without-shell-vpn "$(screen | tr '\n' '|')"; fi

# The pager: a 12-line window cannot show help at once; q stops it.
tm resize-window -t sh -x 120 -y 12 2>/dev/null || tm resize-pane -t sh -y 12
fresh; keys 'help' Enter
check pager-more 5 '^--More--'
keys q
check_line pager-quit 3 '^hvgate> ?$'
fresh; keys 'help | no-more' Enter
wait_screen 5 'Up/Down walk the history' >/dev/null
screen | grep -q -- '--More--' && fail no-more "pager shown" || pass no-more
tm resize-window -t sh -x 120 -y 40 2>/dev/null || tm resize-pane -t sh -y 40

# Tables fit the terminal: in 60 columns the rule's id (an absolute path)
# gets a line of its own and the cells go under it; with
# | no-more a row stays one line, whatever the width.
tm resize-window -t sh -x 60 -y 40 2>/dev/null || tm resize-pane -t sh -x 60
# tmux tells the terminal its new size a little later than it answers:
# the command again (at most 5 times) until the shell sees 60 columns
for i in 1 2 3 4 5; do
	sleep 0.5; fresh; keys "show rules tenant beta" Enter
	wait_screen 3 '^  beta +block ' >/dev/null && break
done
check narrow-id-own-line 5 '^[^ ]*policy\.hvp:9:[0-9a-f]+$'
check narrow-cells-under-id 3 '^  beta +block +[0-9]+ +[0-9]+  (never|[0-9]{4}-)'
check narrow-header 3 '^  TENANT +ACTION +PACKETS +BYTES  LAST HIT'
# history shortens a long source from the left
fresh; keys 'history' Enter
wait_screen 5 'start$' >/dev/null
tm capture-pane -p -J -t $T | grep -Eq '^1 +\* [0-9-]+ [0-9:]+ +[0-9]+  [0-9a-f]+ +\.\.\.[^ ]*/policy\.hvp  start$' &&
	pass narrow-history-source || fail narrow-history-source "$(tm capture-pane -p -J -t $T | tail -4 | tr '\n' '|')"
fresh; keys 'show rules tenant beta | no-more' Enter
wait_screen 5 'block from lan to uplink service tcp port 23' >/dev/null
tm capture-pane -p -J -t $T | grep -Eq 'policy\.hvp:9:[0-9a-f]+ +beta +block ' && pass narrow-no-more-whole ||
	fail narrow-no-more-whole "$(screen | tail -8 | tr '\n' '|')"
tm resize-window -t sh -x 120 -y 40 2>/dev/null || tm resize-pane -t sh -x 120

# Configure mode: the candidate is locked for one session; status shows who.
sed 's/port 443/port 8443/' "$POL" > "$LAB_TMP/new.hvp"
fresh; keys 'config' Enter
check_line configure-prompt 5 '^hvgate# ?$'
[ -n "$(json_get "$(hv status --json)" lock.pid)" ] && pass status-shows-lock || fail status-shows-lock "$(hv status)"
T=b; fresh; keys 'configure' Enter
check second-session-refused 5 '^hvgate: the candidate is locked by uid 0 \(pid [0-9]+, configure mode\)'
check_line second-session-stays-op 3 '^hvgate> ?$'
T=sh
expect_not one-shot-load-refused hv load "$LAB_TMP/new.hvp"
fresh; keys "load $LAB_TMP/new.hvp" Enter
check conf-load 5 'candidate:'
fresh; keys 'show | compare' Enter
check conf-show-compare 5 '^~ rule .*/policy\.hvp:4 -> .*/new\.hvp:4$'
check conf-show-compare-count 3 '0 added, 0 removed, 1 changed'
check compare-old-text 3 '^    - pass from lan to uplink service tcp port 443$'
check compare-new-text 3 '^    \+ pass from lan to uplink service tcp port 8443$'
fresh; keys 'exit' Enter
check conf-exit-refused 5 "^hvgate: the candidate has uncommitted changes: commit, discard, or 'exit discard'$"
check_line conf-exit-refused-stays 3 '^hvgate# ?$'
fresh; keys 'discard' Enter
check conf-discard 5 '^Candidate discarded: it is the running revision 1 again.$'
fresh; keys 'show | compare' Enter
check conf-discard-compare 5 '0 added, 0 removed, 0 changed'
# edit: the first save does not check, the editor is offered again, the second does.
fresh; keys 'edit' Enter
check edit-error-shown 10 'frobnicate|error:'
check edit-offers-again 5 'The policy has errors. Edit again\? \[Y/n\]'
keys 'y' Enter
check edit-loaded 10 'candidate:'
fresh; keys 'show | compare' Enter
check edit-compare 5 '0 added, 0 removed, 1 changed'
check edit-compare-line 3 '^~ rule .*/policy\.hvp:8 -> .*/policy\.hvp:8$'
check edit-compare-text 3 '^    \+ pass from lan to uplink service tcp port 8080$'
fresh; keys 'commit confirmed 5m comment from the shell' Enter
check commit-says-what 10 '^Committing .*/hvgate-edit\.[^ ]*/policy\.hvp \(3 rules\): 0 added, 0 removed, 1 changed$'
check_line commit-confirmed-countdown 10 '^hvgate\(confirm 0[45]:[0-5][0-9]\)# ?$'
fresh; keys 'confirm' Enter
check_line confirm-clears-countdown 10 '^hvgate# ?$'
hv history | grep -q 'from the shell' && pass commit-comment || fail commit-comment "$(hv history)"
fresh; keys 'rollback 1' Enter
check conf-rollback 5 'candidate:'
fresh; keys 'show | compare revision 2' Enter
check conf-compare-revision 5 '^    - pass from lan to uplink service tcp port 8080$'
fresh; keys 'exit' Enter
check conf-exit-refused-after-rollback 5 "uncommitted changes"
fresh; keys 'exit discard' Enter
check_line conf-exit-discard 5 '^hvgate> ?$'
[ -z "$(json_get "$(hv status --json)" lock.pid)" ] && pass lock-released || fail lock-released
T=b; fresh; keys 'configure' Enter
check_line second-session-after-release 5 '^hvgate# ?$'
keys 'exit' Enter
check_line second-session-exit 5 '^hvgate> ?$'
T=sh

# The source of a revision; history marks a commit that was not confirmed.
fresh; keys 'show running | no-more' Enter
check show-running 5 '^  pass from lan to uplink service tcp port 8080$'
check show-running-header 3 '^# revision 2: '
fresh; keys 'sh run rev 1 | match 443' Enter
check show-running-revision 5 '^  pass from lan to uplink service tcp port 443$'
fresh; keys 'rollback 1' Enter
wait_screen 5 'candidate:' >/dev/null
fresh; keys 'commit confirmed 2' Enter
check_line op-prompt-countdown 10 '^hvgate\(confirm 00:0[0-2]\)> ?$'
sleep 4 # the revert is due after 2 s
fresh; keys 'history' Enter
check history-reverted 5 '^3 .*\[reverted: not confirmed\]$'
screen | grep -q '^2.*\[reverted' && fail history-confirmed-not-marked || pass history-confirmed-not-marked

# Labels: the rule's id wherever the id goes; compare follows the label
# when the rule moves and changes.
sed 's/port 80$/port 80 label "beta-web"/' "$POL" > "$LAB_TMP/lab.hvp"
{ printf '\n\n'; sed 's/port 80$/port 8080 label "beta-web"/' "$POL"; } > "$LAB_TMP/lab2.hvp"
fresh; keys "load $LAB_TMP/lab.hvp" Enter
wait_screen 5 'candidate:' >/dev/null
fresh; keys 'commit comment labelled' Enter
wait_screen 10 '^revision:' >/dev/null
fresh; keys 'show rules rule beta-web' Enter
check label-show-rules 5 '^beta-web +beta +pass '
m=$(at fw curl -s --max-time 5 "http://127.0.0.1:$DAEMON_METRICS_PORT/metrics" 2>/dev/null)
echo "$m" | grep -q 'hvgate_rule_packets_total{rule="beta-web"}' && pass label-metrics ||
	fail label-metrics "$(echo "$m" | grep rule_packets | head -3 | tr '\n' '|')"
# A rule without a label keeps its metrics series when its line moves in
# its file: the series is named FILE:HASH, the id without its line.
mseries() { at fw curl -s --max-time 5 "http://127.0.0.1:$DAEMON_METRICS_PORT/metrics" 2>/dev/null |
	grep -o "^hvgate_rule_packets_total{rule=\"[^\"]*\"}" | sort; }
s1=$(mseries)
cp "$LAB_TMP/lab.hvp" "$LAB_TMP/lab.orig"
{ printf '\n\n'; cat "$LAB_TMP/lab.orig"; } > "$LAB_TMP/lab.hvp"
hv load "$LAB_TMP/lab.hvp" >/dev/null && hv commit comment moved > "$LAB_TMP/out" 2>&1
# the one-shot commit says what it commits: rules that moved are unchanged
grep -q "^Committing $LAB_TMP/lab.hvp (3 rules): 0 added, 0 removed, 0 changed$" "$LAB_TMP/out" &&
	pass oneshot-commit-says-what || fail oneshot-commit-says-what "$(cat "$LAB_TMP/out")"
s2=$(mseries)
hv show rules | grep -q "lab.hvp:11:" && [ -n "$s1" ] && [ "$s1" = "$s2" ] &&
	echo "$s2" | grep -q "rule=\"$LAB_TMP/lab.hvp:[0-9a-f]\{6\}\"" && pass metrics-series-survive-move ||
	fail metrics-series-survive-move "$(echo "$s1" "$s2" | tr '\n' '|')"
cp "$LAB_TMP/lab.orig" "$LAB_TMP/lab.hvp"
hv load "$LAB_TMP/lab.hvp" >/dev/null && hv commit comment back >/dev/null
fresh; keys "load $LAB_TMP/lab2.hvp" Enter
wait_screen 5 'candidate:' >/dev/null
fresh; keys 'compare' Enter
check label-compare-follows 5 '^~ rule beta-web \(.*/lab.hvp:8\) -> beta-web \(.*/lab2.hvp:10\)$'
check label-compare-text 3 '^    \+ pass from lan to uplink service tcp port 8080 label "beta-web"$'
check label-compare-count 3 '^0 added, 0 removed, 1 changed, 2 unchanged$'
# First match: beta's two rules swapped is a change of order, shown as a move
# (before, compare called it all unchanged).
awk 'NR == 8 { held = $0; next } NR == 9 { print; print held; next } { print }' "$LAB_TMP/lab.hvp" > "$LAB_TMP/lab3.hvp"
fresh; keys "load $LAB_TMP/lab3.hvp" Enter
wait_screen 5 'candidate:' >/dev/null
fresh; keys 'compare' Enter
check reorder-compare-moved 5 '^> rule .*/lab.hvp:9 moved to .*/lab3.hvp:8$'
check reorder-compare-text 3 '^    block from lan to uplink service tcp port 23$'
check reorder-compare-count 3 '^0 added, 0 removed, 0 changed, 1 moved, 2 unchanged$'
# VPN blocks and peers in compare, by name, the public key abbreviated.
echo "not a real key" > "$LAB_TMP/w6s.key"
{ cat "$LAB_TMP/lab.hvp"; cat <<V; } > "$LAB_TMP/vpn.hvp"
vpn w6s0 {
  listen-port 51820
  private-key-file "$LAB_TMP/w6s.key"
  address 10.99.0.1/24
  peer b1 { public-key "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" endpoint "192.0.2.50:51820"
    allowed-ips { 10.99.0.2/32 } keepalive 25 }
}
V
fresh; keys "load $LAB_TMP/vpn.hvp" Enter
wait_screen 5 'candidate:' >/dev/null
fresh; keys 'compare' Enter
check vpn-compare-block 5 '^\+ vpn w6s0 \(.*/vpn.hvp:[0-9]+\)$'
check vpn-compare-peer 3 '^\+ peer w6s0/b1 \(.*/vpn.hvp:[0-9]+\)$'
check vpn-compare-peer-text 3 '^    peer b1 public-key xTIBA5rb\.\.\. endpoint 192\.0\.2\.50:51820 allowed-ips 10\.99\.0\.2/32 keepalive 25$'
check vpn-compare-count 3 '^2 added, 0 removed, 0 changed, 3 unchanged$'

# Compare matches rules by their content, not by FILE:LINE: the running
# policy (a file) against a git tree where one rule changed and another
# moved ahead of a third shows one change, with the text, and one move (the
# order of first match changed), not rules removed and added.
REPO="$LAB_TMP/repo"
git init -q "$REPO" 2>/dev/null
sed -e 's/port 443$/port 4443/' -e '/port 23$/d' -e 's/^\(  pass from lan to uplink service tcp port 80 label\)/  block from lan to uplink service tcp port 23\n\1/' \
	"$LAB_TMP/lab.hvp" > "$REPO/policy.hvp"
git -C "$REPO" add policy.hvp && git -C "$REPO" -c user.name=t -c user.email=t@example.org commit -qm p
fresh; keys "load git HEAD repo $REPO" Enter
wait_screen 5 'candidate:' >/dev/null
fresh; keys 'compare' Enter
check git-compare-by-content 5 '^0 added, 0 removed, 1 changed, 1 moved, 1 unchanged$'
check git-compare-changed 3 '^~ rule .*/lab\.hvp:4 -> (\./)?policy\.hvp:4$'
check git-compare-text 3 '^    \+ pass from lan to uplink service tcp port 4443$'
screen | grep -Eq '^[+-] rule' && fail git-compare-no-add-remove "$(screen | grep -E '^[+-] rule')" ||
	pass git-compare-no-add-remove

# The lock and the candidate outlive a restart of hvgated; a rule written
# over several lines is shown whole; a tenant's default is a row of its
# tenant (show rules, metrics).
{ sed '$d' "$LAB_TMP/lab.hvp"; cat <<'M'; } > "$LAB_TMP/multi.hvp"
  pass from lan
    to uplink   # the mail relay
    service tcp port 25
  default from lan to uplink block
}
M
fresh; keys 'configure' Enter
check_line restart-configure 5 '^hvgate# ?$'
fresh; keys "load $LAB_TMP/multi.hvp" Enter
check restart-load 5 'candidate:'
pid=$(json_get "$(hv status --json)" lock.pid)
daemon_stop
daemon_start || fail restart "$(tail -3 "$DAEMON_LOG")"
st=$(hv status --json)
[ -n "$pid" ] && [ "$(json_get "$st" lock.pid)" = "$pid" ] && [ "$(json_get "$st" lock.stale)" = False ] &&
	pass lock-survives-restart || fail lock-survives-restart "before $pid, after: $(json_get "$st" lock)"
[ "$(json_get "$st" candidate.source)" = "$LAB_TMP/multi.hvp" ] && pass candidate-survives-restart ||
	fail candidate-survives-restart "$(json_get "$st" candidate)"
hv load "$POL" > "$LAB_TMP/out" 2>&1 && fail lock-refuses-after-restart "load ran" ||
	{ grep -q "^hvgate: the candidate is locked by uid 0 (pid $pid, configure mode) since" "$LAB_TMP/out" &&
		pass lock-refuses-after-restart || fail lock-refuses-after-restart "$(cat "$LAB_TMP/out")"; }
fresh; keys 'show | compare' Enter
check restart-compare 5 '^1 added, 0 removed, 0 changed, 3 unchanged$'
check compare-multiline-added 3 '^\+ rule .*/multi\.hvp:10$'
check compare-multiline-text 3 '^    pass from lan to uplink service tcp port 25$'
fresh; keys 'commit comment after the restart' Enter
check restart-commit 10 '^revision: '
fresh; keys 'show rules | no-more' Enter
check show-rules-multiline 5 '^    pass from lan to uplink service tcp port 25$'
check show-rules-tenant-default 3 '^default:.*/multi\.hvp:13 +beta +drop '
m=$(at fw curl -s --max-time 5 "http://127.0.0.1:$DAEMON_METRICS_PORT/metrics" 2>/dev/null)
echo "$m" | grep -q "^hvgate_implicit_packets_total{rule=\"default:$LAB_TMP/multi.hvp:13\",kind=\"default\",tenant=\"beta\"} [0-9]" &&
	pass metrics-tenant-default || fail metrics-tenant-default "$(echo "$m" | grep 'implicit.*default' | tr '\n' '|')"
fresh; keys 'exit' Enter
check_line restart-exit 5 '^hvgate> ?$'

# A session that is gone (its shell killed) with changes in the candidate
# leaves a stale lock that keeps the candidate until an operator breaks it;
# gone without changes, its lock is dropped; a live one needs 'force'.
tm new-session -d -s c -x 120 -y 40 "env HOME=$LAB_TMP/home HVGATE_SOCKET=$DAEMON_SOCK TERM=screen \
	$HVGATE shell; echo shell-exited-\$?; sleep 600" || fail tmux-start-c
T=c; check_line idle-shell-up 5 '^hvgate> ?$'; keys 'configure' Enter
check_line idle-configure 5 '^hvgate# ?$'
cpid=$(json_get "$(hv status --json)" lock.pid)
[ -n "$cpid" ] && kill -9 "$cpid"
check idle-shell-killed 5 '^shell-exited-137$'
[ -z "$(json_get "$(hv status --json)" lock.pid)" ] && pass idle-stale-lock-dropped ||
	fail idle-stale-lock-dropped "$(json_get "$(hv status --json)" lock)"
T=b; fresh; keys 'configure' Enter
check_line stale-configure 5 '^hvgate# ?$'
fresh; keys "load $POL" Enter
check stale-load 5 'candidate:'
bpid=$(json_get "$(hv status --json)" lock.pid)
[ -n "$bpid" ] && kill -9 "$bpid"
check stale-shell-killed 5 '^shell-exited-137$'
T=sh
[ "$(json_get "$(hv status --json)" lock.stale)" = True ] && pass status-shows-stale-lock ||
	fail status-shows-stale-lock "$(json_get "$(hv status --json)" lock)"
hv load "$POL" > "$LAB_TMP/out" 2>&1 && fail stale-lock-refuses "load ran" ||
	{ grep -q "the session is gone) since .*: 'hvgate unlock' breaks the stale lock$" "$LAB_TMP/out" &&
		pass stale-lock-refuses || fail stale-lock-refuses "$(cat "$LAB_TMP/out")"; }
fresh; keys 'configure' Enter
check stale-configure-refused 5 "^hvgate: the candidate is locked by uid 0 \(pid $bpid, configure mode, the session is gone\)"
fresh; keys 'unlock' Enter
check stale-unlock 5 "^Broke the configure lock of uid 0 \(pid $bpid, gone\)"
fresh; keys 'configure' Enter
check_line stale-configure-after-unlock 5 '^hvgate# ?$'
check stale-candidate-kept 3 "^The candidate differs from the running policy: 'show \| compare' shows how, 'discard' drops it\.$"
hv unlock > "$LAB_TMP/out" 2>&1 && fail live-unlock-needs-force "unlocked" ||
	{ grep -q "still running) since .*'unlock force'" "$LAB_TMP/out" && pass live-unlock-needs-force ||
		fail live-unlock-needs-force "$(cat "$LAB_TMP/out")"; }
hv unlock force > "$LAB_TMP/out" 2>&1 && grep -q 'still running' "$LAB_TMP/out" &&
	[ -z "$(json_get "$(hv status --json)" lock.pid)" ] && pass live-unlock-force ||
	fail live-unlock-force "$(cat "$LAB_TMP/out")"
fresh; keys 'exit discard' Enter
check_line exit-after-lock-broken 5 '^hvgate> ?$'
# A script's input that ends in configure mode: as exit when nothing
# changed; with changes, the candidate stays locked (stale once it exits).
printf 'configure\nload %s\n' "$LAB_TMP/new.hvp" | hv shell > "$LAB_TMP/out" 2>&1; r=$?
[ "$r" = 1 ] && grep -q "^hvgate: the input ended in configure mode: the candidate stays locked" "$LAB_TMP/out" &&
	[ "$(json_get "$(hv status --json)" lock.stale)" = True ] && pass batch-end-keeps-changes-locked ||
	fail batch-end-keeps-changes-locked "exit $r: $(tr '\n' '|' < "$LAB_TMP/out") $(json_get "$(hv status --json)" lock)"
hv unlock > /dev/null
printf 'configure\ndiscard\n' | hv shell > "$LAB_TMP/out" 2>&1; r=$?
[ "$r" = 0 ] && [ -z "$(json_get "$(hv status --json)" lock.pid)" ] && pass batch-end-unlocks ||
	fail batch-end-unlocks "exit $r: $(tr '\n' '|' < "$LAB_TMP/out")"

# The daemon goes away mid-session: an error, the shell lives; it comes back.
daemon_stop
fresh; keys 'status' Enter
check daemon-gone-error 5 '^hvgate: cannot reach hvgated at .*control.sock'
check_line daemon-gone-shell-lives 3 '^hvgate> ?$'
fresh; keys 'show rules tenant ' Tab
check_line daemon-gone-tab-quiet 3 '^hvgate> show rules tenant ?$'
keys C-u
daemon_start || fail restart "$(tail -3 "$DAEMON_LOG")"
fresh; keys 'status' Enter
check daemon-back-status 5 '^running:'
sleep 3 # the shell keeps fetched names 3 s (SHELL_NAMES_TTL_SECONDS)
fresh; keys 'show rules tenant a' Tab
check_line daemon-back-completion 3 '^hvgate> show rules tenant acme ?$'
keys C-u

# Ctrl-D leaves; the history is on disk.
keys C-d
check ctrl-d-leaves 5 '^shell-exited-0$'
# libedit writes blanks as \040.
sed 's/\\040/ /g' "$LAB_TMP/home/.hvgate_history" > "$LAB_TMP/hist" 2>/dev/null
grep -q '^show rules tenant beta$' "$LAB_TMP/hist" && grep -q '^status | json$' "$LAB_TMP/hist" &&
	pass history-saved ||
	fail history-saved "$(cat "$LAB_TMP/home/.hvgate_history" 2>&1 | tail -5 | tr '\n' '|')"
lab_done
