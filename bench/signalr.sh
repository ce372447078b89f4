#!/usr/bin/env bash
# bench/signalr.sh: the SignalR-level benchmark, in the pattern users write.
# Hub servers in separate processes (bench/signalr/) behind the Redis backplane
# (Microsoft.AspNetCore.SignalR.StackExchangeRedis, a local redis-server) and
# behind signalr_bp (AddPostgresBackplane(), a local PostgreSQL) with default
# options and with every other SendCompletion mode, in one run.  WebSocket
# connections (skipNegotiation) spread over the servers, each in one group of
# 20; one of them invokes a hub method that sends, awaiting each invocation:
# Clients.All.SendAsync (broadcast) and Clients.Group(g).SendAsync (group
# send, round robin over the groups), 128-byte payloads.  For each topology,
# system and pattern a rate sweep: up until the system no longer keeps up,
# then a few steps down.  Per rate: p50/p99/max latency from when a message
# was due to when each addressed connection had it, and lost messages; the
# knee is the highest rate with p99 < 100 ms and nothing lost.
# Writes bench/results/signalr.{tsv,md,png}.
#
# usage: bench/signalr.sh [seconds per rate]     (default 10)
#        bench/signalr.sh --quick                smoke run: every system and
#            pattern once at a low rate; "ok"/"not ok" per pair, then
#            "N passed, N failed"; writes nothing into bench/results
# environment:
#   SBP_BENCH_TOPOLOGIES   connections x servers   "200x2 200x8 1000x2 1000x8"
#   SBP_BENCH_SYSTEMS      redis, postgres (the adapter's defaults), postgres-<mode>
#                          default: redis postgres, and postgres-<mode> for every other mode
#   SBP_BENCH_PATTERNS     "broadcast group"
#   SBP_BENCH_RATES_BROADCAST, SBP_BENCH_RATES_GROUP   comma-separated ladders
#                          (default broadcast: 10,000/connections x 1,2,4,6,8,12,...;
#                           group: 50 x the same)
#   SBP_BENCH_GROUP_SIZE (20), SBP_BENCH_DOWN (3 steps down), SBP_BENCH_OUT (bench/results)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
secs=${1:-10}
topologies=${SBP_BENCH_TOPOLOGIES:-200x2 200x8 1000x2 1000x8}
patterns=${SBP_BENCH_PATTERNS:-broadcast group}
group_size=${SBP_BENCH_GROUP_SIZE:-20}
down=${SBP_BENCH_DOWN:-3}
out=${SBP_BENCH_OUT:-bench/results}
ladder="1 2 4 6 8 12 16 24 32 48 64 96 128"
# the sweep goes on while p99 <= fail_ms and nothing is lost; the knee is judged at 100 ms
run_opts=(--seconds "$secs" --down "$down" --fail-ms 1000 --warmup 3)
if [ $quick = 1 ]; then
	# no timed assertion: only that every message reaches every addressed connection
	topologies=${SBP_BENCH_TOPOLOGIES:-20x2}
	group_size=${SBP_BENCH_GROUP_SIZE:-5}
	run_opts=(--seconds 1 --down 0 --fail-ms 1e9 --lag-ms 1e9 --warmup 0)
	SBP_BENCH_RATES_BROADCAST=${SBP_BENCH_RATES_BROADCAST:-20}
	SBP_BENCH_RATES_GROUP=${SBP_BENCH_RATES_GROUP:-20}
fi

