#!/usr/bin/env bash
# clients/dotnet/test.sh: build the extension and the .NET adapter, start a
# throwaway PostgreSQL with the extension preloaded, run the adapter's tests
# (real hub servers on Kestrel, real SignalR clients).  Ends with one line
# "N passed, N failed".  SBP_TEST_FILTER=<dotnet test filter> runs a subset.
set -uo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps >/dev/null || exit 1
command -v dotnet >/dev/null || { echo "the .NET SDK (dotnet) is required"; echo "0 passed, 1 failed"; exit 1; }
. scripts/pg-env.sh
make -s >/dev/null && make -s install >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
trap 'sbp_pg_stop "$work/pg"; rm -rf "$work"' EXIT
sbp_pg_start "$work/pg" "max_connections = 200" "signalr_bp.maintenance_interval = 200" || exit 1
export SBP_TEST_PG="Host=$work/pg;Port=$PGPORT;Username=postgres;Database=postgres"
psql -X -q -d postgres -c "CREATE EXTENSION signalr_bp"

dotnet test clients/dotnet/tests/SignalRBackplane.Postgres.Tests ${SBP_TEST_FILTER:+--filter "$SBP_TEST_FILTER"} \
	--logger "trx;LogFileName=$work/results.trx" --results-directory "$work" 2>&1 | tee "$work/test.log" |
	grep -vE '^\s*$' | tail -40
trx=$work/results.trx
if [ -f "$trx" ]; then
	passed=$(grep -o 'passed="[0-9]*"' "$trx" | head -1 | grep -o '[0-9]*')
	failed=$(grep -o 'failed="[0-9]*"' "$trx" | head -1 | grep -o '[0-9]*')
else
	passed=0 failed=1
fi
echo "${passed:-0} passed, ${failed:-1} failed"
[ "${failed:-1}" = 0 ]
