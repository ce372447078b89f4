#!/usr/bin/env bash
# bench/registry_stats.sh: registry and send timings right after a bulk load
# that no ANALYZE has seen, against the same after ANALYZE.  200,000
# connections registered with connect_many, 5,000 one-member groups and
# 5,000 pending client results; autovacuum is off for the registry tables
# until the un-analyzed round is done.  Each cell is a server-side average
# over many calls in one transaction, rolled back (no client round trips).
# Target: un-analyzed within 2x of analyzed for every operation.
# (sql/registry_plans.sql asserts the plans themselves: index scans only.)
# Writes bench/results/registry_stats.md (or to $SBP_BENCH_OUT).
#
# usage: bench/registry_stats.sh [calls per measure]     (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-2000}
scripts/install-deps
. scripts/pg-env.sh
make -s >/dev/null && make -s install >/dev/null
out=${SBP_BENCH_OUT:-bench/results}
mkdir -p "$out"
dir=$(mktemp -d); chmod 755 "$dir"
trap 'sbp_pg_stop "$dir"; rm -rf "$dir"' EXIT
sbp_pg_start "$dir" "shared_buffers = '512MB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
q -c "CREATE EXTENSION signalr_bp"
for t in connection group_member invocation; do
	q -c "ALTER TABLE signalr_bp.$t SET (autovacuum_enabled = false)"
done
q -c "SELECT signalr_bp.create_application('stats', server_ttl => '1 day')" >/dev/null
q -c "SELECT count((signalr_bp.register_server('stats', s)).stream) FROM unnest('{s1,s2}'::text[]) s" >/dev/null
load_start=$(date +%s.%N)
q -c "SELECT signalr_bp.connect_many('stats', 's1', 'Hub', array_agg('c' || i), array_agg('u' || (i / 2))) FROM generate_series(1, 200000) i" >/dev/null
load_s=$(echo "$(date +%s.%N) - $load_start" | bc)
q -c "SELECT signalr_bp.add_to_groups('stats', 'Hub', array_agg('c' || i), array_agg('g' || i), 's1') FROM generate_series(1, 5000) i" >/dev/null
q -c "SELECT count(signalr_bp.invoke('stats', 'Hub', 's2', 'c' || i, 'pending-' || i, 'x')) FROM generate_series(1, 5000) i" >/dev/null

# avg_ms CALLS EXPRESSION-USING-i -> milliseconds per call, in one rolled-back transaction
avg_ms() {
	q -c "BEGIN" -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
			FOR i IN 1..$1 LOOP PERFORM $2; END LOOP;
			RAISE NOTICE 'avg %', round((extract(epoch FROM clock_timestamp() - t0) * 1000 / $1)::numeric, 4);
		END \$\$" -c "ROLLBACK" 2>&1 | sed -nE 's/.*avg ([0-9.]+).*/\1/p'
}
# name|calls|expression
measures=(
	"connect + disconnect|$calls|signalr_bp.connect('stats', 's2', 'Hub', 'n' || i, 'u' || i), signalr_bp.disconnect('stats', 'n' || i)"
	"connect_many of 100 (a rebuild)|$((calls / 100 + 1))|signalr_bp.connect_many('stats', 's2', 'Hub', ARRAY(SELECT 'm' || i || '-' || j FROM generate_series(1, 100) j))"
	"add_to_group + remove_from_group, by the holder|$calls|signalr_bp.add_to_group('stats', 'Hub', 'c' || (i * 7), 'room', 's1'), signalr_bp.remove_from_group('stats', 'Hub', 'c' || (i * 7), 'room', 's1')"
	"add_to_group + remove_from_group, by another server (joined/left appended)|$calls|signalr_bp.add_to_group('stats', 'Hub', 'c' || (i * 7), 'room', 's2'), signalr_bp.remove_from_group('stats', 'Hub', 'c' || (i * 7), 'room', 's2')"
	"remove_from_groups of 5,000 one-member groups + add_to_groups of them again|4|signalr_bp.remove_from_groups('stats', 'Hub', ARRAY(SELECT 'c' || k FROM generate_series(1, 5000) k), ARRAY(SELECT 'g' || k FROM generate_series(1, 5000) k), 's1'), signalr_bp.add_to_groups('stats', 'Hub', ARRAY(SELECT 'c' || k FROM generate_series(1, 5000) k), ARRAY(SELECT 'g' || k FROM generate_series(1, 5000) k), 's1')"
	"invoke + complete_invocation|$calls|signalr_bp.invoke('stats', 'Hub', 's1', 'c' || (i * 11), 'i' || i, 'q'), signalr_bp.complete_invocation('stats', 'i' || i, 'a')"
	"send_group|$calls|signalr_bp.send_group('stats', 'Hub', 'g' || i, 'x')"
	"send_user|$calls|signalr_bp.send_user('stats', 'Hub', 'u' || i, 'x')"
	"send_all|$calls|signalr_bp.send_all('stats', 'Hub', 'x')"
	"send_batch of 10 audiences|$((calls / 10))|signalr_bp.send_batch('stats', 'Hub', ARRAY(SELECT ('groups {g' || (i * 10 + j) || '}')::signalr_bp.audience FROM generate_series(1, 10) j), ARRAY(SELECT 'x'::bytea FROM generate_series(1, 10) j))"
	"group_connections (one member)|$calls|(SELECT count(*) FROM signalr_bp.group_connections('stats', 'Hub', 'g' || i))"
	"user_connections|$calls|(SELECT count(*) FROM signalr_bp.user_connections('stats', 'Hub', 'u' || i))"
	"connection_groups|$calls|(SELECT count(*) FROM signalr_bp.connection_groups('stats', 'c' || i))"
	"connection_count of the hub|$calls|signalr_bp.connection_count('stats', 'Hub')"
	"online_users of the hub (reads all 200,000)|2|(SELECT count(*) FROM signalr_bp.online_users('stats', 'Hub'))"
)
declare -A before after
for m in "${measures[@]}"; do
	IFS='|' read -r name n expr <<<"$m"
	before[$name]=$(avg_ms "$n" "$expr")
done
analyzed_at=$(q -c "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'signalr_bp' AND relname IN ('connection', 'group_member', 'invocation') AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)")
q -c "ANALYZE signalr_bp.connection, signalr_bp.group_member, signalr_bp.invocation"
for m in "${measures[@]}"; do
	IFS='|' read -r name n expr <<<"$m"
	after[$name]=$(avg_ms "$n" "$expr")
done

{
	echo "# signalr_bp: registry timings before and after ANALYZE"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1), PostgreSQL $(q -c 'SHOW server_version' | cut -d' ' -f1); command: \`bench/registry_stats.sh $calls\`"
	echo
	echo "200,000 connections registered by one connect_many call (${load_s%.*} s), 5,000 one-member groups,"
	echo "5,000 pending client results. \"Before\": no ANALYZE has seen the registry tables (tables analyzed"
	echo "before the first round: $analyzed_at of 3). Milliseconds per call, server-side averages over many"
	echo "calls in one transaction, rolled back. Target: before within 2x of after."
	echo
	echo "| operation | before ANALYZE, ms | after ANALYZE, ms | before / after |"
	echo "|---|---:|---:|---:|"
	for m in "${measures[@]}"; do
		IFS='|' read -r name n expr <<<"$m"
		awk -v name="$name" -v b="${before[$name]}" -v a="${after[$name]}" \
			'BEGIN { printf "| %s | %.3f | %.3f | %.2fx |\n", name, b, a, (a > 0 ? b / a : 0) }'
	done
} >"$out/registry_stats.md"
cat "$out/registry_stats.md"
