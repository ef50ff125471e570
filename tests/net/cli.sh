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

# Limits (docs/policy-language.md): refused with one clear error within a few
# seconds, never a crash or a hang. Times in ms from date +%s%N.
ms() { echo $(( $(date +%s%N) / 1000000 )); }
awk 'BEGIN { print "define a1 = 10.0.0.1"; for (i = 2; i <= 100000; i++) printf "define a%d = $a%d\n", i, i - 1; print "pass from $a100000" }' > "$LAB_TMP/chain.hvp"
t0=$(ms); r=$(code timeout 30 "$HVGATE" check "$LAB_TMP/chain.hvp"); t=$(( $(ms) - t0 ))
[ "$r" = 1 ] && [ "$t" -lt 5000 ] && grep -q 'error: defines refer to each other more than 64 deep' "$LAB_TMP/err" &&
	pass check-define-chain-100k || fail check-define-chain-100k "exit $r in $t ms: $(head -2 "$LAB_TMP/err")"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "tenant t%d {\n", i }' > "$LAB_TMP/nest.hvp"
t0=$(ms); r=$(code timeout 30 "$HVGATE" check "$LAB_TMP/nest.hvp"); t=$(( $(ms) - t0 ))
[ "$r" = 1 ] && [ "$t" -lt 5000 ] && grep -q ':33:1: error: blocks nested deeper than 32 levels' "$LAB_TMP/err" &&
	pass check-nesting-100k || fail check-nesting-100k "exit $r in $t ms: $(tail -2 "$LAB_TMP/err")"
mkfifo "$LAB_TMP/pipe.hvp"; printf 'include "pipe.hvp"\n' > "$LAB_TMP/fifo.hvp"
r=$(code timeout 10 "$HVGATE" check "$LAB_TMP/fifo.hvp")
[ "$r" = 1 ] && grep -q "fifo.hvp:1:9: error: cannot read included file '.*pipe.hvp': not a regular file" "$LAB_TMP/err" &&
	pass check-fifo-include || fail check-fifo-include "exit $r: $(head -2 "$LAB_TMP/err")"
{ printf 'pass '; head -c 10485760 /dev/zero | tr '\0' x; echo; } > "$LAB_TMP/token.hvp"
t0=$(ms); r=$(code timeout 30 "$HVGATE" check "$LAB_TMP/token.hvp"); t=$(( $(ms) - t0 ))
sz=$(wc -c < "$LAB_TMP/err")
[ "$r" = 1 ] && [ "$t" -lt 3000 ] && [ "$sz" -lt 2048 ] && grep -q ':1:6: error: word longer than 16384 bytes' "$LAB_TMP/err" &&
	pass check-huge-token || fail check-huge-token "exit $r in $t ms, $sz bytes: $(head -c 300 "$LAB_TMP/err")"

r=$(code "$HVGATE" check "$LAB_TMP/does-not-exist.hvp"); [ "$r" = 2 ] && pass check-missing-exit-2 || fail check-missing-exit-2 "exit $r"
r=$(code "$HVGATE" check); [ "$r" = 2 ] && pass check-usage-exit-2 || fail check-usage-exit-2 "exit $r"
r=$(code "$HVGATE" frobnicate); [ "$r" = 2 ] && pass unknown-verb-exit-2 || fail unknown-verb-exit-2 "exit $r"
for v in check compile apply vpn shell status show commit diff explain test replay; do
	r=$(code "$HVGATE" $v --help); [ "$r" = 0 ] && [ -s "$LAB_TMP/out" ] && pass "help-$v" || fail "help-$v" "exit $r"
done

