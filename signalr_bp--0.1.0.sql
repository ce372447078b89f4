/* signalr_bp--0.1.0.sql: streams, segments, the engine's functions and views */

\echo Use "CREATE EXTENSION signalr_bp" to load this file. \quit

-- Role hub servers log in as (or are granted).  Roles are cluster-wide, so it
-- may exist already from an installation in another database.
DO $$
BEGIN
	CREATE ROLE signalr_bp_hub NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
	NULL;
END
$$;

-- A stream is one destination's ordered message log.
CREATE TABLE signalr_bp.stream (
	id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name        text NOT NULL UNIQUE,
	durable     boolean NOT NULL,
	owner       oid NOT NULL,
	-- every offset below low_offset has been removed by retention (or lost in
	-- a crash, for fast streams); everything from it up to the head is kept
	low_offset  bigint NOT NULL DEFAULT 0,
	-- fast streams only: bumped after a crash emptied their unlogged segments
	epoch       integer NOT NULL DEFAULT 0,
	created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Ring of segments per durability class; the one with the highest generation
-- receives new chunks, the one with the lowest is truncated by retention.
CREATE TABLE signalr_bp.segment (
	durable     boolean NOT NULL,
	slot        integer NOT NULL CHECK (slot BETWEEN 0 AND 3),
	generation  bigint NOT NULL,
	opened_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (durable, slot)
);
INSERT INTO signalr_bp.segment (durable, slot, generation)
SELECT d, s, s FROM (VALUES (true), (false)) AS c(d), generate_series(0, 3) AS s;

-- A chunk packs the consecutive messages [first_offset, last_offset] that one
-- transaction committed to one stream: [uint32 length][payload] repeated.
-- Payloads are stored uncompressed and inline up to a page, so a chunk costs
-- one heap tuple and one index entry.
CREATE TABLE signalr_bp.seg_d0 (
	stream_id    integer NOT NULL,
	first_offset bigint NOT NULL,
	last_offset  bigint NOT NULL,
	data         bytea NOT NULL
) WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
ALTER TABLE signalr_bp.seg_d0 ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX seg_d0_stream_last ON signalr_bp.seg_d0 (stream_id, last_offset);

CREATE TABLE signalr_bp.seg_d1 (LIKE signalr_bp.seg_d0 INCLUDING STORAGE)
	WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
CREATE INDEX seg_d1_stream_last ON signalr_bp.seg_d1 (stream_id, last_offset);
CREATE TABLE signalr_bp.seg_d2 (LIKE signalr_bp.seg_d0 INCLUDING STORAGE)
	WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
CREATE INDEX seg_d2_stream_last ON signalr_bp.seg_d2 (stream_id, last_offset);
CREATE TABLE signalr_bp.seg_d3 (LIKE signalr_bp.seg_d0 INCLUDING STORAGE)
	WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
CREATE INDEX seg_d3_stream_last ON signalr_bp.seg_d3 (stream_id, last_offset);

-- Fast streams: the same ring, unlogged (no WAL, no fsync, emptied by a crash).
CREATE UNLOGGED TABLE signalr_bp.seg_f0 (LIKE signalr_bp.seg_d0 INCLUDING STORAGE)
	WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
CREATE INDEX seg_f0_stream_last ON signalr_bp.seg_f0 (stream_id, last_offset);
CREATE UNLOGGED TABLE signalr_bp.seg_f1 (LIKE signalr_bp.seg_d0 INCLUDING STORAGE)
	WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
CREATE INDEX seg_f1_stream_last ON signalr_bp.seg_f1 (stream_id, last_offset);
CREATE UNLOGGED TABLE signalr_bp.seg_f2 (LIKE signalr_bp.seg_d0 INCLUDING STORAGE)
	WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
CREATE INDEX seg_f2_stream_last ON signalr_bp.seg_f2 (stream_id, last_offset);
CREATE UNLOGGED TABLE signalr_bp.seg_f3 (LIKE signalr_bp.seg_d0 INCLUDING STORAGE)
	WITH (toast_tuple_target = 8160, autovacuum_enabled = false);
CREATE INDEX seg_f3_stream_last ON signalr_bp.seg_f3 (stream_id, last_offset);

-- A fast stream's row here disappears with its data in a crash; its absence
-- tells the next producer to start a new epoch above every offset handed out.
CREATE UNLOGGED TABLE signalr_bp.fast_alive (
	stream_id integer PRIMARY KEY
);

-- Stream definitions survive pg_dump; message chunks do not.
SELECT pg_catalog.pg_extension_config_dump('signalr_bp.stream', '');

---------------------------------------------------------------------------
-- C functions
---------------------------------------------------------------------------

CREATE FUNCTION signalr_bp.create_stream(name text, durable boolean DEFAULT true,
										 if_not_exists boolean DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_create_stream'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.create_stream(text, boolean, boolean) IS
'create a stream (a destination); durable streams are WAL-logged, fast ones unlogged';

CREATE FUNCTION signalr_bp.drop_stream(name text, if_exists boolean DEFAULT false)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_drop_stream'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.drop_stream(text, boolean) IS
'drop a stream and every message it holds';

CREATE FUNCTION signalr_bp.publish(stream text, payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_publish'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.publish(text, bytea) IS
'append a message to a stream; delivered if and only if the transaction commits';

CREATE FUNCTION signalr_bp.publish(streams text[], payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_publish_multi'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.publish(text[], bytea) IS
'append one message to several streams';

CREATE FUNCTION signalr_bp.publish_batch(stream text, payloads bytea[])
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_publish_batch'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.publish_batch(text, bytea[]) IS
'append messages to a stream, in array order';

CREATE FUNCTION signalr_bp.fetch(stream text, from_offset bigint,
								 max_messages integer DEFAULT 1000,
								 wait_ms integer DEFAULT 0)
RETURNS TABLE (msg_offset bigint, payload bytea)
AS 'MODULE_PATHNAME', 'sbp_fetch'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 1000;
COMMENT ON FUNCTION signalr_bp.fetch(text, bigint, integer, integer) IS
'committed messages from from_offset on, in commit order; waits up to wait_ms when there are none';

CREATE FUNCTION signalr_bp.fetch_packed(stream text, from_offset bigint,
										max_bytes integer DEFAULT 1048576,
										wait_ms integer DEFAULT 0,
										OUT next_offset bigint,
										OUT message_count integer,
										OUT messages bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'sbp_fetch_packed'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.fetch_packed(text, bigint, integer, integer) IS
'like fetch, as one value: [int64 offset][int32 length][payload] per message, big-endian';

CREATE FUNCTION signalr_bp.head(stream text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sbp_head'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION signalr_bp.head(text) IS
'the offset the next committed message of the stream will get';

CREATE FUNCTION signalr_bp.channel(stream text)
RETURNS text
AS 'MODULE_PATHNAME', 'sbp_channel'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION signalr_bp.channel(text) IS
'the LISTEN channel on which the background worker announces new messages of the stream';

CREATE FUNCTION signalr_bp._stream_stats(
	OUT stream_id integer, OUT head bigint, OUT messages bigint, OUT bytes bigint,
	OUT commits bigint, OUT wakeups bigint, OUT fetches bigint, OUT replays bigint,
	OUT last_fetch_offset bigint, OUT last_fetch_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sbp_stream_stats'
LANGUAGE C STRICT VOLATILE;

---------------------------------------------------------------------------
-- Retention (not a hot path: SQL)
---------------------------------------------------------------------------

-- Tells backends that remember stream views (segment order, low offsets)
-- to read them again once this transaction commits.
CREATE FUNCTION signalr_bp._view_changed()
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sbp_view_changed_sql';

-- Rotate one class's ring when its current segment is older than
-- retention / 3 or larger than retention_size / 3: the oldest segment (whose
-- newest chunk is at least `retention` old) is truncated and becomes current.
-- Streams' low_offset moves past what was dropped, in the same transaction.
CREATE FUNCTION signalr_bp._rotate(p_durable boolean, p_force boolean)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_cur     record;
	v_old     record;
	v_prefix  text := CASE WHEN p_durable THEN 'seg_d' ELSE 'seg_f' END;
	-- the GUCs print with units ('1h', '1GB'); fall back to their defaults
	-- when the module has not been loaded into this session yet
	v_ret     interval := COALESCE(pg_catalog.current_setting('signalr_bp.retention', true), '1h')::interval;
	v_size    bigint := pg_catalog.pg_size_bytes(
					COALESCE(pg_catalog.current_setting('signalr_bp.retention_size', true), '1GB'));
	v_oldrel  regclass;
BEGIN
	SELECT slot, generation, opened_at INTO v_cur
	  FROM signalr_bp.segment WHERE durable OPERATOR(pg_catalog.=) p_durable
	 ORDER BY generation DESC LIMIT 1;
	IF NOT p_force
	   AND ((pg_catalog.now() OPERATOR(pg_catalog.-) v_cur.opened_at)
			OPERATOR(pg_catalog.<) (v_ret OPERATOR(pg_catalog./) 3))
	   AND (pg_catalog.pg_total_relation_size(
			  pg_catalog.format('signalr_bp.%s%s', v_prefix, v_cur.slot)::regclass)
			OPERATOR(pg_catalog.<) (v_size OPERATOR(pg_catalog./) 3))
	THEN
		RETURN false;
	END IF;

	SELECT slot, generation INTO v_old
	  FROM signalr_bp.segment WHERE durable OPERATOR(pg_catalog.=) p_durable
	 ORDER BY generation LIMIT 1 FOR UPDATE;
	v_oldrel := pg_catalog.format('signalr_bp.%s%s', v_prefix, v_old.slot)::regclass;

	-- Two steps, so that readers never queue behind a long exclusive lock.
	-- SHARE waits out any writer still in the oldest segment but lets readers
	-- in; the low offsets move past it while they keep reading.  Then ACCESS
	-- EXCLUSIVE only for the TRUNCATE itself.  Each lock wait is short: new
	-- readers queue behind a waiting exclusive lock, so give up and retry on
	-- the next pass rather than stall them.
	SET LOCAL lock_timeout = '200ms';
	EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE MODE', v_oldrel);

	-- one index probe per stream rather than a scan of the whole segment
	EXECUTE pg_catalog.format(
		'UPDATE signalr_bp.stream s
			SET low_offset = m.next_offset
		   FROM (SELECT st.id,
						(SELECT c.last_offset OPERATOR(pg_catalog.+) 1
						   FROM %s c
						  WHERE c.stream_id OPERATOR(pg_catalog.=) st.id
						  ORDER BY c.last_offset DESC LIMIT 1) AS next_offset
				   FROM signalr_bp.stream st) m
		  WHERE s.id OPERATOR(pg_catalog.=) m.id
			AND s.low_offset OPERATOR(pg_catalog.<) m.next_offset', v_oldrel);

	SET LOCAL lock_timeout = '20ms';
	EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_oldrel);
	EXECUTE pg_catalog.format('TRUNCATE %s', v_oldrel);
	UPDATE signalr_bp.segment
	   SET generation = v_cur.generation OPERATOR(pg_catalog.+) 1,
		   opened_at = pg_catalog.now()
	 WHERE durable OPERATOR(pg_catalog.=) p_durable
	   AND slot OPERATOR(pg_catalog.=) v_old.slot;
	PERFORM signalr_bp._view_changed();
	RETURN true;
END
$$;

CREATE FUNCTION signalr_bp.maintain(force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_rotated integer := 0;
BEGIN
	IF pg_catalog.pg_is_in_recovery() THEN
		RAISE EXCEPTION 'signalr_bp requires a primary server'
			USING ERRCODE = 'read_only_sql_transaction',
				  HINT = 'Connect to the primary (the -rw service on CloudNativePG).';
	END IF;
	PERFORM signalr_bp.reap();
	IF signalr_bp._rotate(true, force) THEN v_rotated := v_rotated OPERATOR(pg_catalog.+) 1; END IF;
	IF signalr_bp._rotate(false, force) THEN v_rotated := v_rotated OPERATOR(pg_catalog.+) 1; END IF;
	RETURN v_rotated;
END
$$;
COMMENT ON FUNCTION signalr_bp.maintain(boolean) IS
'apply retention: rotate segments that are due (all of them with force); returns how many rotated';

---------------------------------------------------------------------------
-- Observability
---------------------------------------------------------------------------

CREATE VIEW signalr_bp.streams AS
SELECT v.name, v.durable, v.owner, v.low_offset, v.head,
	   CASE WHEN v.last_fetch_offset IS NULL THEN NULL
			ELSE GREATEST(v.head OPERATOR(pg_catalog.-) v.last_fetch_offset, 0)
	   END AS backlog,
	   v.last_fetch_at, v.messages, v.bytes, v.commits, v.wakeups, v.fetches, v.replays
  FROM (SELECT s.name, s.durable, pg_catalog.pg_get_userbyid(s.owner) AS owner,
			   s.low_offset, signalr_bp.head(s.name) AS head,
			   st.last_fetch_offset, st.last_fetch_at, st.messages, st.bytes,
			   st.commits, st.wakeups, st.fetches, st.replays
		  FROM signalr_bp.stream s
		  LEFT JOIN signalr_bp._stream_stats() st
				 ON st.stream_id OPERATOR(pg_catalog.=) s.id) v;
COMMENT ON VIEW signalr_bp.streams IS
'per stream: retained range, head, consumer backlog and activity, counters since server start';

---------------------------------------------------------------------------
-- SignalR layer: applications, hub servers, connections, groups, sends,
-- client results, presence (src/signalr.c holds its C helpers)
--
-- Functions here are SECURITY DEFINER with search_path pinned to
-- pg_catalog, pg_temp; every table is schema-qualified.  Each first calls
-- signalr_bp._app_id(), which checks that the calling role is a member of
-- the application's owner: one application cannot see or touch another's
-- state.  The registry (servers, connections, groups, invocations) is
-- unlogged soft state that hub servers rebuild: after a crash or a failover
-- it is empty, the application's registry_epoch moves, and servers
-- re-register.  Messages are in the servers' streams, which are logged.
---------------------------------------------------------------------------

CREATE TABLE signalr_bp.application (
	id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name            text NOT NULL UNIQUE,
	owner           oid NOT NULL,
	durable         boolean NOT NULL DEFAULT true,	-- servers' streams
	server_ttl      interval NOT NULL DEFAULT '30 seconds',
	registry_epoch  integer NOT NULL DEFAULT 1,
	created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('signalr_bp.application', '');

-- present while the unlogged registry of the application is intact
CREATE UNLOGGED TABLE signalr_bp.registry_alive (
	app_id integer PRIMARY KEY
);

-- Unlogged like the rest of the registry: heartbeats and the row locks that
-- serialize connect against reap write no WAL, so registry transactions
-- commit without a flush.  After a crash or failover it is empty; servers
-- get SB003 from heartbeat() and register again (their streams, logged,
-- keep every message).
CREATE UNLOGGED TABLE signalr_bp.server (
	app_id        integer NOT NULL REFERENCES signalr_bp.application ON DELETE CASCADE,
	name          text NOT NULL,
	stream        text NOT NULL,
	registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	heartbeat_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, name)
);

CREATE UNLOGGED TABLE signalr_bp.connection (
	app_id        integer NOT NULL,
	connection_id text NOT NULL,
	server        text NOT NULL,
	hub           text NOT NULL,
	user_id       text,
	connected_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, connection_id)
);
CREATE INDEX connection_server ON signalr_bp.connection (app_id, server);
CREATE INDEX connection_hub_user ON signalr_bp.connection (app_id, hub, user_id);

-- Connections per (server, hub), kept by connect and disconnect so that
-- presence counts sum a few rows instead of counting a million.  A session
-- adds to its own slot (backend pid modulo 8), so concurrent connects do not
-- queue on one row lock; a slot may go negative, only the sum is meaningful.
CREATE UNLOGGED TABLE signalr_bp.connection_tally (
	app_id integer NOT NULL,
	server text NOT NULL,
	hub    text NOT NULL,
	slot   integer NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (app_id, server, hub, slot)
);

CREATE UNLOGGED TABLE signalr_bp.group_member (
	app_id        integer NOT NULL,
	hub           text NOT NULL,
	group_name    text NOT NULL,
	connection_id text NOT NULL,
	PRIMARY KEY (app_id, hub, group_name, connection_id)
);
CREATE INDEX group_member_connection ON signalr_bp.group_member (app_id, connection_id);

CREATE UNLOGGED TABLE signalr_bp.invocation (
	app_id        integer NOT NULL,
	invocation_id text NOT NULL,
	connection_id text NOT NULL,
	from_server   text NOT NULL,
	to_server     text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, invocation_id)
);
CREATE INDEX invocation_connection ON signalr_bp.invocation (app_id, connection_id);

CREATE FUNCTION signalr_bp._app_id(app text)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_app_id'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION signalr_bp._envelope(kind integer, hub text, ids text[], payload bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'sbp_envelope'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION signalr_bp._envelope(integer, text, text[], bytea) IS
'encode a routed message for a hub server''s stream (format in src/signalr.c)';

-- A server's row, locked against a concurrent reap; errors if it is gone.
CREATE FUNCTION signalr_bp._server(p_app integer, p_server text)
RETURNS signalr_bp.server
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v signalr_bp.server;
BEGIN
	SELECT * INTO v FROM signalr_bp.server WHERE app_id = p_app AND name = p_server FOR KEY SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hub server "%" is not registered', p_server
			USING ERRCODE = 'SB003',
				  HINT = 'Register it with signalr_bp.register_server(); a server silent longer than the application''s server_ttl is removed.';
	END IF;
	RETURN v;
END
$$;

CREATE FUNCTION signalr_bp._check_name(p_value text, p_what text, p_max integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_value IS NULL THEN
		RAISE EXCEPTION '% must not be null', p_what USING ERRCODE = 'null_value_not_allowed';
	ELSIF p_value = '' THEN
		RAISE EXCEPTION '% must not be empty', p_what USING ERRCODE = 'invalid_name';
	ELSIF octet_length(p_value) > p_max THEN
		RAISE EXCEPTION '% is too long', p_what USING ERRCODE = 'name_too_long',
			DETAIL = format('The value has %s bytes; the limit is %s.', octet_length(p_value), p_max);
	ELSIF p_value ~ '[\x01-\x1f\x7f]' THEN
		RAISE EXCEPTION '% must not contain control characters', p_what USING ERRCODE = 'invalid_name';
	END IF;
END
$$;

-- Applications -----------------------------------------------------------

CREATE FUNCTION signalr_bp.create_application(name text, owner regrole DEFAULT NULL,
											  durable boolean DEFAULT true,
											  server_ttl interval DEFAULT '30 seconds')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id integer;
BEGIN
	PERFORM signalr_bp._check_name(name, 'application name', 200);
	IF server_ttl IS NULL OR server_ttl < interval '1 second' THEN
		RAISE EXCEPTION 'server_ttl must be at least 1 second' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF durable IS NULL THEN
		RAISE EXCEPTION 'durable must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	INSERT INTO signalr_bp.application (name, owner, durable, server_ttl)
	VALUES (name, COALESCE(owner::oid, session_user::regrole::oid), durable, server_ttl)
	RETURNING id INTO v_id;
	INSERT INTO signalr_bp.registry_alive VALUES (v_id);
	RETURN v_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'application "%" already exists', name USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION signalr_bp.create_application(text, regrole, boolean, interval) IS
'create an application (a SignalR deployment); members of owner (default: the session user) may use it';

CREATE FUNCTION signalr_bp.drop_application(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(name);
	v_server record;
BEGIN
	FOR v_server IN SELECT s.name FROM signalr_bp.server s WHERE s.app_id = v_app LOOP
		PERFORM signalr_bp._remove_server(v_app, v_server.name, 'application dropped');
	END LOOP;
	DELETE FROM signalr_bp.registry_alive WHERE app_id = v_app;
	DELETE FROM signalr_bp.application WHERE id = v_app;
END
$$;

-- Hub servers ------------------------------------------------------------

-- The registry's epoch, moved when the unlogged registry was lost.
CREATE FUNCTION signalr_bp._registry_epoch(p_app integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_epoch integer;
BEGIN
	IF EXISTS (SELECT FROM signalr_bp.registry_alive WHERE app_id = p_app) THEN
		SELECT registry_epoch INTO v_epoch FROM signalr_bp.application WHERE id = p_app;
	ELSE
		UPDATE signalr_bp.application SET registry_epoch = registry_epoch + 1
		 WHERE id = p_app RETURNING registry_epoch INTO v_epoch;
		INSERT INTO signalr_bp.registry_alive VALUES (p_app) ON CONFLICT DO NOTHING;
	END IF;
	RETURN v_epoch;
END
$$;

CREATE FUNCTION signalr_bp.register_server(app text, server text,
										   OUT stream text, OUT registry_epoch integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_durable boolean;
	v_owner oid;
BEGIN
	PERFORM signalr_bp._check_name(server, 'server name', 150);
	SELECT a.durable, a.owner INTO v_durable, v_owner FROM signalr_bp.application a WHERE a.id = v_app;
	stream := app || '/' || server;
	INSERT INTO signalr_bp.server (app_id, name, stream) VALUES (v_app, server, stream)
	ON CONFLICT (app_id, name) DO UPDATE SET heartbeat_at = pg_catalog.now();
	PERFORM signalr_bp.create_stream(stream, v_durable, true);
	UPDATE signalr_bp.stream t SET owner = v_owner WHERE t.name = register_server.stream AND t.owner <> v_owner;
	registry_epoch := signalr_bp._registry_epoch(v_app);
END
$$;
COMMENT ON FUNCTION signalr_bp.register_server(text, text) IS
'register (or re-register) a hub server; returns the stream it consumes and the registry epoch';

CREATE FUNCTION signalr_bp.heartbeat(app text, server text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	UPDATE signalr_bp.server SET heartbeat_at = pg_catalog.now()
	 WHERE app_id = v_app AND name = heartbeat.server;
	IF NOT FOUND THEN
		PERFORM signalr_bp._server(v_app, server);	-- raises SB003
	END IF;
	RETURN signalr_bp._registry_epoch(v_app);
END
$$;
COMMENT ON FUNCTION signalr_bp.heartbeat(text, text) IS
'keep a hub server alive; returns the registry epoch (re-register connections and groups when it changes)';

-- Remove a server and everything it held; pending invocations it was to
-- answer fail at once on the invoking servers.
CREATE FUNCTION signalr_bp._remove_server(p_app integer, p_server text, p_reason text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_stream text;
	v_inv record;
	v_gone text[];
	v_count integer;
BEGIN
	DELETE FROM signalr_bp.server WHERE app_id = p_app AND name = p_server RETURNING stream INTO v_stream;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	FOR v_inv IN
		DELETE FROM signalr_bp.invocation i WHERE i.app_id = p_app AND i.to_server = p_server
		RETURNING i.invocation_id, i.connection_id, i.from_server
	LOOP
		PERFORM signalr_bp._fail_invocation(p_app, v_inv.from_server, v_inv.invocation_id,
			format('Connection ''%s'' was lost: its hub server %s.', v_inv.connection_id, p_reason));
	END LOOP;
	DELETE FROM signalr_bp.invocation WHERE app_id = p_app AND from_server = p_server;
	-- connections first: deleting them waits for concurrent group additions
	-- (which lock the connection), whose memberships the next statement sees
	WITH gone AS (
		DELETE FROM signalr_bp.connection WHERE app_id = p_app AND server = p_server
		RETURNING connection_id
	)
	SELECT array_agg(connection_id) INTO v_gone FROM gone;
	v_count := COALESCE(cardinality(v_gone), 0);
	DELETE FROM signalr_bp.group_member g
	 WHERE g.app_id = p_app AND g.connection_id = ANY (v_gone);
	DELETE FROM signalr_bp.connection_tally t WHERE t.app_id = p_app AND t.server = p_server;
	PERFORM signalr_bp.drop_stream(v_stream, true);
	RETURN v_count;
END
$$;

CREATE FUNCTION signalr_bp.deregister_server(app text, server text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN signalr_bp._remove_server(signalr_bp._app_id(app), server, 'stopped');
END
$$;
COMMENT ON FUNCTION signalr_bp.deregister_server(text, text) IS
'remove a hub server with its connections and group memberships; returns how many connections it held';

-- Remove servers silent longer than their application's server_ttl (the worker runs it).
CREATE FUNCTION signalr_bp.reap()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v record;
	v_reaped integer := 0;
BEGIN
	FOR v IN
		SELECT s.app_id, s.name FROM signalr_bp.server s
		  JOIN signalr_bp.application a ON a.id = s.app_id
		 WHERE s.heartbeat_at < pg_catalog.now() - a.server_ttl
		   FOR UPDATE OF s SKIP LOCKED
	LOOP
		PERFORM signalr_bp._remove_server(v.app_id, v.name, 'stopped responding');
		v_reaped := v_reaped + 1;
	END LOOP;
	RETURN v_reaped;
END
$$;
COMMENT ON FUNCTION signalr_bp.reap() IS
'remove hub servers whose heartbeat is older than their application''s server_ttl';

-- Connections ------------------------------------------------------------

CREATE FUNCTION signalr_bp.connect(app text, server text, hub text, connection_id text,
								   user_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_other text;
	v_hub text;
	v_new boolean;
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(connection_id, 'connection id', 256);
	IF user_id IS NOT NULL THEN
		PERFORM signalr_bp._check_name(user_id, 'user id', 1024);
	END IF;
	PERFORM signalr_bp._server(v_app, server);
	-- a new row has xmax 0; a row updated by ON CONFLICT carries our xid
	INSERT INTO signalr_bp.connection AS c (app_id, connection_id, server, hub, user_id)
	VALUES (v_app, connection_id, server, hub, user_id)
	ON CONFLICT ON CONSTRAINT connection_pkey DO UPDATE
		SET user_id = excluded.user_id
		WHERE c.server = excluded.server AND c.hub = excluded.hub
	RETURNING c.server, c.xmax OPERATOR(pg_catalog.=) '0'::xid INTO v_other, v_new;
	IF v_other IS NULL THEN
		SELECT c.server, c.hub INTO v_other, v_hub FROM signalr_bp.connection c
		 WHERE c.app_id = v_app AND c.connection_id = connect.connection_id;
		IF v_other = server THEN
			RAISE EXCEPTION 'connection "%" is already registered for hub "%"', connection_id, v_hub
				USING ERRCODE = 'unique_violation';
		END IF;
		RAISE EXCEPTION 'connection "%" is already registered on hub server "%"', connection_id, v_other
			USING ERRCODE = 'unique_violation';
	END IF;
	IF v_new THEN
		INSERT INTO signalr_bp.connection_tally AS t
		VALUES (v_app, server, hub, pg_catalog.pg_backend_pid() % 8, 1)
		ON CONFLICT ON CONSTRAINT connection_tally_pkey DO UPDATE SET n = t.n + 1;
	END IF;
END
$$;
COMMENT ON FUNCTION signalr_bp.connect(text, text, text, text, text) IS
'register a connection held by a hub server (again on the same server: an update)';

CREATE FUNCTION signalr_bp._disconnect(p_app integer, p_connection text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_inv record;
	v_server text;
	v_hub text;
BEGIN
	DELETE FROM signalr_bp.connection WHERE app_id = p_app AND connection_id = p_connection
	RETURNING server, hub INTO v_server, v_hub;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO signalr_bp.connection_tally AS t
	VALUES (p_app, v_server, v_hub, pg_catalog.pg_backend_pid() % 8, -1)
	ON CONFLICT ON CONSTRAINT connection_tally_pkey DO UPDATE SET n = t.n - 1;
	DELETE FROM signalr_bp.group_member WHERE app_id = p_app AND connection_id = p_connection;
	FOR v_inv IN
		DELETE FROM signalr_bp.invocation i WHERE i.app_id = p_app AND i.connection_id = p_connection
		RETURNING i.invocation_id, i.from_server
	LOOP
		PERFORM signalr_bp._fail_invocation(p_app, v_inv.from_server, v_inv.invocation_id,
			format('Connection ''%s'' disconnected.', p_connection));
	END LOOP;
	RETURN true;
END
$$;

CREATE FUNCTION signalr_bp.disconnect(app text, connection_id text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN signalr_bp._disconnect(signalr_bp._app_id(app), connection_id);
END
$$;
COMMENT ON FUNCTION signalr_bp.disconnect(text, text) IS
'remove a connection, its group memberships and its pending invocations; false if it was not registered';

CREATE FUNCTION signalr_bp.connect_many(app text, server text, hub text,
										connection_ids text[], user_ids text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_count integer;
	v_added integer;
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	IF user_ids IS NOT NULL AND cardinality(user_ids) <> cardinality(connection_ids) THEN
		RAISE EXCEPTION 'connection_ids and user_ids must have the same length'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	PERFORM signalr_bp._check_name(c, 'connection id', 256) FROM unnest(connection_ids) c;
	PERFORM signalr_bp._server(v_app, server);
	WITH upserted AS (
		INSERT INTO signalr_bp.connection AS c (app_id, connection_id, server, hub, user_id)
		SELECT v_app, u.c, server, hub, u.u
		  FROM unnest(connection_ids, COALESCE(user_ids, array_fill(NULL::text, ARRAY[cardinality(connection_ids)]))) u(c, u)
		ON CONFLICT (app_id, connection_id) DO UPDATE
			SET user_id = excluded.user_id
			WHERE c.server = excluded.server AND c.hub = excluded.hub
		RETURNING c.xmax OPERATOR(pg_catalog.=) '0'::xid AS new
	)
	SELECT count(*), count(*) FILTER (WHERE new) INTO v_count, v_added FROM upserted;
	IF v_added > 0 THEN
		INSERT INTO signalr_bp.connection_tally AS t
		VALUES (v_app, server, hub, pg_catalog.pg_backend_pid() % 8, v_added)
		ON CONFLICT ON CONSTRAINT connection_tally_pkey DO UPDATE SET n = t.n + excluded.n;
	END IF;
	RETURN v_count;
END
$$;
COMMENT ON FUNCTION signalr_bp.connect_many(text, text, text, text[], text[]) IS
'register many connections of one server and hub at once (for rebuilding the registry); returns how many';

-- Groups -----------------------------------------------------------------

-- Append an envelope to a server's stream, if the server is still registered.
CREATE FUNCTION signalr_bp._publish_to_server(p_app integer, p_server text, p_envelope bytea)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_stream text;
BEGIN
	SELECT s.stream INTO v_stream FROM signalr_bp.server s WHERE s.app_id = p_app AND s.name = p_server;
	IF FOUND THEN
		PERFORM signalr_bp.publish(v_stream, p_envelope);
	END IF;
END
$$;

-- One membership change, shared by the single and batch forms.  The
-- connection is looked up by primary key alone (with hub in the condition,
-- stale statistics can make the planner scan a whole hub) and locked, so a
-- concurrent disconnect cannot leave an orphan membership.  A server other
-- than from_server (or SQL) changing a connection's groups tells its holder,
-- which keeps its connections' groups to register them again if the
-- registry is lost and learns of remote changes only this way.
CREATE FUNCTION signalr_bp._join(p_app integer, p_hub text, p_connection text, p_group text,
								 p_from text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_holder text;
	v_hub text;
BEGIN
	SELECT c.server, c.hub INTO v_holder, v_hub FROM signalr_bp.connection c
	 WHERE c.app_id = p_app AND c.connection_id = p_connection
	   FOR KEY SHARE;
	IF NOT FOUND OR v_hub <> p_hub THEN
		RETURN false;
	END IF;
	INSERT INTO signalr_bp.group_member VALUES (p_app, p_hub, p_group, p_connection)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	IF v_holder IS DISTINCT FROM p_from THEN
		PERFORM signalr_bp._publish_to_server(p_app, v_holder,
			signalr_bp._envelope(7, p_hub, ARRAY[p_connection, p_group], NULL));
	END IF;
	RETURN true;
END
$$;

CREATE FUNCTION signalr_bp._leave(p_app integer, p_hub text, p_connection text, p_group text,
								  p_from text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_holder text;
BEGIN
	DELETE FROM signalr_bp.group_member g
	 WHERE g.app_id = p_app AND g.hub = p_hub AND g.group_name = p_group AND g.connection_id = p_connection;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	SELECT c.server INTO v_holder FROM signalr_bp.connection c
	 WHERE c.app_id = p_app AND c.connection_id = p_connection;
	IF FOUND AND v_holder IS DISTINCT FROM p_from THEN
		PERFORM signalr_bp._publish_to_server(p_app, v_holder,
			signalr_bp._envelope(8, p_hub, ARRAY[p_connection, p_group], NULL));
	END IF;
	RETURN true;
END
$$;

CREATE FUNCTION signalr_bp.add_to_group(app text, hub text, connection_id text, group_name text,
										from_server text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(group_name, 'group name', 1024);
	RETURN signalr_bp._join(v_app, hub, connection_id, group_name, from_server);
END
$$;
COMMENT ON FUNCTION signalr_bp.add_to_group(text, text, text, text, text) IS
'add a connection (held by any server) to a group; false if it was already a member or is not registered; the holding server is told unless it is from_server';

CREATE FUNCTION signalr_bp.remove_from_group(app text, hub text, connection_id text, group_name text,
											 from_server text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN signalr_bp._leave(signalr_bp._app_id(app), hub, connection_id, group_name, from_server);
END
$$;
COMMENT ON FUNCTION signalr_bp.remove_from_group(text, text, text, text, text) IS
'remove a connection from a group; false if it was not a member; the holding server is told unless it is from_server';

-- Batch forms: pairs connection_ids[i], group_names[i], one round trip (a
-- server rebuilding a lost registry, or an application moving many
-- connections at once).
CREATE FUNCTION signalr_bp._check_pairs(p_connections text[], p_groups text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_connections IS NULL OR p_groups IS NULL THEN
		RAISE EXCEPTION 'connection_ids and group_names must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cardinality(p_connections) <> cardinality(p_groups) THEN
		RAISE EXCEPTION 'connection_ids and group_names must have the same length'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	PERFORM signalr_bp._check_name(g, 'group name', 1024) FROM unnest(p_groups) g;
	IF array_position(p_connections, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'connection id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
END
$$;

CREATE FUNCTION signalr_bp.add_to_groups(app text, hub text, connection_ids text[], group_names text[],
										 from_server text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_count integer := 0;
BEGIN
	PERFORM signalr_bp._check_pairs(connection_ids, group_names);
	-- pair by pair: primary-key lookups whatever the statistics (a join could
	-- pick a scan of the hub's connections)
	FOR i IN 1..cardinality(connection_ids) LOOP
		IF signalr_bp._join(v_app, hub, connection_ids[i], group_names[i], from_server) THEN
			v_count := v_count + 1;
		END IF;
	END LOOP;
	RETURN v_count;
END
$$;
COMMENT ON FUNCTION signalr_bp.add_to_groups(text, text, text[], text[], text) IS
'add connection_ids[i] to group_names[i] for every i in one call; returns how many memberships were new';

CREATE FUNCTION signalr_bp.remove_from_groups(app text, hub text, connection_ids text[], group_names text[],
											  from_server text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_count integer := 0;
BEGIN
	PERFORM signalr_bp._check_pairs(connection_ids, group_names);
	FOR i IN 1..cardinality(connection_ids) LOOP
		IF signalr_bp._leave(v_app, hub, connection_ids[i], group_names[i], from_server) THEN
			v_count := v_count + 1;
		END IF;
	END LOOP;
	RETURN v_count;
END
$$;
COMMENT ON FUNCTION signalr_bp.remove_from_groups(text, text, text[], text[], text) IS
'remove connection_ids[i] from group_names[i] for every i in one call; returns how many memberships went';

-- Sends ------------------------------------------------------------------
-- Each resolves its audience against the registry in the sending
-- transaction and appends one envelope to the stream of each server holding
-- a target.  They return the number of servers reached (0 is not an error).

CREATE FUNCTION signalr_bp._deliver(p_app integer, p_hub text, p_connections text[],
									p_payload bytea)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v record;
	v_servers integer := 0;
BEGIN
	IF p_payload IS NULL THEN
		RAISE EXCEPTION 'message payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	FOR v IN
		-- by primary key, hub tested after (OFFSET 0 keeps it out of the index
		-- choice: with stale statistics it could pick a scan of the whole hub)
		SELECT s.stream, array_agg(DISTINCT c.connection_id) AS ids
		  FROM (SELECT k.connection_id, k.server, k.hub FROM signalr_bp.connection k
				 WHERE k.app_id = p_app AND k.connection_id = ANY (p_connections)
				OFFSET 0) c
		  JOIN signalr_bp.server s ON s.app_id = p_app AND s.name = c.server
		 WHERE c.hub = p_hub
		 GROUP BY s.stream
	LOOP
		PERFORM signalr_bp.publish(v.stream, signalr_bp._envelope(2, p_hub, v.ids, p_payload));
		v_servers := v_servers + 1;
	END LOOP;
	RETURN v_servers;
END
$$;

CREATE FUNCTION signalr_bp.send_all(app text, hub text, payload bytea, excluded text[] DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_streams text[];
BEGIN
	IF payload IS NULL THEN
		RAISE EXCEPTION 'message payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT array_agg(s.stream) INTO v_streams FROM signalr_bp.server s WHERE s.app_id = v_app;
	IF v_streams IS NULL THEN
		RETURN 0;
	END IF;
	PERFORM signalr_bp.publish(v_streams, signalr_bp._envelope(1, hub, COALESCE(excluded, '{}'), payload));
	RETURN cardinality(v_streams);
END
$$;
COMMENT ON FUNCTION signalr_bp.send_all(text, text, bytea, text[]) IS
'send to every connection of the hub (but the excluded ones), through every live server';

CREATE FUNCTION signalr_bp.send_connections(app text, hub text, connection_ids text[], payload bytea)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN signalr_bp._deliver(signalr_bp._app_id(app), hub, connection_ids, payload);
END
$$;

CREATE FUNCTION signalr_bp.send_groups(app text, hub text, group_names text[], payload bytea,
									   excluded text[] DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN signalr_bp._deliver(v_app, hub,
		ARRAY(SELECT g.connection_id FROM signalr_bp.group_member g
			   WHERE g.app_id = v_app AND g.hub = send_groups.hub AND g.group_name = ANY (group_names)
				 AND NOT g.connection_id = ANY (COALESCE(excluded, '{}'))),
		payload);
END
$$;

CREATE FUNCTION signalr_bp.send_users(app text, hub text, user_ids text[], payload bytea)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN signalr_bp._deliver(v_app, hub,
		ARRAY(SELECT c.connection_id FROM signalr_bp.connection c
			   WHERE c.app_id = v_app AND c.hub = send_users.hub AND c.user_id = ANY (user_ids)),
		payload);
END
$$;

-- single-target forms, named as HubLifetimeManager's methods
CREATE FUNCTION signalr_bp.send_connection(app text, hub text, connection_id text, payload bytea)
RETURNS integer LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT signalr_bp.send_connections(app, hub, ARRAY[connection_id], payload) $$;
CREATE FUNCTION signalr_bp.send_group(app text, hub text, group_name text, payload bytea,
									  excluded text[] DEFAULT '{}')
RETURNS integer LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT signalr_bp.send_groups(app, hub, ARRAY[group_name], payload, excluded) $$;
CREATE FUNCTION signalr_bp.send_user(app text, hub text, user_id text, payload bytea)
RETURNS integer LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT signalr_bp.send_users(app, hub, ARRAY[user_id], payload) $$;

-- Batch form: many sends of any kind in one call (and one round trip).
-- kinds[i] is all, connection, group or user; targets[i] names the
-- connection, group or user (NULL for all); payloads[i] is the message.
CREATE FUNCTION signalr_bp.send_batch(app text, hub text, kinds text[], targets text[],
									  payloads bytea[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_servers integer := 0;
	n integer := cardinality(kinds);
BEGIN
	IF kinds IS NULL OR targets IS NULL OR payloads IS NULL THEN
		RAISE EXCEPTION 'kinds, targets and payloads must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cardinality(targets) <> n OR cardinality(payloads) <> n THEN
		RAISE EXCEPTION 'kinds, targets and payloads must have the same length'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	FOR i IN 1..n LOOP
		v_servers := v_servers + CASE kinds[i]
			WHEN 'all' THEN signalr_bp.send_all(app, hub, payloads[i])
			WHEN 'connection' THEN signalr_bp._deliver(v_app, hub, ARRAY[targets[i]], payloads[i])
			WHEN 'group' THEN signalr_bp.send_groups(app, hub, ARRAY[targets[i]], payloads[i])
			WHEN 'user' THEN signalr_bp.send_users(app, hub, ARRAY[targets[i]], payloads[i])
		END;
		IF kinds[i] IS NULL OR kinds[i] NOT IN ('all', 'connection', 'group', 'user') THEN
			RAISE EXCEPTION 'invalid send kind "%"', kinds[i] USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Use all, connection, group or user.';
		END IF;
	END LOOP;
	RETURN v_servers;
END
$$;
COMMENT ON FUNCTION signalr_bp.send_batch(text, text, text[], text[], bytea[]) IS
'many sends in one call; returns the total number of server deliveries';

-- For triggers and jobs: a SignalR JSON-protocol invocation of method(args...)
CREATE FUNCTION signalr_bp.json_invocation(method text, args jsonb DEFAULT '[]')
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT convert_to(jsonb_build_object('type', 1, 'target', method,
		'arguments', CASE WHEN jsonb_typeof(args) = 'array' THEN args ELSE jsonb_build_array(args) END)::text,
		'UTF8') || '\x1e'::bytea
$$;
COMMENT ON FUNCTION signalr_bp.json_invocation(text, jsonb) IS
'a SignalR JSON hub-protocol Invocation message (record separator included), for sends from SQL';

-- Client results ---------------------------------------------------------

CREATE FUNCTION signalr_bp._fail_invocation(p_app integer, p_server text, p_invocation text,
											p_error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM signalr_bp._publish_to_server(p_app, p_server,
		signalr_bp._envelope(5, '', ARRAY[p_invocation, p_error], NULL));
END
$$;

CREATE FUNCTION signalr_bp.invoke(app text, hub text, from_server text, connection_id text,
								  invocation_id text, payload bytea)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_to text;
	v_hub text;
	v_stream text;
BEGIN
	PERFORM signalr_bp._check_name(invocation_id, 'invocation id', 256);
	IF payload IS NULL THEN
		RAISE EXCEPTION 'message payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM signalr_bp._server(v_app, from_server);
	SELECT c.server, c.hub, s.stream INTO v_to, v_hub, v_stream
	  FROM signalr_bp.connection c JOIN signalr_bp.server s ON s.app_id = c.app_id AND s.name = c.server
	 WHERE c.app_id = v_app AND c.connection_id = invoke.connection_id
	   FOR KEY SHARE OF c;
	IF NOT FOUND OR v_hub <> hub THEN
		-- the exact text SignalR's client-result callers expect
		RAISE EXCEPTION 'Connection ''%'' does not exist.', connection_id USING ERRCODE = 'SB004';
	END IF;
	BEGIN
		INSERT INTO signalr_bp.invocation (app_id, invocation_id, connection_id, from_server, to_server)
		VALUES (v_app, invocation_id, connection_id, from_server, v_to);
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'invocation id "%" is already in use', invocation_id USING ERRCODE = 'unique_violation';
	END;
	PERFORM signalr_bp.publish(v_stream,
		signalr_bp._envelope(3, hub, ARRAY[connection_id, invocation_id, from_server], payload));
END
$$;
COMMENT ON FUNCTION signalr_bp.invoke(text, text, text, text, text, bytea) IS
'ask the server holding a connection to invoke a client method and route the result back to from_server';

CREATE FUNCTION signalr_bp.complete_invocation(app text, invocation_id text, payload bytea)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_from text;
BEGIN
	DELETE FROM signalr_bp.invocation i WHERE i.app_id = v_app AND i.invocation_id = complete_invocation.invocation_id
	RETURNING i.from_server INTO v_from;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM signalr_bp._publish_to_server(v_app, v_from,
		signalr_bp._envelope(4, '', ARRAY[invocation_id], payload));
	RETURN true;
END
$$;
COMMENT ON FUNCTION signalr_bp.complete_invocation(text, text, bytea) IS
'route a client''s result to the server that invoked it; false if the invocation is no longer pending';

CREATE FUNCTION signalr_bp.cancel_invocation(app text, invocation_id text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v record;
BEGIN
	DELETE FROM signalr_bp.invocation i WHERE i.app_id = v_app AND i.invocation_id = cancel_invocation.invocation_id
	RETURNING i.connection_id, i.to_server INTO v;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM signalr_bp.publish(s.stream, signalr_bp._envelope(6, '', ARRAY[v.connection_id, invocation_id], NULL))
	   FROM signalr_bp.server s WHERE s.app_id = v_app AND s.name = v.to_server;
	RETURN true;
END
$$;

-- Names and audiences -----------------------------------------------------

-- Domains carrying the registry's name rules (non-empty, bounded, no control
-- characters); NULL passes, so a NULL user id stays possible.
CREATE FUNCTION signalr_bp._valid_name(p_value text, p_what text, p_max integer)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_value IS NOT NULL THEN
		PERFORM signalr_bp._check_name(p_value, p_what, p_max);
	END IF;
	RETURN true;
END
$$;
CREATE DOMAIN signalr_bp.hub_name AS text
	CHECK (signalr_bp._valid_name(VALUE, 'hub name', 256));
CREATE DOMAIN signalr_bp.connection_id AS text
	CHECK (signalr_bp._valid_name(VALUE, 'connection id', 256));
CREATE DOMAIN signalr_bp.group_name AS text
	CHECK (signalr_bp._valid_name(VALUE, 'group name', 1024));
CREATE DOMAIN signalr_bp.user_id AS text
	CHECK (signalr_bp._valid_name(VALUE, 'user id', 1024));

-- What routing knows about one connection: `audience @> connection_ref`.
CREATE TYPE signalr_bp.connection_ref AS (
	connection_id text,
	user_id       text,
	groups        text[]
);

-- A message's audience (src/audience.c): all, connections, groups or users,
-- each with excluded connections.  Text form: all | all except {c1,c2} |
-- connections {c1} | groups {g1,"room 2"} except {c3} | users {u1,u2}.
CREATE TYPE signalr_bp.audience;
CREATE FUNCTION signalr_bp.audience_in(cstring) RETURNS signalr_bp.audience
	AS 'MODULE_PATHNAME', 'sbp_audience_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_out(signalr_bp.audience) RETURNS cstring
	AS 'MODULE_PATHNAME', 'sbp_audience_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_recv(internal) RETURNS signalr_bp.audience
	AS 'MODULE_PATHNAME', 'sbp_audience_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_send(signalr_bp.audience) RETURNS bytea
	AS 'MODULE_PATHNAME', 'sbp_audience_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE signalr_bp.audience (
	INPUT = signalr_bp.audience_in,
	OUTPUT = signalr_bp.audience_out,
	RECEIVE = signalr_bp.audience_recv,
	SEND = signalr_bp.audience_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = extended
);
COMMENT ON TYPE signalr_bp.audience IS
'who a message is for: all, connections, groups or users, each with excluded connections';

CREATE FUNCTION signalr_bp.audience_all(excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_all' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_connections(connection_ids text[], excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_connections' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_groups(group_names text[], excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_groups' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_users(user_ids text[], excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_users' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_kind(signalr_bp.audience) RETURNS text
AS 'MODULE_PATHNAME', 'sbp_audience_kind' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_targets(signalr_bp.audience) RETURNS text[]
AS 'MODULE_PATHNAME', 'sbp_audience_targets' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_excluded(signalr_bp.audience) RETURNS text[]
AS 'MODULE_PATHNAME', 'sbp_audience_excluded' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_includes(signalr_bp.audience, signalr_bp.connection_ref)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_contains' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp._audience_included(signalr_bp.connection_ref, signalr_bp.audience)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_contained' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp._audience_eq(signalr_bp.audience, signalr_bp.audience) RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp._audience_ne(signalr_bp.audience, signalr_bp.audience) RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR signalr_bp.@> (
	LEFTARG = signalr_bp.audience, RIGHTARG = signalr_bp.connection_ref,
	FUNCTION = signalr_bp.audience_includes, COMMUTATOR = OPERATOR(signalr_bp.<@)
);
CREATE OPERATOR signalr_bp.<@ (
	LEFTARG = signalr_bp.connection_ref, RIGHTARG = signalr_bp.audience,
	FUNCTION = signalr_bp._audience_included, COMMUTATOR = OPERATOR(signalr_bp.@>)
);
CREATE OPERATOR signalr_bp.= (
	LEFTARG = signalr_bp.audience, RIGHTARG = signalr_bp.audience,
	FUNCTION = signalr_bp._audience_eq, COMMUTATOR = OPERATOR(signalr_bp.=),
	NEGATOR = OPERATOR(signalr_bp.<>)
);
CREATE OPERATOR signalr_bp.<> (
	LEFTARG = signalr_bp.audience, RIGHTARG = signalr_bp.audience,
	FUNCTION = signalr_bp._audience_ne, COMMUTATOR = OPERATOR(signalr_bp.<>),
	NEGATOR = OPERATOR(signalr_bp.=)
);

-- The registry's view of one connection, for `audience @> lookup_connection(...)`.
CREATE FUNCTION signalr_bp.lookup_connection(app text, connection_id signalr_bp.connection_id)
RETURNS signalr_bp.connection_ref
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v signalr_bp.connection_ref;
BEGIN
	SELECT c.connection_id, c.user_id,
		   ARRAY(SELECT g.group_name FROM signalr_bp.group_member g
				  WHERE g.app_id = v_app AND g.connection_id = c.connection_id
				  ORDER BY g.group_name)
	  INTO v
	  FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.connection_id = lookup_connection.connection_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION signalr_bp.lookup_connection(text, signalr_bp.connection_id) IS
'a registered connection''s id, user and groups (NULL when unknown)';

-- Send to an audience: the general form of every send_* function.
CREATE FUNCTION signalr_bp.send(app text, hub signalr_bp.hub_name, audience signalr_bp.audience,
								payload bytea)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_targets text[];
	v_excluded text[];
BEGIN
	IF audience IS NULL THEN
		RAISE EXCEPTION 'audience must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	v_targets := signalr_bp.audience_targets(audience);
	v_excluded := signalr_bp.audience_excluded(audience);
	CASE signalr_bp.audience_kind(audience)
		WHEN 'all' THEN
			RETURN signalr_bp.send_all(app, hub, payload, v_excluded);
		WHEN 'groups' THEN
			RETURN signalr_bp.send_groups(app, hub, v_targets, payload, v_excluded);
		WHEN 'connections' THEN
			RETURN signalr_bp._deliver(v_app, hub,
				ARRAY(SELECT t FROM unnest(v_targets) t WHERE NOT t = ANY (v_excluded)), payload);
		ELSE
			RETURN signalr_bp._deliver(v_app, hub,
				ARRAY(SELECT c.connection_id FROM signalr_bp.connection c
					   WHERE c.app_id = v_app AND c.hub = send.hub AND c.user_id = ANY (v_targets)
						 AND NOT c.connection_id = ANY (v_excluded)),
				payload);
	END CASE;
END
$$;
COMMENT ON FUNCTION signalr_bp.send(text, signalr_bp.hub_name, signalr_bp.audience, bytea) IS
'send to an audience; returns the number of servers reached';

CREATE FUNCTION signalr_bp.send_batch(app text, hub signalr_bp.hub_name,
									  audiences signalr_bp.audience[], payloads bytea[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_servers integer := 0;
BEGIN
	IF audiences IS NULL OR payloads IS NULL THEN
		RAISE EXCEPTION 'audiences and payloads must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cardinality(audiences) <> cardinality(payloads) THEN
		RAISE EXCEPTION 'audiences and payloads must have the same length'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	FOR i IN 1..cardinality(audiences) LOOP
		v_servers := v_servers + signalr_bp.send(app, hub, audiences[i], payloads[i]);
	END LOOP;
	RETURN v_servers;
END
$$;
COMMENT ON FUNCTION signalr_bp.send_batch(text, signalr_bp.hub_name, signalr_bp.audience[], bytea[]) IS
'many sends to audiences in one call; returns the total number of server deliveries';

-- Presence ---------------------------------------------------------------

-- (PL/pgSQL so that the application is resolved once, not once per row)
CREATE FUNCTION signalr_bp.connection_count(app text, hub text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN (SELECT COALESCE(sum(t.n), 0)::bigint FROM signalr_bp.connection_tally t
			 WHERE t.app_id = v_app AND (connection_count.hub IS NULL OR t.hub = connection_count.hub));
END
$$;
COMMENT ON FUNCTION signalr_bp.connection_count(text, text) IS
'connections registered across all servers, of one hub or of all';

CREATE FUNCTION signalr_bp.group_connections(app text, hub text, group_name text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN QUERY SELECT g.connection_id FROM signalr_bp.group_member g
	 WHERE g.app_id = v_app AND g.hub = group_connections.hub
	   AND g.group_name = group_connections.group_name
	 ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.group_connections(text, text, text) IS
'the members of a group, across all servers';

CREATE FUNCTION signalr_bp.connection_groups(app text, connection_id text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN QUERY SELECT g.group_name FROM signalr_bp.group_member g
	 WHERE g.app_id = v_app AND g.connection_id = connection_groups.connection_id
	 ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.connection_groups(text, text) IS
'the groups a connection belongs to';

CREATE FUNCTION signalr_bp.user_connections(app text, hub text, user_id text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN QUERY SELECT c.connection_id FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.hub = user_connections.hub AND c.user_id = user_connections.user_id
	 ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.user_connections(text, text, text) IS
'the connections of a user, across all servers';

CREATE FUNCTION signalr_bp.online_users(app text, hub text)
RETURNS TABLE (user_id text, connections bigint) LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN QUERY SELECT c.user_id, count(*) FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.hub = online_users.hub AND c.user_id IS NOT NULL
	 GROUP BY c.user_id ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.online_users(text, text) IS
'users with at least one connection to the hub, and how many';

CREATE FUNCTION signalr_bp.servers(app text)
RETURNS TABLE (server text, connections bigint, heartbeat_age interval, registered_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN QUERY SELECT s.name,
		   (SELECT COALESCE(sum(t.n), 0)::bigint FROM signalr_bp.connection_tally t
			 WHERE t.app_id = s.app_id AND t.server = s.name),
		   pg_catalog.now() - s.heartbeat_at, s.registered_at
	  FROM signalr_bp.server s WHERE s.app_id = v_app ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.servers(text) IS
'live hub servers of the application, with their connection counts and heartbeat age';

---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; the hub role gets the API
---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA signalr_bp FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA signalr_bp FROM PUBLIC;
REVOKE ALL ON SCHEMA signalr_bp FROM PUBLIC;
GRANT USAGE ON SCHEMA signalr_bp TO signalr_bp_hub;
GRANT EXECUTE ON FUNCTION
	signalr_bp.create_stream(text, boolean, boolean),
	signalr_bp.drop_stream(text, boolean),
	signalr_bp.publish(text, bytea),
	signalr_bp.publish(text[], bytea),
	signalr_bp.publish_batch(text, bytea[]),
	signalr_bp.fetch(text, bigint, integer, integer),
	signalr_bp.fetch_packed(text, bigint, integer, integer),
	signalr_bp.head(text),
	signalr_bp.channel(text),
	signalr_bp.register_server(text, text),
	signalr_bp.heartbeat(text, text),
	signalr_bp.deregister_server(text, text),
	signalr_bp.connect(text, text, text, text, text),
	signalr_bp.connect_many(text, text, text, text[], text[]),
	signalr_bp.disconnect(text, text),
	signalr_bp.add_to_group(text, text, text, text, text),
	signalr_bp.remove_from_group(text, text, text, text, text),
	signalr_bp.add_to_groups(text, text, text[], text[], text),
	signalr_bp.remove_from_groups(text, text, text[], text[], text),
	signalr_bp.send_all(text, text, bytea, text[]),
	signalr_bp.send_connection(text, text, text, bytea),
	signalr_bp.send_connections(text, text, text[], bytea),
	signalr_bp.send_group(text, text, text, bytea, text[]),
	signalr_bp.send_groups(text, text, text[], bytea, text[]),
	signalr_bp.send_user(text, text, text, bytea),
	signalr_bp.send_users(text, text, text[], bytea),
	signalr_bp.send_batch(text, text, text[], text[], bytea[]),
	signalr_bp.json_invocation(text, jsonb),
	signalr_bp.invoke(text, text, text, text, text, bytea),
	signalr_bp.complete_invocation(text, text, bytea),
	signalr_bp.cancel_invocation(text, text),
	signalr_bp.connection_count(text, text),
	signalr_bp.group_connections(text, text, text),
	signalr_bp.connection_groups(text, text),
	signalr_bp.user_connections(text, text, text),
	signalr_bp.online_users(text, text),
	signalr_bp.servers(text),
	signalr_bp._check_name(text, text, integer),
	signalr_bp._valid_name(text, text, integer),
	signalr_bp.audience_in(cstring),
	signalr_bp.audience_out(signalr_bp.audience),
	signalr_bp.audience_recv(internal),
	signalr_bp.audience_send(signalr_bp.audience),
	signalr_bp.audience_all(text[]),
	signalr_bp.audience_connections(text[], text[]),
	signalr_bp.audience_groups(text[], text[]),
	signalr_bp.audience_users(text[], text[]),
	signalr_bp.audience_kind(signalr_bp.audience),
	signalr_bp.audience_targets(signalr_bp.audience),
	signalr_bp.audience_excluded(signalr_bp.audience),
	signalr_bp.audience_includes(signalr_bp.audience, signalr_bp.connection_ref),
	signalr_bp._audience_included(signalr_bp.connection_ref, signalr_bp.audience),
	signalr_bp._audience_eq(signalr_bp.audience, signalr_bp.audience),
	signalr_bp._audience_ne(signalr_bp.audience, signalr_bp.audience),
	signalr_bp.lookup_connection(text, signalr_bp.connection_id),
	signalr_bp.send(text, signalr_bp.hub_name, signalr_bp.audience, bytea),
	signalr_bp.send_batch(text, signalr_bp.hub_name, signalr_bp.audience[], bytea[])
TO signalr_bp_hub;