scripts/install-deps >/dev/null
. scripts/pg-env.sh
. scripts/dotnet-env.sh
make -s >/dev/null && make -s install >/dev/null
dir=$(mktemp -d); chmod 755 "$dir"
[ $quick = 1 ] && out=$dir/results
mkdir -p "$out"
bin=$dir/bin
pids=()
redis_pid=
cleanup() {
	set +e   # a kill of a server that has exited must not end the cleanup
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
	sbp_pg_stop "$dir/pg"
	sbp_dotnet_unpack
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# the benchmark takes the adapter from its NuGet package, packed for this run
sbp_dotnet_pack "$dir"
dotnet build -c Release -o "$bin" bench/signalr/SignalRBench.csproj >"$dir/build.log" 2>&1 || {
	cat "$dir/build.log"; exit 1; }
read -r -a modes <<<"$("$bin/SignalRBench" modes)"	# the default first
systems=${SBP_BENCH_SYSTEMS:-redis postgres $(for m in "${modes[@]:1}"; do printf 'postgres-%s ' "${m,,}"; done)}

sbp_pg_start "$dir/pg" "max_connections = 400" "shared_buffers = '256MB'" \
	"max_wal_size = '4GB'" "checkpoint_timeout = '30min'"
psql -X -q -d postgres -c "CREATE EXTENSION signalr_bp"
pg="Host=$dir/pg;Port=$PGPORT;Username=postgres;Database=postgres"
pg_pid=$(head -1 "$dir/pg/data/postmaster.pid")
sbp_redis_start "$dir" >/dev/null
redis_port=$SBP_REDIS_PORT redis_pid=$SBP_REDIS_PID

# serve SYSTEM N APPLICATION -> N hub servers started; sets $urls
serve() {
	local system=$1 n=$2 app=$3 port i opts ready
	urls=
	# the application exists before its servers start, as a DBA would create it
	[ "$system" = redis ] || psql -X -q -d postgres -c "SELECT signalr_bp.create_application('$app')" >/dev/null
	for i in $(seq "$n"); do
		case $system in
			redis) opts=(--backplane redis --target "127.0.0.1:$redis_port") ;;
			postgres) opts=(--backplane postgres --target "$pg" --mode default) ;;
			postgres-*) opts=(--backplane postgres --target "$pg" --mode "${system#postgres-}") ;;
			*) echo "unknown system $system" >&2; return 1 ;;
		esac
		port=$(sbp_free_port)
		"$bin/SignalRBench" serve --port "$port" --application "$app" --server "$app-$i" "${opts[@]}" \
			>>"$dir/servers-$app.log" 2>&1 &
		pids+=($!)
		urls+="${urls:+,}http://127.0.0.1:$port"
	done
	for url in ${urls//,/ }; do
		ready=0
		for _ in $(seq 600); do
			curl -s -o /dev/null "$url/" && { ready=1; break; }
			sleep 0.1
		done
		[ $ready = 1 ] || { echo "hub server $url did not start"; tail -50 "$dir/servers-$app.log"; return 1; }
	done
}
stop_servers() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
rates() {	# rates PATTERN CONNECTIONS -> the ladder
	local base
	case $1 in
		broadcast) [ -n "${SBP_BENCH_RATES_BROADCAST:-}" ] && { echo "$SBP_BENCH_RATES_BROADCAST"; return; }
			base=$((10000 / $2)); [ "$base" -ge 1 ] || base=1 ;;
		group) [ -n "${SBP_BENCH_RATES_GROUP:-}" ] && { echo "$SBP_BENCH_RATES_GROUP"; return; }
			base=50 ;;
	esac
	local r list=
	for r in $ladder; do list+="${list:+,}$((base * r))"; done
	echo "$list"
}

tsv=$out/signalr.tsv
printf 'connections\tservers\tsystem\tpattern\tdirection\trate\tsent\texpected\treceived\tlost\tduplicates\tp50_ms\tp99_ms\tmax_ms\tinvoke_p50_ms\tinvoke_p99_ms\tsend_rate\tcpu_client\tcpu_servers\tcpu_store\tcpu_other\n' >"$tsv"
started=$(date +%s)
for topology in $topologies; do
	conns=${topology%x*} n=${topology#*x}
	for system in $systems; do
		echo "== $conns connections, $n servers: $system" >&2
		app=b-$system-$topology
		serve "$system" "$n" "$app"
		server_pids=$(IFS=,; echo "${pids[*]}")
		store_pid=$pg_pid
		[ "$system" = redis ] && store_pid=$redis_pid
		"$bin/SignalRBench" run --urls "$urls" --connections "$conns" --group-size "$group_size" \
			--patterns "${patterns// /,}" \
			--rates-broadcast "$(rates broadcast "$conns")" --rates-group "$(rates group "$conns")" \
			"${run_opts[@]}" --server-pids "$server_pids" --store-pid "$store_pid" \
			| sed -u "s/^/$conns\t$n\t$system\t/" | tee -a "$tsv" >&2 || {
				echo "the run of $system failed; its hub servers' log ends:"; tail -30 "$dir/servers-$app.log"; }
		stop_servers
		psql -X -q -d postgres -c CHECKPOINT
	done
done
elapsed=$(( $(date +%s) - started ))

if [ $quick = 1 ]; then
	# every message of every step reached every connection it addressed, once
	passed=0 failed=0
	for topology in $topologies; do
		for system in $systems; do
			for pattern in $patterns; do
				line=$(awk -F'\t' -v c="${topology%x*}" -v n="${topology#*x}" -v s="$system" -v p="$pattern" \
					'$1 == c && $2 == n && $3 == s && $4 == p' "$tsv")
				if [ -n "$line" ] && awk -F'\t' '{ if (!($7 > 0 && $8 == $9 && $10 == 0 && $11 == 0)) bad = 1 } END { exit bad }' <<<"$line"; then
					echo "ok - $system $pattern, $topology: $(awk -F'\t' '{ printf "%s messages, %s deliveries", $7, $9 }' <<<"$line")"
					passed=$((passed + 1))
				else
					echo "not ok - $system $pattern, $topology: ${line:-no result}"
					failed=$((failed + 1))
				fi
			done
		done
	done
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
fi
python3 bench/signalr_report.py "$tsv" "$out" --seconds "$secs" --group-size "$group_size" \
	--default-mode "${modes[0]}" --command "bench/signalr.sh${1:+ $1}" --elapsed "$elapsed"
echo "wrote $out/signalr.md and $out/signalr.png"
