# expect_table FILE: probes every line of an expectation file (see
# conf/policies/demo.expect) in the lab3 lab, prints a table of what the
# policy says against what happened, and a PASS/FAIL line per probe.
# Returns the number of mismatches (0 = all as the policy says).
expect_table() {
	mism=0
	printf '%-7s %-5s %-14s %-5s %-9s %-9s  %s\n' FROM PROTO TO PORT POLICY SEEN WHY
	while read -r role kind addr port want why; do
		case "$role" in ''|'#'*) continue ;; esac
		if [ "$kind" = ping ]; then got=$(probe "$role" ping "$addr"); else got=$(probe "$role" "$kind" "$addr" "$port"); fi
		mark=ok; [ "$got" = "$want" ] || { mark=MISMATCH; mism=$((mism + 1)); }
		printf '%-7s %-5s %-14s %-5s %-9s %-9s  %s %s\n' "$role" "$kind" "$addr" "$port" "$want" "$got" "$why" "$([ $mark = ok ] || echo '<-- MISMATCH')"
		name=$(echo "$role-$kind-$addr-$port" | tr ':' '_')
		if [ "$got" = "$want" ]; then echo "PASS $name ($why)" >> "$LAB_TMP/verdicts"; else echo "FAIL $name: expected $want, saw $got ($why)" >> "$LAB_TMP/verdicts"; fi
	done < "$1"
	return $mism
}
