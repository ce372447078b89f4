#!/usr/bin/env bash
# bench/broadcast.sh: what a broadcast costs as the number of hub servers
# grows.  send_all (and send_group to a group spread over every server)
# throughput with 2, 8, 32 and 128 registered servers of one application:
# pgbench, 4 clients, one send of a 128-byte payload per transaction
# (durable application stream, synchronous_commit on), on a private
# PostgreSQL.  Each server holds 10 connections, all in the group.
# Server counts alternate within each repetition; a cell is the median.
# Target: at 128 servers at least 0.8x the rate at 2 servers.
# Writes bench/results/broadcast.{tsv,md,png} (or to $SBP_BENCH_OUT).
#
# usage: bench/broadcast.sh [seconds per run] [repetitions]     (default 10 3)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
reps=${2:-3}
counts="2 8 32 128"
scripts/install-deps
. scripts/pg-env.sh
make -s >/dev/null && make -s install >/dev/null
out=${SBP_BENCH_OUT:-bench/results}	# a smoke run can write elsewhere
mkdir -p "$out"
dir=$(mktemp -d); chmod 755 "$dir"
trap 'sbp_pg_stop "$dir/pg"; rm -rf "$dir"' EXIT
sbp_pg_start "$dir/pg" "shared_buffers = '512MB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
q -c "CREATE EXTENSION signalr_bp"
payload="'\\x$(printf '%0256d' 0 | tr 0 a)'::bytea"	# 128 bytes
for n in $counts; do
	q -c "SELECT signalr_bp.create_application('b$n', server_ttl => '1 day')" >/dev/null
	q -c "SELECT count((signalr_bp.register_server('b$n', 's' || i)).stream) FROM generate_series(1, $n) i" >/dev/null
	q -c "SELECT count(signalr_bp.connect_many('b$n', 's' || i, 'Hub', ARRAY(SELECT 's' || i || '-c' || j FROM generate_series(1, 10) j)))
		   FROM generate_series(1, $n) i" >/dev/null
	q -c "SELECT signalr_bp.add_to_groups('b$n', 'Hub', array_agg(connection_id), array_fill('room'::text, ARRAY[count(*)::int]))
		   FROM signalr_bp.connection WHERE app_id = (SELECT id FROM signalr_bp.application WHERE name = 'b$n')" >/dev/null
	echo "SELECT signalr_bp.send_all('b$n', 'Hub', $payload);" >"$dir/all_$n.sql"
	echo "SELECT signalr_bp.send_group('b$n', 'Hub', 'room', $payload);" >"$dir/group_$n.sql"
done
q -c "CHECKPOINT"

tps() {	# script -> transactions per second
	{ pgbench -n -f "$1" -c 4 -j 2 -T "$secs" postgres 2>>"$dir/pgbench.log" || echo "pgbench $1 failed" >&2; } |
		sed -nE 's/^tps = ([0-9.]+).*/\1/p'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A runs
for r in $(seq "$reps"); do
	for kind in all group; do
		for n in $counts; do
			runs[$kind,$n]="${runs[$kind,$n]:-} $(tps "$dir/${kind}_$n.sql")"
		done
	done
done

tsv=$out/broadcast.tsv
printf 'servers\tsend_all\tsend_group\n' >"$tsv"
for n in $counts; do
	printf '%s\t%s\t%s\n' "$n" "$(median <<<"${runs[all,$n]}")" "$(median <<<"${runs[group,$n]}")" >>"$tsv"
done
base_all=$(awk -F'\t' 'NR == 2 {print $2}' "$tsv")
base_group=$(awk -F'\t' 'NR == 2 {print $3}' "$tsv")
{
	echo "# signalr_bp: broadcast cost against the number of hub servers"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1), PostgreSQL $(q -c 'SHOW server_version' | cut -d' ' -f1); command: \`bench/broadcast.sh $secs $reps\`"
	echo
	echo "pgbench, 4 clients, one send of a 128-byte payload per transaction (durable application stream,"
	echo "synchronous_commit on); every server holds 10 connections, all in the group; median of $reps runs of ${secs} s."
	echo
	echo "| registered servers | send_all per second | vs 2 servers | send_group per second (group on every server) | vs 2 servers |"
	echo "|---:|---:|---:|---:|---:|"
	awk -F'\t' -v a="$base_all" -v g="$base_group" 'NR > 1 {
		printf "| %d | %.0f | %.2fx | %.0f | %.2fx |\n", $1, $2, $2 / a, $3, $3 / g }' "$tsv"
	echo
	awk -F'\t' -v a="$base_all" 'NR > 1 {last = $2} END {
		printf "Target: send_all at 128 servers >= 0.8x of 2 servers: %.2fx, %s.\n", last / a, (last / a >= 0.8) ? "met" : "NOT met" }' "$tsv"
} >"$out/broadcast.md"
gnuplot <<PLOT
set terminal pngcairo size 800,450 font ",10" noenhanced
set output "$out/broadcast.png"
set title "signalr_bp: sends per second against registered hub servers (pgbench, 4 clients, 128 B)"
set xlabel "registered hub servers"
set ylabel "sends per second"
set logscale x 2
set xtics (2, 8, 32, 128)
set xrange [1.6:160]
set yrange [0:*]
set key bottom left
set grid
plot "$tsv" using 1:2 skip 1 with linespoints lw 2 title "send_all", \
     "$tsv" using 1:3 skip 1 with linespoints lw 2 title "send_group (group on every server)"
PLOT
cat "$out/broadcast.md"
grep -iE 'error|abort' "$dir/pgbench.log" | sort | uniq -c | head -5 >&2 || true
