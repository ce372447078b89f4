#!/usr/bin/env bash
# bench/signalr.sh: the SignalR-level benchmark.  Two hub servers with the
# PostgreSQL backplane (signalr_bp), two with the Redis backplane
# (Microsoft.AspNetCore.SignalR.StackExchangeRedis), and one server without a
# backplane, in one run: 500 client connections spread over the servers, one
# sender broadcasting 128-byte messages through the hub at a rate that goes up
# until a system no longer keeps up, then back down.  p50/p95/p99/max latency
# from when each message was due to when each connection had it, and lost
# messages.  Writes bench/results/signalr.{tsv,md,png}.
#
# usage: bench/signalr.sh [seconds per rate]
#   (SBP_BENCH_RATES, SBP_BENCH_CONNECTIONS, SBP_BENCH_SYSTEMS="none redis postgres")
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rates=${SBP_BENCH_RATES:-25,50,100,150,200,300,400,600,800,1200,1600}
connections=${SBP_BENCH_CONNECTIONS:-500}
scripts/install-deps
. scripts/pg-env.sh
. scripts/dotnet-env.sh
make -s >/dev/null && make -s install >/dev/null
out=bench/results
mkdir -p "$out"
dir=$(mktemp -d); chmod 755 "$dir"
bin=$dir/bin
trap 'sbp_dotnet_unpack; rm -rf "$dir"' EXIT
# the benchmark takes the adapter from its NuGet package, packed for this run
sbp_dotnet_pack "$dir"
dotnet build -c Release -o "$bin" bench/signalr/SignalRBench.csproj >"$dir/build.log" 2>&1 || {
	cat "$dir/build.log"; exit 1; }

pids=()
redis_pid=
cleanup() {
	set +e   # a kill of a server that has exited must not end the cleanup
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
	sbp_pg_stop "$dir/pg"
	sbp_dotnet_unpack
	rm -rf "$dir"
}
trap cleanup EXIT

sbp_pg_start "$dir/pg" "max_connections = 200"
psql -X -q -d postgres -c "CREATE EXTENSION signalr_bp"
pg="Host=$dir/pg;Port=$PGPORT;Username=postgres;Database=postgres"
sbp_redis_start "$dir"
redis_port=$SBP_REDIS_PORT redis_pid=$SBP_REDIS_PID

# serve BACKPLANE TARGET N -> starts N hub servers, sets $urls
serve() {
	local backplane=$1 target=$2 n=$3 port
	urls=
	for i in $(seq "$n"); do
		port=$(sbp_free_port)
		"$bin/SignalRBench" serve --port "$port" --backplane "$backplane" --target "$target" \
			--server "bench-$i" >>"$dir/servers.log" 2>&1 &
		pids+=($!)
		for _ in $(seq 100); do
			curl -s -o /dev/null "http://127.0.0.1:$port/" && break
			sleep 0.1
		done
		urls+="${urls:+,}http://127.0.0.1:$port"
	done
}
stop_servers() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	pids=()
}

tsv=$out/signalr.tsv
printf 'system\tdirection\trate\tsent\texpected\treceived\tlost\tp50_ms\tp95_ms\tp99_ms\tmax_ms\n' >"$tsv"
for system in ${SBP_BENCH_SYSTEMS:-none redis postgres}; do
	case $system in
		none) serve none "" 1 ;;
		redis) serve redis "127.0.0.1:$redis_port" 2 ;;
		postgres) serve postgres "$pg" 2 ;;
		postgres-queued) serve postgres-queued "$pg" 2 ;;
	esac
	"$bin/SignalRBench" run --urls "$urls" --connections "$connections" --rates "$rates" \
		--seconds "$secs" --fail-ms 1000 | sed "s/^/$system\t/" | tee -a "$tsv"
	stop_servers
done
python3 bench/signalr_report.py "$tsv" "$out" "$secs" "$connections"
echo "wrote $out/signalr.md and $out/signalr.png"
