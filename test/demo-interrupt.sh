#!/usr/bin/env bash
# test/demo-interrupt.sh: Ctrl-C on `scripts/demo --interactive` stops all it
# started and removes its temporary directory.  Runs the demo as a terminal's
# foreground job would run (a process group of its own), waits until it says
# it is up, kills one replica (as a crash would), sends SIGINT to the whole
# group as the terminal does on Ctrl-C, and checks that the script ends, that
# its PostgreSQL (which pg_ctl puts in a session of its own, out of reach of
# the terminal's signal) and nginx no longer answer, that no process of it is
# left, and that the directory is gone.  Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0 failed=0 n=0
check() {	# check NAME EXIT-STATUS
	n=$((n + 1))
	if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok $n - $1"
	else failed=$((failed + 1)); echo "not ok $n - $1"; fi
}
log=$(mktemp)
set -m	# background jobs get process groups of their own
# A terminal's foreground job never starts with SIGINT ignored, but this test
# may (a job started with & by a shell without job control, or under nohup,
# passes an ignored SIGINT down, and bash cannot trap a signal ignored on
# entry): give the demo the default disposition, as the terminal would.
env --default-signal=INT,QUIT scripts/demo --interactive >"$log" 2>&1 </dev/null &
pgid=$!
set +m
up=1
for _ in $(seq 600); do
	grep -q '^up until Ctrl-C' "$log" && { up=0; break; }
	kill -0 "$pgid" 2>/dev/null || break
	sleep 0.5
done
check "scripts/demo --interactive comes up" $up
[ $up = 0 ] || sed 's/^/#   /' "$log" | tail -30
port=$(sed -nE 's/^PostgreSQL .* on port ([0-9]+)$/\1/p' "$log")
front=$(sed -nE 's|.*open http://127\.0\.0\.1:([0-9]+)/.*|\1|p' "$log")
dir=$(sed -nE 's/^\(Ctrl-C stops .* removes (.+)\)$/\1/p' "$log")

# a replica that died before the Ctrl-C (as one may): the script has reaped
# it, so a kill of its pid fails, which must not cut the cleanup short
r1=$(sed -nE 's/^replicas on ports ([0-9]+) and .*/\1/p' "$log")
r1_pid=$(pgrep -f "Chat.dll --urls http://127.0.0.1:$r1\$" | head -1)
[ -n "$r1_pid" ] && kill -KILL "$r1_pid" && sleep 1
kill -INT -- -"$pgid" 2>/dev/null
ended=1
for _ in $(seq 120); do
	kill -0 "$pgid" 2>/dev/null || { ended=0; break; }
	sleep 0.5
done
check "Ctrl-C ends the script" $ended
# a script that ignored the Ctrl-C must not hold up the test: stop it hard
[ $ended = 0 ] || kill -KILL -- -"$pgid" 2>/dev/null
wait "$pgid" 2>/dev/null
if [ $up = 0 ]; then
	! psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1
	check "its PostgreSQL is stopped (port $port)" $?
	! curl -s -o /dev/null "http://127.0.0.1:$front/"
	check "nginx in front of the replicas is stopped (port $front)" $?
	[ -n "$dir" ] && [ ! -e "$dir" ]
	check "its temporary directory is removed (${dir:-not printed})" $?
fi
pgrep -g "$pgid" >/dev/null
check "no process of the demo is left" $(( $? == 0 ))
# whatever the outcome, nothing of this run outlives the test
kill -KILL -- -"$pgid" 2>/dev/null
if [ -n "$dir" ] && [ -f "$dir/pg/data/postmaster.pid" ]; then
	. scripts/pg-env.sh
	sbp_pg_stop "$dir/pg"
fi
[ -n "$dir" ] && rm -rf "$dir"
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
