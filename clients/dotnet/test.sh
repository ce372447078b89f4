#!/usr/bin/env bash
# clients/dotnet/test.sh: build the extension and the .NET adapter, start a
# throwaway PostgreSQL with the extension preloaded, pack the adapter into a
# local NuGet feed (the tests reference the package, not the project), check
# the package, and run the adapter's tests (real hub servers on Kestrel, real
# SignalR clients).  Ends with one line "N passed, N failed".
# SBP_TEST_FILTER=<dotnet test filter> runs a subset.
set -uo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps >/dev/null || exit 1
command -v dotnet >/dev/null || { echo "the .NET SDK (dotnet) is required"; echo "0 passed, 1 failed"; exit 1; }
. scripts/pg-env.sh
. scripts/dotnet-env.sh
make -s >/dev/null && make -s install >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
trap 'sbp_pg_stop "$work/pg"; sbp_pg_stop "$work/pgf"; sbp_dotnet_unpack; rm -rf "$work"' EXIT
sbp_dotnet_pack "$work" || { echo "0 passed, 1 failed"; exit 1; }
# the package itself: metadata, README, XML docs, symbols (clients/dotnet/check-package.py)
python3 clients/dotnet/check-package.py "$SBP_NUGET_FEED" "$SBP_NUGET_VERSION" | tee "$work/package.log"
pkg_ok=$(grep -c '^ok ' "$work/package.log") pkg_bad=$(grep -c '^not ok ' "$work/package.log")
# a second server for the tests that restart PostgreSQL (FaultTests): nobody else is on it.
# A long WAL writer delay leaves asynchronous commits unflushed for long, as a busy server might.
sbp_pg_start "$work/pgf" "max_connections = 100" "wal_writer_delay = 10s" || exit 1
psql -X -q -d postgres -c "CREATE EXTENSION signalr_bp"
export SBP_TEST_PG_FAULTS="Host=127.0.0.1;Port=$PGPORT;Username=postgres;Database=postgres"
export SBP_TEST_PG_CTL="$(declare -f sbp_pg_ctl); SBP_PGBIN=$SBP_PGBIN sbp_pg_ctl $work/pgf"
sbp_pg_start "$work/pg" "max_connections = 200" "signalr_bp.maintenance_interval = 200" || exit 1
export SBP_TEST_PG="Host=$work/pg;Port=$PGPORT;Username=postgres;Database=postgres"
psql -X -q -d postgres -c "CREATE EXTENSION signalr_bp"

dotnet test clients/dotnet/tests/SignalRBackplane.Postgres.Tests ${SBP_TEST_FILTER:+--filter "$SBP_TEST_FILTER"} \
	--logger "trx;LogFileName=$work/results.trx" --results-directory "$work" 2>&1 | tee "$work/test.log" |
	grep -vE '^\s*$' | tail -40
trx=$work/results.trx
# what the tests measured (slow clients, faults): their "measured:" output lines
[ -f "$trx" ] && python3 - "$trx" <<'PY'
import sys, xml.etree.ElementTree as ET
for out in ET.parse(sys.argv[1]).getroot().iter('{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}StdOut'):
    for line in (out.text or '').splitlines():
        if line.startswith(('measured:', '  refused')):
            print(line)
PY
if [ -f "$trx" ]; then
	passed=$(grep -o 'passed="[0-9]*"' "$trx" | head -1 | grep -o '[0-9]*')
	failed=$(grep -o 'failed="[0-9]*"' "$trx" | head -1 | grep -o '[0-9]*')
else
	passed=0 failed=1
fi
passed=$(( ${passed:-0} + pkg_ok )) failed=$(( ${failed:-1} + pkg_bad ))
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
