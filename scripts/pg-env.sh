# scripts/pg-env.sh: sourced helpers to run a throwaway PostgreSQL server.
# sbp_pg_start DIR [extra postgresql.conf lines...]  -> exports PGHOST PGPORT PGDATA
# sbp_pg_stop DIR

SBP_PGBIN=${SBP_PGBIN:-$(pg_config --bindir)}

sbp_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

sbp_pg_start() {
	local dir=$1; shift
	local port; port=$(sbp_free_port)
	local runas=()
	mkdir -p "$dir"
	# initdb refuses to run as root: use the postgres account then
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres:postgres "$dir"
		runas=(runuser -u postgres --)
	fi
	"${runas[@]}" "$SBP_PGBIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log"; return 1; }
	{
		echo "port = $port"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$dir'"
		echo "shared_preload_libraries = 'signalr_bp'"
		echo "max_prepared_transactions = 10"
		echo "fsync = on"
		for line in "$@"; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
	"${runas[@]}" "$SBP_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || {
		cat "$dir/server.log"; return 1; }
	export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATA=$dir/data
}

sbp_pg_ctl() {
	local dir=$1; shift
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$SBP_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" "$@"
	else
		"$SBP_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" "$@"
	fi
}

sbp_pg_stop() {
	sbp_pg_ctl "$1" -m immediate -w stop >/dev/null 2>&1 || true
}

# sbp_redis_start DIR -> a throwaway redis-server (no persistence) on a free
# port; exports SBP_REDIS_PORT and SBP_REDIS_PID
sbp_redis_start() {
	SBP_REDIS_PORT=$(sbp_free_port)
	redis-server --port "$SBP_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--logfile "$1/redis.log" &
	SBP_REDIS_PID=$!
	export SBP_REDIS_PORT SBP_REDIS_PID
	for _ in $(seq 50); do
		redis-cli -p "$SBP_REDIS_PORT" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "redis-server did not start" >&2
	return 1
}
