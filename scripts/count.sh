# scripts/count.sh: sourced by scripts/test and scripts/test-major.  Each test
# layer's result is printed as "== layer: N passed, N failed (Ns)", N s being
# the layer's wall time, and added to $passed and $failed.
passed=${passed:-0} failed=${failed:-0}
sbp_layer_t0=$SECONDS

# layer TITLE: print the layer's heading and start its clock
layer() {
	echo "== $*"
	sbp_layer_t0=$SECONDS
}

# count LAYER PASSED FAILED: the time since the last layer or count is the
# layer's own (layers that run in sequence; the next one's clock starts here)
count() {
	echo "== $1: $2 passed, $3 failed ($((SECONDS - sbp_layer_t0))s)"
	passed=$((passed + $2)); failed=$((failed + $3))
	sbp_layer_t0=$SECONDS
}

# count_regress LOG LAYER [STATUS]: pg_regress / pg_isolation_regress output in
# both formats: up to 15 "test x ... ok" / "... FAILED", from 16 on TAP-style
# "ok 1 - x" / "not ok 4 - x" ("+" instead of "-" inside a parallel group).
# A non-zero STATUS (make's) with no failed test counts as one failure, so a
# run that dies before its first test is not 0 passed, 0 failed.
count_regress() {
	local log=$1 layer=$2 status=${3:-0} ok bad
	ok=$(grep -cE '\.\.\. +ok|^ok +[0-9]+ +[-+] ' "$log")
	bad=$(grep -cE '\.\.\. +FAILED|failed \(ignored\)|^not ok +[0-9]+ +[-+] ' "$log")
	[ "$status" != 0 ] && [ "$bad" = 0 ] && bad=1
	[ "$ok" = 0 ] && [ "$bad" = 0 ] && bad=1
	count "$layer" "$ok" "$bad"
	[ "$bad" = 0 ] || { cat regression.diffs output_iso/regression.diffs 2>/dev/null | head -200; }
}

# count_prove LOG LAYER: the summary of prove or pg_prove
count_prove() {
	local log=$1 total bad
	total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+).*/\1/p' "$log")
	bad=$(sed -nE 's/.*Failed ([0-9]+)\/[0-9]+ subtests.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	grep -q '^Result: PASS' "$log" || bad=$(( ${bad:-0} > 0 ? ${bad:-0} : 1 ))
	count "$2" "$(( ${total:-0} - ${bad:-0} ))" "${bad:-0}"
}

# count_layers LOG NAME: add up the "== layer: N passed, N failed" lines of a
# script that reports layers itself (scripts/test-major); none is one failure
count_layers() {
	local line
	line=$(sed -nE 's/^== [^ ]+: ([0-9]+) passed, ([0-9]+) failed( \([0-9]+s\))?$/\1 \2/p' "$1" |
		awk '{p+=$1; f+=$2; n++} END {if (n) print p, f}')
	[ -n "$line" ] || { count "$2" 0 1; return; }
	passed=$((passed + ${line% *})); failed=$((failed + ${line#* }))
}

# count_summary LOG LAYER: a program that ends with "N passed, N failed"
# (test/hostile, test/fuzz); no such line is one failure
count_summary() {
	local line
	line=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$1" | tail -1)
	[ -n "$line" ] || { count "$2" 0 1; return; }
	count "$2" "${line% *}" "${line#* }"
}
