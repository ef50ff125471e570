#!/bin/sh
# The CLI as a script and a person use it: exit codes of check (0 valid,
# 1 invalid with file:line:col diagnostics, 2 usage / missing file), compile
# output, and the interactive shell both on a pipe and on a terminal (a pty
# from script(1)). No namespace needed; nothing here touches the kernel.
cd "$(dirname "$0")/../.."
. tests/lib/netns.sh

code() { "$@" >"$LAB_TMP/out" 2>"$LAB_TMP/err"; echo $?; }

r=$(code "$HVGATE" check conf/policies/demo.hvp); [ "$r" = 0 ] && pass check-valid-exit-0 || fail check-valid-exit-0 "exit $r"
grep -q '^ok: 6 rules, 2 zones' "$LAB_TMP/out" && pass check-valid-summary || fail check-valid-summary "$(cat "$LAB_TMP/out")"

printf 'zone lan { interface "lan0" }\npass from lan to nowhere\nblock from lan to 10.0.0.1/8\n' > "$LAB_TMP/bad.hvp"
r=$(code "$HVGATE" check "$LAB_TMP/bad.hvp"); [ "$r" = 1 ] && pass check-invalid-exit-1 || fail check-invalid-exit-1 "exit $r"
n=$(grep -c "^$LAB_TMP/bad.hvp:[0-9]*:[0-9]*: error: " "$LAB_TMP/err")
[ "$n" -ge 2 ] && pass check-reports-all-errors || fail check-reports-all-errors "$n errors: $(cat "$LAB_TMP/err")"
grep -q "^$LAB_TMP/bad.hvp:2:18: error: unknown zone" "$LAB_TMP/err" && pass check-error-location || fail check-error-location "$(head -3 "$LAB_TMP/err")"
grep -q '\^' "$LAB_TMP/err" && pass check-caret || fail check-caret

r=$(code "$HVGATE" check "$LAB_TMP/does-not-exist.hvp"); [ "$r" = 2 ] && pass check-missing-exit-2 || fail check-missing-exit-2 "exit $r"
r=$(code "$HVGATE" check); [ "$r" = 2 ] && pass check-usage-exit-2 || fail check-usage-exit-2 "exit $r"
r=$(code "$HVGATE" frobnicate); [ "$r" = 2 ] && pass unknown-verb-exit-2 || fail unknown-verb-exit-2 "exit $r"
for v in check compile apply vpn shell status show commit diff; do
	r=$(code "$HVGATE" $v --help); [ "$r" = 0 ] && [ -s "$LAB_TMP/out" ] && pass "help-$v" || fail "help-$v" "exit $r"
done

r=$(code "$HVGATE" compile conf/policies/demo.hvp --emit nft)
[ "$r" = 0 ] && grep -q '^table inet hvgate {' "$LAB_TMP/out" && pass compile-emits-table || fail compile-emits-table "exit $r"
grep -q 'demo.hvp:16:.*' "$LAB_TMP/out" && pass compile-rule-ids || fail compile-rule-ids

# Shell on a pipe: runs each line, exit status of the last command.
printf 'help\ncheck conf/policies/demo.hvp\n' | "$HVGATE" shell >"$LAB_TMP/out" 2>&1
r=$?; [ "$r" = 0 ] && grep -q '^ok: 6 rules' "$LAB_TMP/out" && pass shell-pipe || fail shell-pipe "exit $r: $(tail -3 "$LAB_TMP/out")"
printf 'check "%s"\n' "$LAB_TMP/bad.hvp" | "$HVGATE" shell >"$LAB_TMP/out" 2>&1
r=$?; [ "$r" = 1 ] && grep -q 'error:' "$LAB_TMP/out" && pass shell-pipe-failure-status || fail shell-pipe-failure-status "exit $r"
printf 'check "unterminated\n' | "$HVGATE" shell >"$LAB_TMP/out" 2>&1
r=$?; [ "$r" = 2 ] && grep -q 'unterminated quote' "$LAB_TMP/out" && pass shell-bad-quote || fail shell-bad-quote "exit $r"

# Shell on a terminal: prompt, a command, exit. script(1) gives it a pty.
if command -v script >/dev/null; then
	( sleep 1; printf 'check conf/policies/demo.hvp\n'; sleep 1; printf 'exit\n' ) |
		HOME="$LAB_TMP" timeout 10 script -qec "$HVGATE shell" /dev/null >"$LAB_TMP/tty" 2>&1
	grep -q 'hvgate> ' "$LAB_TMP/tty" && grep -q 'ok: 6 rules' "$LAB_TMP/tty" && pass shell-tty ||
		fail shell-tty "$(tr -d '\r' < "$LAB_TMP/tty" | tail -5 | tr '\n' '|')"
	[ -s "$LAB_TMP/.hvgate_history" ] && pass shell-history-saved || fail shell-history-saved
else
	fail shell-tty "script(1) not installed"
fi
lab_done
