#!/bin/sh
# Policy from git: a test repository with two commits; the daemon reads the
# tree of a ref with libgit2 (the work tree is never read: it holds a broken
# file on purpose), applies each commit, records the commit id, diffs the
# two revisions rule by rule, and rolls back.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh
. tests/lib/daemon.sh

lab_ns fw || { fail lab-up; exit 1; }
REPO="$LAB_TMP/repo"
mkdir -p "$REPO/objects"
g() { git -C "$REPO" -c user.name=test -c user.email=test@example.org "$@"; }
g init -q -b main
cat > "$REPO/zones.hvp" <<'P'
zone lan { interface "lan0" }
zone dmz { interface "dmz0" }
P
cat > "$REPO/rules.hvp" <<'P'
pass from lan to dmz service tcp port 80
block from lan to dmz service tcp port 22
P
g add . && g commit -q -m one
C1=$(g rev-parse HEAD)
cat > "$REPO/rules.hvp" <<'P'
pass from lan to dmz service tcp port 80
pass from lan to dmz service tcp port 443
block from lan to dmz service tcp port 23
P
g add . && g commit -q -m two
C2=$(g rev-parse HEAD)
# The work tree is not what the daemon reads.
echo 'this is not a policy' > "$REPO/rules.hvp"

daemon_conf "$REPO"
sed -i "s|policy: { path = \"$REPO\"; };|policy: { source = \"git\"; path = \"$REPO\"; ref = \"$C1\"; };|" "$DAEMON_CONF"
daemon_start || { fail start "$(tail -5 "$DAEMON_LOG")"; exit 1; }
pass start-from-git-commit
st=$(hv status --json)
[ "$(json_get "$st" running.source_rev)" = "$C1" ] && pass records-commit-id || fail records-commit-id "$st"
fw_ruleset | grep -q 'dport 22' && pass commit1-applied || fail commit1-applied

expect load-git-main hv load git main
expect commit-main hv commit comment second commit
fw_ruleset | grep -q 'dport 443' && pass commit2-applied || fail commit2-applied
fw_ruleset | grep -q 'dport 22' && fail commit2-removed-22 || pass commit2-removed-22
h=$(hv history --json)
[ "$(json_get "$h" revisions.0.source_rev)" = "$C2" ] && pass history-commit-id || fail history-commit-id "$h"

out=$(hv diff 1 2)
echo "$out" | grep -q '^+ rule rules.hvp:3$' && echo "$out" | grep -q '^~ rule rules.hvp:2 -> rules.hvp:2$' \
	&& pass diff-rule-by-rule || fail diff-rule-by-rule "$out"
[ "$(json_get "$(hv diff 1 2 --json)" unchanged)" = 1 ] && pass diff-unchanged-count || fail diff-unchanged-count "$out"

out=$(hv diff "git:$C1" git:main)
echo "$out" | grep -q '^+ rule rules.hvp:3$' && pass diff-git-refs || fail diff-git-refs "$out"

expect rollback-1 hv rollback 1
out=$(hv compare); echo "$out" | grep -q 'removed' && pass rollback-compare || fail rollback-compare "$out"
expect commit-rollback hv commit comment back to one
fw_ruleset | grep -q 'dport 22' && pass rollback-applied || fail rollback-applied
[ "$(json_get "$(hv status --json)" running.source_rev)" = "$C1" ] && pass rollback-keeps-commit-id || fail rollback-keeps-commit-id

# Reload follows the configured ref: point it at the branch.
sed -i "s|ref = \"$C1\"|ref = \"main\"|" "$DAEMON_CONF"
expect reload-branch hv reload
[ "$(json_get "$(hv status --json)" running.source_rev)" = "$C2" ] && pass reload-follows-ref || fail reload-follows-ref

hv load git no-such-ref > "$LAB_TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "no-such-ref" "$LAB_TMP/out" && pass bad-ref-error || fail bad-ref-error "$(cat "$LAB_TMP/out")"

daemon_stop
[ "$DAEMON_RC" = 0 ] && pass stop-clean || fail stop-clean "exit $DAEMON_RC $(tail -5 "$DAEMON_LOG")"
lab_done
