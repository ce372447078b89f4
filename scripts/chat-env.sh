# scripts/chat-env.sh: sourced after scripts/pg-env.sh and scripts/dotnet-env.sh
# by scripts/chat and scripts/e2e -- builds the chat sample, starts replicas of
# it and nginx in front of them.  Everything lives under the directory given to
# sbp_chat_build.

# sbp_chat_build DIR: publish the sample into DIR/app, with the JavaScript
# client; the sample takes the adapter from the NuGet package packed into DIR/feed
sbp_chat_build() {
	SBP_CHAT_DIR=$1
	mkdir -p "$SBP_CHAT_DIR"
	(cd test/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
	sbp_dotnet_pack "$SBP_CHAT_DIR" || return 1
	dotnet publish examples/chat/Chat.csproj -c Release -o "$SBP_CHAT_DIR/app" >"$SBP_CHAT_DIR/build.log" 2>&1 || {
		cat "$SBP_CHAT_DIR/build.log"; return 1; }
	mkdir -p "$SBP_CHAT_DIR/app/wwwroot/lib"
	cp test/e2e/node_modules/@microsoft/signalr/dist/browser/signalr.min.js "$SBP_CHAT_DIR/app/wwwroot/lib/"
}

# sbp_chat_replica NAME PORT -> starts a replica (SBP_PG, SBP_TTL from the environment); sets REPLICA_PID
sbp_chat_replica() {
	local name=$1 port=$2
	(cd "$SBP_CHAT_DIR/app" && SBP_SERVER=$name exec dotnet Chat.dll --urls "http://127.0.0.1:$port" \
		>>"$SBP_CHAT_DIR/$name.log" 2>&1) &
	REPLICA_PID=$!
	for _ in $(seq 150); do
		curl -sf "http://127.0.0.1:$port/server" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "replica $name did not start:"; cat "$SBP_CHAT_DIR/$name.log"; return 1
}

# sbp_chat_nginx NAME PORT BALANCE UPSTREAM_PORT... -> nginx on PORT in front of
# the replicas; BALANCE is "round_robin" or "ip_hash" (sticky sessions); sets NGINX_PID
sbp_chat_nginx() {
	local name=$1 port=$2 balance=$3; shift 3
	local dir=$SBP_CHAT_DIR/nginx-$name servers= p
	mkdir -p "$dir"
	for p in "$@"; do servers+="server 127.0.0.1:$p;"; done
	[ "$balance" = ip_hash ] && servers="ip_hash;$servers"
	cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $dir/body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
	map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
	upstream replicas { $servers }
	server {
		listen 127.0.0.1:$port;
		location / {
			proxy_pass http://replicas;
			proxy_http_version 1.1;
			# WebSockets
			proxy_set_header Upgrade \$http_upgrade;
			proxy_set_header Connection \$connection_upgrade;
			# Server-Sent Events and long polling: no buffering, long reads
			proxy_buffering off;
			proxy_read_timeout 1h;
		}
	}
}
CONF
	nginx -c "$dir/nginx.conf" -p "$dir" &
	NGINX_PID=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
		sleep 0.1
	done
	echo "nginx $name did not start:"; cat "$dir/error.log"; return 1
}
