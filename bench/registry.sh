#!/usr/bin/env bash
# bench/registry.sh: SignalR registry costs on a private PostgreSQL.
#   connect+disconnect and group add+remove pairs per second (single calls
#   and batched), against plain single-row INSERT+DELETE measured by pgbench
#   in the same run; send and presence times with 1M registered connections
#   over 100 servers (sends read no registry: one append each); time to reap
#   a dead server holding 10k connections; bytes of table and index per
#   registered connection.  (Timings before and after ANALYZE:
#   bench/registry_stats.sh.)
# Writes bench/results/registry.md.  usage: bench/registry.sh [seconds per pgbench run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
scripts/install-deps
. scripts/pg-env.sh
make -s >/dev/null && make -s install >/dev/null
dir=$(mktemp -d); chmod 755 "$dir"
trap 'sbp_pg_stop "$dir"; rm -rf "$dir"' EXIT
sbp_pg_start "$dir" "shared_buffers = '1GB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
q -c "CREATE EXTENSION signalr_bp"
q -c "SELECT signalr_bp.create_application('bench', server_ttl => '1 day')" >/dev/null  # servers here do not heartbeat
q -c "SELECT (signalr_bp.register_server('bench', 's' || i)).stream FROM generate_series(0, 99) i" >/dev/null
# baselines: the same columns, plain tables, one logged and one unlogged
for kind in logged unlogged; do
	persistence=$([ $kind = unlogged ] && echo UNLOGGED || true)
	q -c "CREATE $persistence TABLE plain_$kind (app_id int, connection_id text, server text, hub text, user_id text, PRIMARY KEY (app_id, connection_id))"
done
w=$(mktemp -d)
tps() {	# script-file clients -> transactions per second (errors go to pgbench.log)
	{ pgbench -n -f "$1" -c "$2" -j 2 -T "$secs" postgres 2>>"$w/pgbench.log" || echo "pgbench $1 -c $2 failed" >&2; } |
		sed -nE 's/^tps = ([0-9.]+).*/\1/p'
}
cat >"$w/plain_logged.sql" <<'SQL'
\set id random(1, 1000000000)
INSERT INTO plain_logged VALUES (1, 'p' || :id, 's1', 'Hub', 'u' || :id) ON CONFLICT DO NOTHING;
DELETE FROM plain_logged WHERE app_id = 1 AND connection_id = 'p' || :id;
SQL
sed 's/plain_logged/plain_unlogged/g' "$w/plain_logged.sql" >"$w/plain_unlogged.sql"
cat >"$w/connect.sql" <<'SQL'
\set id random(1, 1000000000)
\set s :id % 100
SELECT signalr_bp.connect('bench', 's' || :s, 'Hub', 'c' || :id, 'u' || :id);
SELECT signalr_bp.disconnect('bench', 'c' || :id);
SQL
cat >"$w/group.sql" <<'SQL'
\set id random(1, 1000)
\set g random(1, 100)
SELECT signalr_bp.add_to_group('bench', 'Hub', 'g' || :id, 'room' || :g, 's1');
SELECT signalr_bp.remove_from_group('bench', 'Hub', 'g' || :id, 'room' || :g, 's1');
SQL
cat >"$w/plain_batch.sql" <<'SQL'
\set id random(1, 1000000000)
INSERT INTO plain_logged SELECT 1, 'b' || :id || '-' || i, 's1', 'Hub', NULL FROM generate_series(1, 100) i ON CONFLICT DO NOTHING;
DELETE FROM plain_logged WHERE app_id = 1 AND connection_id LIKE 'b' || :id || '-%';
SQL
cat >"$w/connect_batch.sql" <<'SQL'
\set id random(1, 1000000000)
SELECT signalr_bp.connect_many('bench', 's1', 'Hub', array_agg('b' || :id || '-' || i)) FROM generate_series(1, 100) i;
SELECT count(signalr_bp.disconnect('bench', 'b' || :id || '-' || i)) FROM generate_series(1, 100) i;
SQL
cat >"$w/group_batch.sql" <<'SQL'
\set g random(1, 1000000000)
\set base random(0, 999) * 100
SELECT signalr_bp.add_to_groups('bench', 'Hub', array_agg('h' || (:base + i)), array_fill('b' || :g, ARRAY[100]), 's1') FROM generate_series(1, 100) i;
SELECT signalr_bp.remove_from_groups('bench', 'Hub', array_agg('h' || (:base + i)), array_fill('b' || :g, ARRAY[100]), 's1') FROM generate_series(1, 100) i;
SQL
# the connections that group.sql moves in and out of groups
q -c "SELECT signalr_bp.connect_many('bench', 's1', 'Hub', array_agg('g' || i)) FROM generate_series(1, 1000) i" >/dev/null
# and the 100,000 that group_batch.sql moves, 100 at a time
q -c "SELECT signalr_bp.connect_many('bench', 's1', 'Hub', array_agg('h' || i)) FROM generate_series(1, 100000) i" >/dev/null

