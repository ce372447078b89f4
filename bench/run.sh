#!/usr/bin/env bash
# bench/run.sh: Redis pub/sub vs naive NOTIFY vs signalr_bp (durable, fast),
# one publish delivered to 4 consumers, 200-byte messages, in one run on a
# private PostgreSQL and a private redis-server started here.
#
# For each system: the maximum delivered rate (closed loop, median of
# $SBP_BENCH_REPS runs), then p50/p99 end-to-end latency at 25/50/90% of its
# own maximum and at 50% of Redis's maximum (open loop: messages are due at a
# fixed rate and latency counts from when each was due).  Last, signalr_bp
# durable again with a local synchronous standby.
# Writes bench/results/pubsub.{tsv,md,png}.
#
# usage: bench/run.sh [seconds per run]     (SBP_BENCH_REPS=3, SBP_BENCH_PRODUCERS=8)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
reps=${SBP_BENCH_REPS:-3}
producers=${SBP_BENCH_PRODUCERS:-8}
redis_depth=16		# PUBLISH pipelined 16 deep, as a multiplexing client does
stream_batch=256	# messages per publish_batch call at most (a coalescing client)
scripts/install-deps
. scripts/pg-env.sh
make -s >/dev/null && make -s install >/dev/null
make -s -C bench pubsub >/dev/null
out=bench/results
mkdir -p "$out"

dir=$(mktemp -d); chmod 755 "$dir"
redis_pid=
cleanup() {
	set +e   # a kill of a process that has exited must not end the cleanup
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
	[ -d "$dir/standby" ] && sbp_pg_stop "$dir/standby"
	sbp_pg_stop "$dir/primary"
	rm -rf "$dir"
}
trap cleanup EXIT
sbp_pg_start "$dir/primary" "shared_buffers = '1GB'" "max_wal_size = '8GB'" \
	"checkpoint_timeout = '30min'" "wal_level = replica" "max_wal_senders = 4"
primary_port=$PGPORT
psql -X -q -d postgres -c "CREATE EXTENSION signalr_bp"
pg="host=$dir/primary port=$primary_port user=postgres dbname=postgres"
sbp_redis_start "$dir"
redis_port=$SBP_REDIS_PORT redis_pid=$SBP_REDIS_PID

tsv=$out/pubsub.tsv
printf 'setup\tsystem\tload\toffered\tdelivered\tp50_us\tp99_us\tmax_us\tlost\tdup\n' >"$tsv"

# run SYSTEM RATE -> the program's line (system offered delivered p50 p99 max lost dup)
run() {
	local sys=$1 rate=$2 target=$pg batch=$stream_batch
	[ "$sys" = redis ] && { target=127.0.0.1:$redis_port; batch=$redis_depth; }
	[ "$sys" = notify ] && batch=1
	bench/pubsub "$sys" "$target" -p "$producers" -c 4 -t "$secs" -w 1 -b "$batch" -r "$rate" 2>>"$dir/bench.log"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A max
for sys in redis notify durable fast; do
	lines=$(for _ in $(seq "$reps"); do run "$sys" 0; done)
	max[$sys]=$(cut -f3 <<<"$lines" | median)
	# keep the median run's line
	line=$(awk -v m="${max[$sys]}" -F'\t' '$3 == m {print; exit}' <<<"$lines")
	printf 'local\t%s\tmax\t%s\n' "$sys" "$(cut -f2- <<<"$line")" >>"$tsv"
	echo "$sys: max ${max[$sys]} msgs/s per consumer"
done
for sys in redis notify durable fast; do
	for pct in 25 50 90; do
		rate=$(( ${max[$sys]} * pct / 100 ))
		printf 'local\t%s\t%s%% own max\t%s\n' "$sys" "$pct" "$(run "$sys" "$rate" | cut -f2-)" >>"$tsv"
	done
	[ "$sys" = redis ] && continue
	rate=$(( ${max[redis]} / 2 ))
	printf 'local\t%s\t50%% Redis max\t%s\n' "$sys" "$(run "$sys" "$rate" | cut -f2-)" >>"$tsv"
done
echo "latency runs done"

# a local synchronous standby: every durable commit waits for its flush there
sbp_pg_ctl "$dir/primary" -w status >/dev/null
mkdir -p "$dir/standby"; chmod 755 "$dir/standby"
runas=(); [ "$(id -u)" = 0 ] && { chown postgres "$dir/standby"; runas=(runuser -u postgres --); }
standby_port=$(sbp_free_port)
"${runas[@]}" "$SBP_PGBIN/pg_basebackup" -h "$dir/primary" -p "$primary_port" -U postgres -D "$dir/standby/data" -R -X stream -c fast >/dev/null
{
	echo "port = $standby_port"
	echo "unix_socket_directories = '$dir/standby'"
	echo "cluster_name = 'standby'"
} >>"$dir/standby/data/postgresql.conf"
sbp_pg_ctl "$dir/standby" -w start >/dev/null
psql -X -q -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = 'standby'" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
	[ "$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")" = 1 ] && break
	sleep 0.1
done
for sys in notify durable; do
	lines=$(for _ in $(seq "$reps"); do run "$sys" 0; done)
	m=$(cut -f3 <<<"$lines" | median)
	line=$(awk -v m="$m" -F'\t' '$3 == m {print; exit}' <<<"$lines")
	printf 'sync standby\t%s\tmax\t%s\n' "$sys" "$(cut -f2- <<<"$line")" >>"$tsv"
	echo "$sys with a synchronous standby: max $m"
done

bench/report.py "$tsv" "$out" "$secs" "$producers" "$redis_depth" "$stream_batch" "$reps"
echo "wrote $out/pubsub.md and $out/pubsub.png"
