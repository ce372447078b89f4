#!/usr/bin/env bash
# test/readme-install.sh: runs README.md's "Install on an existing server"
# section as written, block by block, against fresh throwaway servers, so the
# README cannot drift from what works.  Blocks: ```sh runs in bash from the
# repository's root, ```ini is appended to postgresql.conf, ```sql runs in
# psql as the superuser (from database postgres); prose saying "Restart"
# before a block restarts the server there.  Twice:
#   root, no sudo   sudo is a stand-in that fails if it is called
#   user with sudo  id -u says 1000 and sudo is a stand-in that records its
#                   use and runs the command
# Then it checks what the section promises: the library preloaded, the
# worker in the extension's database and no FATAL in the server log, the
# application, and its role reading the streams view.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-env.sh
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
	set +e
	for d in "$work"/pg-*; do [ -d "$d" ] && sbp_pg_stop "$d"; done
	rm -rf "$work"
}
trap cleanup EXIT
passed=0 failed=0 n=0
check() {	# check NAME CONDITION-EXIT-STATUS [DETAIL FILE]
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		passed=$((passed + 1)); echo "ok $n - $1"
	else
		failed=$((failed + 1)); echo "not ok $n - $1"
		[ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/#   /' "$3" | tail -20
	fi
}

# The section's blocks, in order, as files NN.sh / NN.ini / NN.sql, with
# NN.restart before a block that prose asks to restart for.
mkdir -p "$work/blocks"
python3 - README.md "$work/blocks" <<'PY'
import re, sys
from pathlib import Path
text = Path(sys.argv[1]).read_text()
out = Path(sys.argv[2])
start = text.index("\n## Install on an existing server\n")
end = re.search(r"\n##+ ", text[start + 1:]).start() + start + 1
section = text[start:end]
pos, i = 0, 0
for m in re.finditer(r"```([^\n]*)\n(.*?)```", section, re.S):
    i += 1
    lang, body, prose = m.group(1).strip(), m.group(2), section[pos:m.start()]
    pos = m.end()
    if lang not in ("sh", "ini", "sql"):
        sys.exit(f"README.md, Install on an existing server: block {i} is ```{lang}; "
                 "the test runs only sh, ini and sql blocks")
    if re.search(r"\bRestart\b", prose):
        (out / f"{i:02d}.restart").touch()
    (out / f"{i:02d}.{lang}").write_text(body)
PY
check "README's install section parses into sh, ini and sql blocks" $? 

# stand-ins for id and sudo, one folder per way of running
mkdir -p "$work/nosudo" "$work/sudo"
cat >"$work/nosudo/sudo" <<EOF
#!/bin/sh
echo "\$*" >>"$work/nosudo.calls"
echo "sudo: command not found" >&2
exit 127
EOF
cat >"$work/sudo/sudo" <<EOF
#!/bin/sh
echo "\$*" >>"$work/sudo.calls"
exec "\$@"
EOF
cat >"$work/sudo/id" <<'EOF'
#!/bin/sh
[ "$1" = -u ] && { echo 1000; exit 0; }
exec /usr/bin/id "$@"
EOF
chmod +x "$work"/nosudo/* "$work"/sudo/*

# run_section WAY: every block against a fresh server
run_section() {
	local way=$1 dir=$work/pg-$1 f rc log
	sbp_pg_start "$dir" "shared_preload_libraries = ''" >"$work/$way.start.log" 2>&1
	check "$way: a fresh server without the extension" $? "$work/$way.start.log"
	for f in "$work"/blocks/*; do
		log=$work/$way.$(basename "$f").log
		case $f in
			*.restart)
				sbp_pg_ctl "$dir" -w -t 60 restart >"$log" 2>&1
				check "$way: restart where the README says so" $? "$log"
				continue ;;
			*.sh) env PATH="$work/$way:$PATH" bash -e -o pipefail "$f" >"$log" 2>&1 ;;
			*.ini) cat "$f" >>"$dir/data/postgresql.conf" ;;
			*.sql) psql -X -v ON_ERROR_STOP=1 -d postgres -f "$f" >"$log" 2>&1 ;;
		esac
		rc=$?
		check "$way: block $(basename "$f") ($(head -c 60 "$f" | head -1))" $rc "$log"
	done
	# what the section promises
	local q="psql -X -At -d app"
	[ "$($q -c "SHOW shared_preload_libraries" 2>&1)" = signalr_bp ]
	check "$way: the library is preloaded" $?
	[ "$($q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'signalr_bp worker' AND datname = 'app'" 2>&1)" = 1 ]
	check "$way: the worker runs in app" $?
	! grep -q FATAL "$dir/server.log"
	check "$way: no FATAL in the server log" $? "$dir/server.log"
	[ "$($q -c "SELECT owner::text FROM signalr_bp.application WHERE name = 'chat'" 2>&1)" = chat_app ]
	check "$way: the application chat, owned by chat_app" $?
	grep -qF 'chat/$signalr' "$work/$way".*.sh.log
	check "$way: chat_app reads its application's stream in the streams view" $? \
		"$(ls "$work/$way".*.sh.log | tail -1)"
	sbp_pg_stop "$dir"
}

if [ "$(id -u)" = 0 ]; then
	run_section nosudo
	[ ! -s "$work/nosudo.calls" ]
	check "root, no sudo: sudo never called" $? "$work/nosudo.calls"
else
	echo "skipped: root, no sudo: this test does not run as root"
fi
run_section sudo
grep -qx "make install" "$work/sudo.calls" 2>/dev/null
check "user with sudo: sudo make install" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