declare -A r
for c in 1 4; do
	r[plain_logged_$c]=$(tps "$w/plain_logged.sql" $c)
	r[plain_unlogged_$c]=$(tps "$w/plain_unlogged.sql" $c)
	r[connect_$c]=$(tps "$w/connect.sql" $c)
	r[group_$c]=$(tps "$w/group.sql" $c)
done
r[plain_batch]=$(tps "$w/plain_batch.sql" 4)
r[connect_batch]=$(tps "$w/connect_batch.sql" 4)
r[group_batch]=$(tps "$w/group_batch.sql" 4)

# 1M connections over 100 servers, 10k groups of 100 members, 1 user per 2 connections
q -c "SELECT signalr_bp.connect_many('bench', 's' || (i / 10000), 'Hub', array_agg('m' || (i * 10000 + j)), array_agg('user' || ((i * 10000 + j) / 2))) FROM generate_series(0, 99) i, generate_series(0, 9999) j GROUP BY i" >/dev/null
q -c "INSERT INTO signalr_bp.group_member SELECT a.id, 'Hub', 'team' || (k % 10000), 'm' || ((k::bigint * 7919) % 1000000) FROM signalr_bp.application a, generate_series(0, 999999) k ON CONFLICT DO NOTHING" >/dev/null
q -c "ANALYZE signalr_bp.connection; ANALYZE signalr_bp.group_member"
total=$(q -c "SELECT count(*) FROM signalr_bp.connection")
per_conn=$(q -c "SELECT (pg_total_relation_size('signalr_bp.connection'))::numeric / count(*) FROM signalr_bp.connection" | xargs printf '%.0f')
per_member=$(q -c "SELECT (pg_total_relation_size('signalr_bp.group_member'))::numeric / count(*) FROM signalr_bp.group_member" | xargs printf '%.0f')
# server-side averages over many calls in one transaction, rolled back:
# send and presence time without client round trips
avg_ms() {	# n sql-expression-using-i -> milliseconds per call
	q -c "BEGIN" -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
			FOR i IN 1..$1 LOOP PERFORM $2; END LOOP;
			RAISE NOTICE 'avg %', round((extract(epoch FROM clock_timestamp() - t0) * 1000 / $1)::numeric, 3);
		END \$\$" -c "ROLLBACK" 2>&1 | sed -nE 's/.*avg ([0-9.]+).*/\1/p'
}
route_group=$(avg_ms 2000 "signalr_bp.send_group('bench', 'Hub', 'team' || (i * 37 % 10000), '\\x00')")
route_user=$(avg_ms 2000 "signalr_bp.send_user('bench', 'Hub', 'user' || (i * 7919 % 500000), '\\x00')")
route_all=$(avg_ms 500 "signalr_bp.send_all('bench', 'Hub', '\\x00')")
presence=$(avg_ms 2000 "(SELECT count(*) FROM signalr_bp.user_connections('bench', 'Hub', 'user' || (i * 7919 % 500000)))")
presence_group=$(avg_ms 2000 "(SELECT count(*) FROM signalr_bp.group_connections('bench', 'Hub', 'team' || (i * 37 % 10000)))")
count_ms=$(avg_ms 2000 "signalr_bp.connection_count('bench', 'Hub')")
servers_ms=$(avg_ms 200 "(SELECT count(*) FROM signalr_bp.servers('bench'))")
# a dead server holding 10k connections, each in a group
q -c "SELECT (signalr_bp.register_server('bench', 'dead')).stream" >/dev/null
q -c "SELECT signalr_bp.connect_many('bench', 'dead', 'Hub', array_agg('d' || i)) FROM generate_series(1, 10000) i" >/dev/null
q -c "SELECT count(signalr_bp.add_to_group('bench', 'Hub', 'd' || i, 'team' || (i % 100), 'dead')) FROM generate_series(1, 10000) i" >/dev/null
q -c "UPDATE signalr_bp.server SET heartbeat_at = now() - interval '2 days' WHERE name = 'dead'"
reap_ms=$(q -c "\\timing on" -c "SELECT signalr_bp.reap()" | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p')
left=$(q -c "SELECT count(*) FROM signalr_bp.connection WHERE server = 'dead'")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
out=bench/results/registry.md
{
	echo "# signalr_bp registry benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1), PostgreSQL $(q -c 'SHOW server_version' | cut -d' ' -f1); command: \`bench/registry.sh $secs\`"
	echo
	echo "Pairs per second (one pgbench transaction = register + remove), pgbench ${secs}s each:"
	echo
	echo "| operation | 1 client | 4 clients | vs plain INSERT+DELETE, logged (4 clients) | vs plain, unlogged (4 clients) |"
	echo "|---|---:|---:|---:|---:|"
	printf '| plain INSERT+DELETE, logged table | %.0f | %.0f | 1.00x | |\n' "${r[plain_logged_1]}" "${r[plain_logged_4]}"
	printf '| plain INSERT+DELETE, unlogged table | %.0f | %.0f | | 1.00x |\n' "${r[plain_unlogged_1]}" "${r[plain_unlogged_4]}"
	printf '| connect + disconnect | %.0f | %.0f | %s | %s |\n' "${r[connect_1]}" "${r[connect_4]}" "$(ratio "${r[connect_4]}" "${r[plain_logged_4]}")" "$(ratio "${r[connect_4]}" "${r[plain_unlogged_4]}")"
	printf '| add_to_group + remove_from_group | %.0f | %.0f | %s | %s |\n' "${r[group_1]}" "${r[group_4]}" "$(ratio "${r[group_4]}" "${r[plain_logged_4]}")" "$(ratio "${r[group_4]}" "${r[plain_unlogged_4]}")"
	echo
	printf 'Batched, 100 per call (4 clients): connect_many + 100 disconnects %.0f connections/s; plain 100-row INSERT + DELETE %.0f rows/s (%s).\n' \
		"$(echo "${r[connect_batch]} * 100" | bc)" "$(echo "${r[plain_batch]} * 100" | bc)" "$(ratio "${r[connect_batch]}" "${r[plain_batch]}")"
	printf 'Batched group changes, 100 per call (4 clients): add_to_groups + remove_from_groups %.0f memberships/s (%s the plain 100-row INSERT + DELETE).\n' \
		"$(echo "${r[group_batch]} * 100" | bc)" "$(ratio "${r[group_batch]}" "${r[plain_batch]}")"
	echo
	echo "With $total registered connections over 101 servers, 10,000 groups of ~100 members, 500,000 users"
	echo "(per-call times are server-side averages over many calls in one transaction):"
	echo
	echo "| measure | result |"
	echo "|---|---:|"
	echo "| send_group to a ~100-member group (one append, no registry read), per call | ${route_group} ms |"
	echo "| send_user (2 connections), per call | ${route_user} ms |"
	echo "| send_all with 101 servers, per call | ${route_all} ms |"
	echo "| user_connections() presence query | ${presence} ms |"
	echo "| group_connections() presence query | ${presence_group} ms |"
	echo "| connection_count() of the hub (1M connections) | ${count_ms} ms |"
	echo "| servers(): 101 live servers with their connection counts | ${servers_ms} ms |"
	echo "| reap a dead server holding 10,000 connections and memberships | ${reap_ms} ms (left behind: $left) |"
	echo "| connection registry, table + indexes, per connection | ${per_conn} bytes |"
	echo "| group membership, table + indexes, per membership | ${per_member} bytes |"
} >"$out"
cat "$out"
grep -iE 'error|abort' "$w/pgbench.log" | sort | uniq -c | head -5 >&2 || true