# explain: 1 for an invalid policy (check's diagnostics), 2 with the column of a malformed packet
r=$(code "$HVGATE" explain "$LAB_TMP/bad.hvp" 'tcp 10.0.0.5:1 -> 10.1.0.9:80 in lan0')
[ "$r" = 1 ] && grep -q 'error:' "$LAB_TMP/err" && pass explain-invalid-exit-1 || fail explain-invalid-exit-1 "exit $r"
r=$(code "$HVGATE" explain conf/policies/demo.hvp 'tcp 10.0.0.5:1 => 10.1.0.9:80 in lan0')
[ "$r" = 2 ] && grep -q '^packet:16: error' "$LAB_TMP/err" && pass explain-packet-column || fail explain-packet-column "exit $r: $(head -1 "$LAB_TMP/err")"

# explain, test and replay evaluate the checked policy without compiling it,
# but must refuse what check refuses, also what only the lowering finds
# (overlapping zone interfaces, a forwarded range to another range), with
# check's diagnostics
printf 'zone a { interface "eth*" }\nzone b { interface "eth0" }\ndefault pass\n' > "$LAB_TMP/overlap.hvp"
printf 'zone lan { interface "lan0" }\nzone wan { interface "wan0" }\nnat forward wan tcp port 8000-8010 to 10.0.0.5 port 9000-9010\ndefault pass\n' > "$LAB_TMP/range.hvp"
for f in overlap range; do
	code "$HVGATE" check "$LAB_TMP/$f.hvp" > /dev/null; grep 'error' "$LAB_TMP/err" > "$LAB_TMP/want"
	r=$(code "$HVGATE" explain "$LAB_TMP/$f.hvp" 'tcp 10.0.0.5:1 -> 10.1.0.9:80 in eth0')
	[ "$r" = 1 ] && [ -s "$LAB_TMP/want" ] && grep 'error' "$LAB_TMP/err" | cmp -s - "$LAB_TMP/want" &&
		pass "explain-lowering-error-$f" || fail "explain-lowering-error-$f" "exit $r: $(head -2 "$LAB_TMP/err")"
done
# A rule written over several lines (a comment among them) is quoted whole, on one line.
printf 'zone lan { interface "lan0" }\nzone wan { interface "wan0" }\npass from lan\n  to wan   # mail\n  service tcp port 25\n' > "$LAB_TMP/multi.hvp"
r=$(code "$HVGATE" explain "$LAB_TMP/multi.hvp" 'tcp 10.0.0.5:1 -> 10.1.0.9:25 in lan0 out wan0')
[ "$r" = 0 ] && grep -q '^      pass from lan to wan service tcp port 25$' "$LAB_TMP/out" &&
	grep -q "^verdict: pass by $LAB_TMP/multi.hvp:3 (pass from lan to wan service tcp port 25)" "$LAB_TMP/out" &&
	pass explain-multiline-rule || fail explain-multiline-rule "exit $r: $(tail -4 "$LAB_TMP/out" | tr '\n' '|')"

r=$(code "$HVGATE" compile conf/policies/demo.hvp --emit nft)
[ "$r" = 0 ] && grep -q '^table inet hvgate {' "$LAB_TMP/out" && pass compile-emits-table || fail compile-emits-table "exit $r"
# The kernel rules of demo.hvp:16 carry its kernel id (FILE:HASH, no line:
# a rule added above must not rename it), the one explain names.
kid=$("$HVGATE" explain conf/policies/demo.hvp 'tcp 10.0.0.5:1000 -> 10.1.0.9:23 in lan0 out dmz0' --json |
	python3 -c 'import json, sys; r = json.load(sys.stdin)["rule"]; print(r["kernel_id"] if r["line"] == 16 else "")')
case "$kid" in
conf/policies/demo.hvp:[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])
	grep -q "comment \"$kid\"" "$LAB_TMP/out" && ! grep -q 'comment "conf/policies/demo.hvp:[0-9]*:' "$LAB_TMP/out" &&
		pass compile-rule-ids || fail compile-rule-ids "no comment \"$kid\", or a comment with a line" ;;
*) fail compile-rule-ids "explain --json gave kernel_id '$kid'" ;;
esac

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
