/* signalr_bp--0.1.0--0.2.0.sql: update a 0.1.0 installation to 0.2.0 */

\echo Use "ALTER EXTENSION signalr_bp UPDATE TO '0.2.0'" to load this file. \quit

/*
 * Stop the hub servers first and upgrade their adapter package
 * (SignalRBackplane.Postgres 0.2.0) with the extension: 0.2.0 carries every
 * message of an application in one stream, "<application>/$signalr", in an
 * envelope format that 0.1.0 adapters cannot read, and 0.1.0's per-server
 * streams are dropped here with their messages.
 *
 * Kept and moved (streams keep their ids, so their unread messages stay
 * readable at the same offsets):
 *  - applications keep their rows; owner becomes a regrole; max_streams is
 *    64, or what the application holds if that is more; each application
 *    gets its "<application>/$signalr" stream;
 *  - stream "<app>/<rest>" of an existing application "<app>" becomes
 *    "<rest>" of it, except the streams of hub servers in 0.1.0's registry
 *    (server.stream), which are dropped with their messages;
 *  - any other stream "<name>" becomes "<role>/<name>" of the application
 *    named after its owner role, created for that role if missing;
 *  - the unlogged registry (servers, connections, groups, invocations) is
 *    emptied and every application's registry_epoch moves, so hub servers
 *    register again.
 * A stream that fits none of these stops the update before anything
 * changed, with the list of those streams and what to do.
 *
 * Every object whose definition changed is defined again exactly as
 * sql/install defines it (t/050_upgrade.pl compares the catalog with a fresh
 * install).  The script calls none of the library's functions that touch
 * state: in a chain of updates it runs against a newer library.
 */

---------------------------------------------------------------------------
-- Where every 0.1.0 stream goes, checked before anything changes
---------------------------------------------------------------------------

-- 0.2.0's name rules (src/names.c), used by the checks
DROP FUNCTION signalr_bp._check_name(text, text, integer);
CREATE FUNCTION signalr_bp._check_name(p_value text, p_what text, p_max integer,
									   p_slash_ok boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_check_name_sql'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE;

-- what is wrong with a name under those rules, or NULL
CREATE FUNCTION pg_temp.sbp_name_problem(p_value text, p_what text, p_max integer, p_slash_ok boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM signalr_bp._check_name(p_value, p_what, p_max, p_slash_ok);
	RETURN NULL;
EXCEPTION WHEN invalid_name OR name_too_long OR character_not_in_repertoire OR null_value_not_allowed THEN
	RETURN SQLERRM;
END
$$;

CREATE TEMPORARY TABLE sbp_stream_plan (
	id          integer PRIMARY KEY,
	old_name    text NOT NULL,
	durable     boolean NOT NULL,
	owner       oid NOT NULL,
	low_offset  bigint NOT NULL,
	epoch       integer NOT NULL,
	created_at  timestamptz NOT NULL,
	server      boolean NOT NULL,	-- a registered hub server's stream: dropped
	app_name    text,
	app_id      integer,			-- NULL: the application named after the owner
	local_name  text,
	problem     text
);
INSERT INTO pg_temp.sbp_stream_plan
SELECT s.id, s.name, s.durable, s.owner, s.low_offset, s.epoch, s.created_at,
	   EXISTS (SELECT FROM signalr_bp.server v WHERE v.stream OPERATOR(pg_catalog.=) s.name),
	   COALESCE(a.name, r.rolname::text), a.id,
	   CASE WHEN a.id IS NULL THEN s.name
			ELSE pg_catalog.substr(s.name, pg_catalog.strpos(s.name, '/') OPERATOR(pg_catalog.+) 1) END,
	   NULL
  FROM signalr_bp.stream s
  LEFT JOIN signalr_bp.application a
	ON pg_catalog.strpos(s.name, '/') OPERATOR(pg_catalog.>) 0
   AND a.name OPERATOR(pg_catalog.=) pg_catalog.split_part(s.name, '/', 1)
  LEFT JOIN pg_catalog.pg_authid r ON r.oid OPERATOR(pg_catalog.=) s.owner;

UPDATE pg_temp.sbp_stream_plan p
   SET problem = CASE
	WHEN p.app_name IS NULL THEN
		pg_catalog.format('its owner role (OID %s) no longer exists', p.owner)
	WHEN p.app_id IS NULL AND pg_temp.sbp_name_problem(p.app_name, 'application name', 63, false) IS NOT NULL THEN
		pg_catalog.format('the name of its owner role "%s" cannot name an application (%s)',
						  p.app_name, pg_temp.sbp_name_problem(p.app_name, 'application name', 63, false))
	WHEN p.app_id IS NULL AND EXISTS (SELECT FROM signalr_bp.application a
									   WHERE a.name OPERATOR(pg_catalog.=) p.app_name
										 AND a.owner OPERATOR(pg_catalog.<>) p.owner) THEN
		pg_catalog.format('application "%s", named after its owner role, belongs to another role', p.app_name)
	WHEN pg_temp.sbp_name_problem(p.local_name, 'local stream name', 192, true) IS NOT NULL THEN
		pg_catalog.format('its name in application "%s" would be "%s" (%s)', p.app_name, p.local_name,
						  pg_temp.sbp_name_problem(p.local_name, 'local stream name', 192, true))
	WHEN pg_catalog.left(p.local_name, 1) OPERATOR(pg_catalog.=) '$' THEN
		pg_catalog.format('its name in application "%s" would be "%s", which is reserved', p.app_name, p.local_name)
	END
 WHERE NOT p.server;
UPDATE pg_temp.sbp_stream_plan p
   SET problem = pg_catalog.format('it would be "%s/%s", as stream "%s" would', p.app_name, p.local_name, q.old_name)
  FROM pg_temp.sbp_stream_plan q
 WHERE NOT p.server AND NOT q.server AND p.problem IS NULL
   AND q.id OPERATOR(pg_catalog.<>) p.id
   AND q.app_name OPERATOR(pg_catalog.=) p.app_name
   AND q.local_name OPERATOR(pg_catalog.=) p.local_name;

DO $$
DECLARE
	v_list text[];
BEGIN
	SELECT pg_catalog.array_agg(pg_catalog.format('Application "%s": %s.', a.name, x.problem) ORDER BY a.name)
	  INTO v_list
	  FROM signalr_bp.application a,
		   LATERAL (SELECT pg_temp.sbp_name_problem(a.name, 'application name', 63, false) AS problem) x
	 WHERE x.problem IS NOT NULL;
	IF v_list IS NOT NULL THEN
		RAISE EXCEPTION 'cannot update signalr_bp: % applications have names that version 0.2.0 refuses',
			pg_catalog.cardinality(v_list)
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = pg_catalog.array_to_string(v_list, E'\n'),
				  HINT = 'As a superuser, rename them (UPDATE signalr_bp.application SET name = ''new'' WHERE name = ''old''; 1 to 63 bytes, no "/", no control characters) or drop them, then run ALTER EXTENSION signalr_bp UPDATE again.';
	END IF;
	SELECT pg_catalog.array_agg(pg_catalog.format('Stream "%s": %s.', p.old_name, p.problem) ORDER BY p.old_name)
	  INTO v_list
	  FROM pg_temp.sbp_stream_plan p
	 WHERE p.problem IS NOT NULL;
	IF v_list IS NOT NULL THEN
		RAISE EXCEPTION 'cannot update signalr_bp: % streams fit in no application', pg_catalog.cardinality(v_list)
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = pg_catalog.array_to_string(v_list, E'\n'),
				  HINT = 'As a superuser, rename each of them to "<application>/<name>" of an application that its owner may use (UPDATE signalr_bp.stream SET name = ''app/name'' WHERE name = ''old'') or drop it (DELETE FROM signalr_bp.stream WHERE name = ''old''; retention removes its messages), then run ALTER EXTENSION signalr_bp UPDATE again.';
	END IF;
END
$$;

---------------------------------------------------------------------------
-- What is kept aside, and what goes
---------------------------------------------------------------------------

CREATE TEMPORARY TABLE sbp_application AS SELECT * FROM signalr_bp.application;
CREATE TEMPORARY TABLE sbp_sequence AS
SELECT 'application' AS seq, s.last_value, s.is_called FROM signalr_bp.application_id_seq s
UNION ALL
SELECT 'stream', s.last_value, s.is_called FROM signalr_bp.stream_id_seq s;

-- the registered hub servers' streams, with their messages
DO $$
DECLARE
	v_table text;
BEGIN
	FOREACH v_table IN ARRAY ARRAY['seg_d0', 'seg_d1', 'seg_d2', 'seg_d3', 'seg_f0', 'seg_f1', 'seg_f2', 'seg_f3'] LOOP
		EXECUTE pg_catalog.format(
			'DELETE FROM signalr_bp.%I WHERE stream_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM pg_temp.sbp_stream_plan WHERE server))',
			v_table);
	END LOOP;
END
$$;
DELETE FROM signalr_bp.fast_alive
 WHERE stream_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM pg_temp.sbp_stream_plan WHERE server));

-- objects whose signature, return type or table changes, and 0.1.0's own
DROP VIEW signalr_bp.streams;
DROP FUNCTION signalr_bp._stream_stats();
DROP FUNCTION signalr_bp._envelope(integer, text, text[], bytea);
DROP FUNCTION signalr_bp._deliver(integer, text, text[], bytea);
DROP FUNCTION signalr_bp._publish_to_server(integer, text, bytea);
DROP FUNCTION signalr_bp._fail_invocation(integer, text, text, text);
DROP FUNCTION signalr_bp._check_pairs(text[], text[]);
DROP FUNCTION signalr_bp._server(integer, text);
DROP FUNCTION signalr_bp.create_application(text, regrole, boolean, interval);
DROP FUNCTION signalr_bp.cancel_invocation(text, text);
DROP FUNCTION signalr_bp.send(text, signalr_bp.hub_name, signalr_bp.audience, bytea);
DROP FUNCTION signalr_bp.send_batch(text, signalr_bp.hub_name, signalr_bp.audience[], bytea[]);
DROP FUNCTION signalr_bp.send_batch(text, text, text[], text[], bytea[]);
DROP FUNCTION signalr_bp.send_all(text, text, bytea, text[]);
DROP FUNCTION signalr_bp.send_connection(text, text, text, bytea);
DROP FUNCTION signalr_bp.send_connections(text, text, text[], bytea);
DROP FUNCTION signalr_bp.send_group(text, text, text, bytea, text[]);
DROP FUNCTION signalr_bp.send_groups(text, text, text[], bytea, text[]);
DROP FUNCTION signalr_bp.send_user(text, text, text, bytea);
DROP FUNCTION signalr_bp.send_users(text, text, text[], bytea);

-- the registry is emptied (hub servers register again)
DROP TABLE signalr_bp.invocation;
DROP TABLE signalr_bp.server;
TRUNCATE signalr_bp.connection, signalr_bp.connection_tally, signalr_bp.group_member;

-- applications and streams are created again below, in 0.2.0's shape
ALTER EXTENSION signalr_bp DROP TABLE signalr_bp.stream;
DROP TABLE signalr_bp.stream;
ALTER EXTENSION signalr_bp DROP TABLE signalr_bp.application;
DROP TABLE signalr_bp.application;

---------------------------------------------------------------------------
-- 0.2.0's objects: as sql/install defines those that are new or changed
---------------------------------------------------------------------------

-- 02_guard.sql

CREATE FUNCTION signalr_bp._guard()
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_guard_sql'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION signalr_bp._guard() IS
'fail on a standby (25006); otherwise lock the extension against DROP EXTENSION until the transaction ends';

GRANT EXECUTE ON FUNCTION signalr_bp._guard() TO signalr_bp_hub;

-- 05_applications.sql

CREATE TABLE signalr_bp.application (
	id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name            text NOT NULL UNIQUE,
	-- regrole: pg_dump writes the role's name, a restore resolves it
	owner           regrole NOT NULL,
	durable         boolean NOT NULL DEFAULT true,	-- its SignalR stream
	server_ttl      interval NOT NULL DEFAULT '30 seconds',
	max_streams     integer NOT NULL DEFAULT 64 CHECK (max_streams > 0),
	registry_epoch  integer NOT NULL DEFAULT 1,
	created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);

SELECT pg_catalog.pg_extension_config_dump('signalr_bp.application', '');

SELECT pg_catalog.pg_extension_config_dump('signalr_bp.application_id_seq', '');

CREATE OR REPLACE FUNCTION signalr_bp._app_id(app text)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_app_id'
LANGUAGE C CALLED ON NULL INPUT STABLE;

COMMENT ON FUNCTION signalr_bp._app_id(text) IS
'the application''s id if the calling role may use it; else "does not exist"';

COMMENT ON FUNCTION signalr_bp._check_name(text, text, integer, boolean) IS
'raise an error unless p_value is a valid name of 1 to p_max bytes (valid text, no control characters, no "/" unless p_slash_ok)';

CREATE FUNCTION signalr_bp._may_use(owner regrole)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_may_use'
LANGUAGE C STRICT STABLE;

COMMENT ON FUNCTION signalr_bp._may_use(regrole) IS
'whether the current role has the privileges of owner';

CREATE FUNCTION signalr_bp.create_application(name text, owner regrole DEFAULT NULL,
											  durable boolean DEFAULT true,
											  server_ttl interval DEFAULT '30 seconds',
											  max_streams integer DEFAULT 64)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id integer;
BEGIN
	PERFORM signalr_bp._guard();
	PERFORM signalr_bp._check_name(name, 'application name', 63, false);
	IF server_ttl IS NULL OR server_ttl OPERATOR(pg_catalog.<) interval '1 second' THEN
		RAISE EXCEPTION 'server_ttl must be at least 1 second' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF durable IS NULL THEN
		RAISE EXCEPTION 'durable must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF max_streams IS NULL OR max_streams OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_streams must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- a regrole given as a number need not name a role
	IF owner IS NOT NULL AND NOT EXISTS (SELECT FROM pg_catalog.pg_authid r WHERE r.oid OPERATOR(pg_catalog.=) owner) THEN
		RAISE EXCEPTION 'role with OID % does not exist', owner::oid USING ERRCODE = 'undefined_object';
	END IF;
	INSERT INTO signalr_bp.application (name, owner, durable, server_ttl, max_streams)
	VALUES (name, COALESCE(owner, session_user::regrole), durable, server_ttl, max_streams)
	RETURNING id INTO v_id;
	INSERT INTO signalr_bp.registry_alive VALUES (v_id);
	-- the stream that carries the application's SignalR traffic
	PERFORM signalr_bp._create_stream(v_id, '$signalr', durable);
	RETURN v_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'application "%" already exists', name USING ERRCODE = 'duplicate_object';
END
$$;

COMMENT ON FUNCTION signalr_bp.create_application(text, regrole, boolean, interval, integer) IS
'create an application (a SignalR deployment) and its stream <name>/$signalr; roles with the privileges of owner (default: the session user) may use it';

CREATE FUNCTION signalr_bp.alter_application(name text, owner regrole DEFAULT NULL,
											 server_ttl interval DEFAULT NULL,
											 max_streams integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(name);
BEGIN
	IF server_ttl OPERATOR(pg_catalog.<) interval '1 second' THEN
		RAISE EXCEPTION 'server_ttl must be at least 1 second' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF max_streams OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_streams must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF owner IS NOT NULL AND NOT EXISTS (SELECT FROM pg_catalog.pg_authid r WHERE r.oid OPERATOR(pg_catalog.=) owner) THEN
		RAISE EXCEPTION 'role with OID % does not exist', owner::oid USING ERRCODE = 'undefined_object';
	END IF;
	-- the statement trigger empties every session's cache of owners
	UPDATE signalr_bp.application a
	   SET owner = COALESCE(alter_application.owner, a.owner),
		   server_ttl = COALESCE(alter_application.server_ttl, a.server_ttl),
		   max_streams = COALESCE(alter_application.max_streams, a.max_streams)
	 WHERE a.id OPERATOR(pg_catalog.=) v_app;
END
$$;

COMMENT ON FUNCTION signalr_bp.alter_application(text, regrole, interval, integer) IS
'change an application''s owner, server_ttl or max_streams (NULL keeps the current value)';

CREATE OR REPLACE FUNCTION signalr_bp.drop_application(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(name);
	v_server record;
BEGIN
	-- nobody is left to tell that pending client results failed
	DELETE FROM signalr_bp.invocation WHERE app_id OPERATOR(pg_catalog.=) v_app;
	FOR v_server IN SELECT s.name FROM signalr_bp.server s WHERE s.app_id OPERATOR(pg_catalog.=) v_app LOOP
		PERFORM signalr_bp._remove_server(v_app, v_server.name, 'application dropped');
	END LOOP;
	DELETE FROM signalr_bp.registry_alive WHERE app_id OPERATOR(pg_catalog.=) v_app;
	DELETE FROM signalr_bp.sent_batch WHERE app_id OPERATOR(pg_catalog.=) v_app;
	PERFORM signalr_bp._drop_streams(v_app);
	DELETE FROM signalr_bp.application WHERE id OPERATOR(pg_catalog.=) v_app;
END
$$;

COMMENT ON FUNCTION signalr_bp.drop_application(text) IS
'drop an application with its registry and every stream it owns, messages included';

CREATE FUNCTION signalr_bp._catalog_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'sbp_catalog_changed'
LANGUAGE C;

COMMENT ON FUNCTION signalr_bp._catalog_changed() IS
'trigger: sessions forget cached applications and streams when this transaction commits';

GRANT EXECUTE ON FUNCTION
	signalr_bp._check_name(text, text, integer, boolean),
	signalr_bp._may_use(regrole)
TO signalr_bp_hub;

-- 10_streams.sql

CREATE TABLE signalr_bp.stream (
	id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	app_id      integer NOT NULL REFERENCES signalr_bp.application,
	local_name  text NOT NULL,
	durable     boolean NOT NULL,
	-- the wake-up channel is signalr_bp_<token>: unguessable, so only those
	-- who may call channel() know what to LISTEN to
	token       text NOT NULL CHECK (token ~ '^[0-9a-f]{32}$'),
	-- every offset below low_offset has been removed by retention (or lost in
	-- a crash, for fast streams); everything from it up to the head is kept
	low_offset  bigint NOT NULL DEFAULT 0,
	-- fast streams only: bumped after a crash emptied their unlogged segments
	epoch       integer NOT NULL DEFAULT 0,
	created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	UNIQUE (app_id, local_name)
);

SELECT pg_catalog.pg_extension_config_dump('signalr_bp.stream', '');

SELECT pg_catalog.pg_extension_config_dump('signalr_bp.stream_id_seq', '');

COMMENT ON FUNCTION signalr_bp.create_stream(text, boolean, boolean) IS
'create stream <application>/<name> (a destination); durable streams are WAL-logged, fast ones unlogged';

CREATE FUNCTION signalr_bp._create_stream(app_id integer, local_name text, durable boolean)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_create_stream_internal'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION signalr_bp._create_stream(integer, text, boolean) IS
'create a stream of an application, reserved names allowed, without a permission check (for the extension''s own functions)';

COMMENT ON FUNCTION signalr_bp.drop_stream(text, boolean) IS
'drop a stream and every message it holds';

CREATE FUNCTION signalr_bp._drop_streams(app_id integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sbp_drop_app_streams'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION signalr_bp._drop_streams(integer) IS
'drop every stream of an application with its messages; returns how many';

COMMENT ON FUNCTION signalr_bp.publish(text, bytea) IS
'append a message to a stream; delivered if and only if the transaction commits';

COMMENT ON FUNCTION signalr_bp.publish(text[], bytea) IS
'append one message to several streams';

COMMENT ON FUNCTION signalr_bp.publish_batch(text, bytea[]) IS
'append messages to a stream, in array order';

COMMENT ON FUNCTION signalr_bp.fetch(text, bigint, integer, integer) IS
'committed messages from from_offset on, in commit order; waits up to wait_ms when there are none';

COMMENT ON FUNCTION signalr_bp.fetch_packed(text, bigint, integer, integer) IS
'like fetch, as one value: [int64 offset][int32 length][payload] per message, big-endian';

CREATE FUNCTION signalr_bp.follow(stream text, from_offset bigint,
								  max_bytes integer DEFAULT 1048576,
								  wait_ms integer DEFAULT 1000)
RETURNS SETOF bytea
AS 'MODULE_PATHNAME', 'sbp_follow'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 10;
COMMENT ON FUNCTION signalr_bp.follow(text, bigint, integer, integer) IS
'fetch_packed as rows, for wait_ms: a row as messages commit, [int64 next_offset] then fetch_packed''s messages; in the select list, each row reaches the client at once';

COMMENT ON FUNCTION signalr_bp.head(text) IS
'the offset the next committed message of the stream will get';

COMMENT ON FUNCTION signalr_bp.channel(text) IS
'the LISTEN channel on which the background worker announces new messages of the stream (unguessable)';

CREATE FUNCTION signalr_bp._stream_stats(stream text,
	OUT messages bigint, OUT bytes bigint, OUT commits bigint, OUT wakeups bigint,
	OUT fetches bigint, OUT replays bigint,
	OUT last_fetch_offset bigint, OUT last_fetch_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'sbp_stream_stats'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION signalr_bp._stream_stats(text) IS
'counters of a stream the caller may use, since server start (NULL without shared state)';

GRANT EXECUTE ON FUNCTION
	signalr_bp.create_stream(text, boolean, boolean),
	signalr_bp.drop_stream(text, boolean),
	signalr_bp.publish(text, bytea),
	signalr_bp.publish(text[], bytea),
	signalr_bp.publish_batch(text, bytea[]),
	signalr_bp.fetch(text, bigint, integer, integer),
	signalr_bp.fetch_packed(text, bigint, integer, integer),
	signalr_bp.follow(text, bigint, integer, integer),
	signalr_bp.head(text),
	signalr_bp.channel(text),
	signalr_bp._stream_stats(text)
TO signalr_bp_hub;

-- 15_stream_state.sql

CREATE FUNCTION signalr_bp._stream_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'sbp_stream_changed'
LANGUAGE C;

COMMENT ON FUNCTION signalr_bp._stream_changed() IS
'row trigger on signalr_bp.stream: reserves and releases the stream''s shared state';

-- 20_retention.sql

CREATE OR REPLACE FUNCTION signalr_bp._rotate(p_durable boolean, p_force boolean)
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
	PERFORM signalr_bp._guard();
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

CREATE OR REPLACE FUNCTION signalr_bp.maintain(force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_rotated integer := 0;
BEGIN
	PERFORM signalr_bp._guard();
	IF force IS NULL THEN
		RAISE EXCEPTION 'force must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM signalr_bp.reap();
	PERFORM signalr_bp._forget_batch_keys();
	IF signalr_bp._rotate(true, force) THEN v_rotated := v_rotated OPERATOR(pg_catalog.+) 1; END IF;
	IF signalr_bp._rotate(false, force) THEN v_rotated := v_rotated OPERATOR(pg_catalog.+) 1; END IF;
	RETURN v_rotated;
END
$$;

COMMENT ON FUNCTION signalr_bp.maintain(boolean) IS
'apply retention: rotate segments that are due (all of them with force); returns how many rotated';

-- 30_monitoring.sql

CREATE VIEW signalr_bp.streams WITH (security_barrier) AS
WITH mine AS MATERIALIZED (
	SELECT a.name OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) s.local_name AS name,
		   a.name AS application, s.durable, pg_catalog.pg_get_userbyid(a.owner) AS owner,
		   s.low_offset
	  FROM signalr_bp.stream s
	  JOIN signalr_bp.application a ON a.id OPERATOR(pg_catalog.=) s.app_id
	 WHERE signalr_bp._may_use(a.owner)
)
SELECT v.name, v.application, v.durable, v.owner, v.low_offset, v.head,
	   CASE WHEN v.last_fetch_offset IS NULL THEN NULL
			ELSE GREATEST(v.head OPERATOR(pg_catalog.-) v.last_fetch_offset, 0)
	   END AS backlog,
	   v.last_fetch_at, v.messages, v.bytes, v.commits, v.wakeups, v.fetches, v.replays
  FROM (SELECT m.name, m.application, m.durable, m.owner, m.low_offset,
			   signalr_bp.head(m.name) AS head,
			   st.last_fetch_offset, st.last_fetch_at, st.messages, st.bytes,
			   st.commits, st.wakeups, st.fetches, st.replays
		  FROM mine m
		  LEFT JOIN LATERAL signalr_bp._stream_stats(m.name) st ON true) v;

COMMENT ON VIEW signalr_bp.streams IS
'per stream of the caller''s applications: retained range, head, consumer backlog and activity, counters since server start';

GRANT SELECT ON signalr_bp.streams TO signalr_bp_hub;

-- 31_metrics.sql

CREATE FUNCTION signalr_bp.stream_metrics()
RETURNS SETOF signalr_bp.streams
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM signalr_bp.streams $$;

COMMENT ON FUNCTION signalr_bp.stream_metrics() IS
'every stream''s row of the streams view, for monitoring (pg_monitor)';

REVOKE ALL ON FUNCTION signalr_bp.stream_metrics() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION signalr_bp.stream_metrics() TO pg_monitor;

GRANT USAGE ON SCHEMA signalr_bp TO pg_monitor;

-- 45_app_stream.sql

CREATE FUNCTION signalr_bp._append(app_id integer, kind integer, hub text, list1 text[],
								   list2 text[], payload bytea, flags integer DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_signalr_append_sql'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp._append(integer, integer, text, text[], text[], bytea, integer) IS
'append one envelope to the application''s stream (internal: not granted)';

-- 50_servers.sql

CREATE UNLOGGED TABLE signalr_bp.server (
	app_id        integer NOT NULL REFERENCES signalr_bp.application ON DELETE CASCADE,
	name          text NOT NULL,
	registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	heartbeat_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, name)
);

CREATE FUNCTION signalr_bp._server(p_app integer, p_server text)
RETURNS signalr_bp.server
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v signalr_bp.server;
BEGIN
	PERFORM signalr_bp._guard();
	IF p_server IS NULL THEN
		RAISE EXCEPTION 'server name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO v FROM signalr_bp.server WHERE app_id = p_app AND name = p_server FOR KEY SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'hub server "%" is not registered', p_server
			USING ERRCODE = 'SB003',
				  HINT = 'Register it with signalr_bp.register_server(); a server silent longer than the application''s server_ttl is removed.';
	END IF;
	RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION signalr_bp._registry_epoch(p_app integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_epoch integer;
BEGIN
	PERFORM signalr_bp._guard();
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

CREATE OR REPLACE FUNCTION signalr_bp.register_server(app text, server text,
										   OUT stream text, OUT registry_epoch integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(server, 'server name', 150);
	INSERT INTO signalr_bp.server (app_id, name) VALUES (v_app, server)
	ON CONFLICT (app_id, name) DO UPDATE SET heartbeat_at = pg_catalog.now();
	-- created with the application (create_application)
	stream := app || '/$signalr';
	registry_epoch := signalr_bp._registry_epoch(v_app);
END
$$;

COMMENT ON FUNCTION signalr_bp.register_server(text, text) IS
'register (or re-register) a hub server; returns the application stream it consumes and the registry epoch';

COMMENT ON FUNCTION signalr_bp.heartbeat(text, text) IS
'keep a hub server alive; returns the registry epoch (re-register connections and groups when it changes)';

CREATE OR REPLACE FUNCTION signalr_bp._remove_server(p_app integer, p_server text, p_reason text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_inv record;
	v_gone text[];
	v_count integer;
BEGIN
	PERFORM signalr_bp._guard();
	DELETE FROM signalr_bp.server WHERE app_id = p_app AND name = p_server;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	FOR v_inv IN
		DELETE FROM signalr_bp.invocation i WHERE i.app_id = p_app AND i.to_server = p_server
		RETURNING i.invocation_id, i.connection_id
	LOOP
		PERFORM signalr_bp._fail_invocation(p_app, v_inv.invocation_id,
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
	RETURN v_count;
END
$$;

CREATE OR REPLACE FUNCTION signalr_bp.deregister_server(app text, server text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(server, 'server name', 150);
	RETURN signalr_bp._remove_server(v_app, server, 'stopped');
END
$$;

COMMENT ON FUNCTION signalr_bp.deregister_server(text, text) IS
'remove a hub server with its connections and group memberships; returns how many connections it held';

CREATE OR REPLACE FUNCTION signalr_bp.reap()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v record;
	v_reaped integer := 0;
BEGIN
	PERFORM signalr_bp._guard();
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

GRANT EXECUTE ON FUNCTION
	signalr_bp.register_server(text, text),
	signalr_bp.heartbeat(text, text),
	signalr_bp.deregister_server(text, text)
TO signalr_bp_hub;

-- 60_connections.sql

COMMENT ON FUNCTION signalr_bp.connect(text, text, text, text, text) IS
'register a connection held by a hub server (again on the same server: an update)';

CREATE OR REPLACE FUNCTION signalr_bp._disconnect(p_app integer, p_connection text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_inv record;
	v_server text;
	v_hub text;
BEGIN
	PERFORM signalr_bp._guard();
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
		RETURNING i.invocation_id
	LOOP
		PERFORM signalr_bp._fail_invocation(p_app, v_inv.invocation_id,
			format('Connection ''%s'' disconnected.', p_connection));
	END LOOP;
	RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION signalr_bp.disconnect(app text, connection_id text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(connection_id, 'connection id', 256);
	RETURN signalr_bp._disconnect(v_app, connection_id);
END
$$;

COMMENT ON FUNCTION signalr_bp.disconnect(text, text) IS
'remove a connection, its group memberships and its pending invocations; false if it was not registered';

CREATE OR REPLACE FUNCTION signalr_bp.connect_many(app text, server text, hub text,
										connection_ids text[], user_ids text[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_distinct integer;
	v_count integer;
	v_added integer;
	v record;
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	IF connection_ids IS NULL THEN
		RAISE EXCEPTION 'connection_ids must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF user_ids IS NOT NULL AND cardinality(user_ids) <> cardinality(connection_ids) THEN
		RAISE EXCEPTION 'connection_ids and user_ids must have the same length'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	PERFORM signalr_bp._check_name(c, 'connection id', 256) FROM unnest(connection_ids) c;
	PERFORM signalr_bp._check_name(u, 'user id', 1024) FROM unnest(user_ids) u WHERE u IS NOT NULL;
	PERFORM signalr_bp._server(v_app, server);
	-- an id given twice counts once, with its last user id
	WITH input AS MATERIALIZED (
		SELECT DISTINCT ON (u.c) u.c, u.u
		  FROM unnest(connection_ids, COALESCE(user_ids, array_fill(NULL::text, ARRAY[cardinality(connection_ids)])))
			   WITH ORDINALITY u(c, u, i)
		 ORDER BY u.c, u.i DESC
	), upserted AS (
		INSERT INTO signalr_bp.connection AS c (app_id, connection_id, server, hub, user_id)
		SELECT v_app, i.c, server, hub, i.u FROM input i
		ON CONFLICT (app_id, connection_id) DO UPDATE
			SET user_id = excluded.user_id
			WHERE c.server = excluded.server AND c.hub = excluded.hub
		RETURNING c.xmax OPERATOR(pg_catalog.=) '0'::xid AS new
	)
	SELECT (SELECT count(*) FROM input), count(*), count(*) FILTER (WHERE new)
	  INTO v_distinct, v_count, v_added FROM upserted;
	IF v_count < v_distinct THEN
		-- held by another server or hub: the error connect() raises
		SELECT c.connection_id, c.server, c.hub INTO v FROM signalr_bp.connection c
		 WHERE c.app_id = v_app AND c.connection_id = ANY (connection_ids)
		   AND (c.server <> connect_many.server OR c.hub <> connect_many.hub)
		 LIMIT 1;
		IF v.server = server THEN
			RAISE EXCEPTION 'connection "%" is already registered for hub "%"', v.connection_id, v.hub
				USING ERRCODE = 'unique_violation';
		END IF;
		RAISE EXCEPTION 'connection "%" is already registered on hub server "%"', v.connection_id, v.server
			USING ERRCODE = 'unique_violation';
	END IF;
	IF v_added > 0 THEN
		INSERT INTO signalr_bp.connection_tally AS t
		VALUES (v_app, server, hub, pg_catalog.pg_backend_pid() % 8, v_added)
		ON CONFLICT ON CONSTRAINT connection_tally_pkey DO UPDATE SET n = t.n + excluded.n;
	END IF;
	RETURN v_count;
END
$$;

COMMENT ON FUNCTION signalr_bp.connect_many(text, text, text, text[], text[]) IS
'register many connections of one server and hub at once (for rebuilding the registry); returns how many (an id given twice counts once)';

GRANT EXECUTE ON FUNCTION
	signalr_bp.connect(text, text, text, text, text),
	signalr_bp.connect_many(text, text, text, text[], text[]),
	signalr_bp.disconnect(text, text)
TO signalr_bp_hub;

-- 70_groups.sql

CREATE OR REPLACE FUNCTION signalr_bp._join(p_app integer, p_hub text, p_connection text, p_group text,
								 p_from text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_holder text;
	v_hub text;
BEGIN
	PERFORM signalr_bp._guard();
	SELECT c.server, c.hub INTO v_holder, v_hub FROM signalr_bp.connection c
	 WHERE c.app_id = p_app AND c.connection_id = p_connection
	   FOR KEY SHARE;
	IF NOT FOUND THEN
		IF p_from IS NOT NULL THEN
			PERFORM signalr_bp._server(p_app, p_from);
		END IF;
		PERFORM signalr_bp._append(p_app, 9, p_hub, ARRAY[p_connection, p_group], NULL, NULL, 2);
		RETURN false;
	END IF;
	IF v_hub <> p_hub THEN
		RETURN false;
	END IF;
	INSERT INTO signalr_bp.group_member VALUES (p_app, p_hub, p_group, p_connection)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	IF v_holder IS DISTINCT FROM p_from THEN
		PERFORM signalr_bp._append(p_app, 9, p_hub, ARRAY[p_connection, p_group], NULL, NULL, 0);
	END IF;
	RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION signalr_bp._leave(p_app integer, p_hub text, p_connection text, p_group text,
								  p_from text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_removed boolean;
	v_holder text;
	v_hub text;
BEGIN
	PERFORM signalr_bp._guard();
	DELETE FROM signalr_bp.group_member g
	 WHERE g.app_id = p_app AND g.hub = p_hub AND g.group_name = p_group AND g.connection_id = p_connection;
	v_removed := FOUND;
	SELECT c.server, c.hub INTO v_holder, v_hub FROM signalr_bp.connection c
	 WHERE c.app_id = p_app AND c.connection_id = p_connection;
	IF NOT FOUND OR (v_hub = p_hub AND v_holder IS DISTINCT FROM p_from) THEN
		PERFORM signalr_bp._append(p_app, 10, p_hub, ARRAY[p_connection, p_group], NULL, NULL, 0);
	END IF;
	RETURN v_removed;
END
$$;

-- p_from (from_server) may be NULL: a change made from SQL
CREATE FUNCTION signalr_bp._check_group_change(p_hub text, p_connection text, p_group text,
											   p_from text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM signalr_bp._check_name(p_hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(p_connection, 'connection id', 256);
	PERFORM signalr_bp._check_name(p_group, 'group name', 1024);
	IF p_from IS NOT NULL THEN
		PERFORM signalr_bp._check_name(p_from, 'server name', 150);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION signalr_bp.add_to_group(app text, hub text, connection_id text, group_name text,
										from_server text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_group_change(hub, connection_id, group_name, from_server);
	RETURN signalr_bp._join(v_app, hub, connection_id, group_name, from_server);
END
$$;

COMMENT ON FUNCTION signalr_bp.add_to_group(text, text, text, text, text) IS
'add a connection (held by any server) to a group; false if it was already a member or is not registered; the holding server is told unless it is from_server';

CREATE OR REPLACE FUNCTION signalr_bp.remove_from_group(app text, hub text, connection_id text, group_name text,
											 from_server text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_group_change(hub, connection_id, group_name, from_server);
	RETURN signalr_bp._leave(v_app, hub, connection_id, group_name, from_server);
END
$$;

COMMENT ON FUNCTION signalr_bp.remove_from_group(text, text, text, text, text) IS
'remove a connection from a group; false if it was not a member; the holding server is told unless it is from_server';

CREATE FUNCTION signalr_bp._check_pairs(p_hub text, p_connections text[], p_groups text[],
										p_from text)
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
	-- the callers pair [i] with [i] for i in 1..cardinality
	IF array_ndims(p_connections) > 1 OR array_ndims(p_groups) > 1
	   OR array_lower(p_connections, 1) <> 1 OR array_lower(p_groups, 1) <> 1 THEN
		RAISE EXCEPTION 'connection_ids and group_names must be one-dimensional arrays subscripted from 1'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	PERFORM signalr_bp._check_name(p_hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(c, 'connection id', 256) FROM unnest(p_connections) c;
	PERFORM signalr_bp._check_name(g, 'group name', 1024) FROM unnest(p_groups) g;
	IF p_from IS NOT NULL THEN
		PERFORM signalr_bp._check_name(p_from, 'server name', 150);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION signalr_bp.add_to_groups(app text, hub text, connection_ids text[], group_names text[],
										 from_server text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_count integer := 0;
BEGIN
	PERFORM signalr_bp._check_pairs(hub, connection_ids, group_names, from_server);
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

CREATE OR REPLACE FUNCTION signalr_bp.remove_from_groups(app text, hub text, connection_ids text[], group_names text[],
											  from_server text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_count integer := 0;
BEGIN
	PERFORM signalr_bp._check_pairs(hub, connection_ids, group_names, from_server);
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

GRANT EXECUTE ON FUNCTION
	signalr_bp.add_to_group(text, text, text, text, text),
	signalr_bp.remove_from_group(text, text, text, text, text),
	signalr_bp.add_to_groups(text, text, text[], text[], text),
	signalr_bp.remove_from_groups(text, text, text[], text[], text)
TO signalr_bp_hub;

-- 80_sends.sql

CREATE TABLE signalr_bp.sent_batch (
	app_id    integer NOT NULL,
	batch_key uuid NOT NULL,
	sent_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, batch_key)
);

CREATE INDEX sent_batch_sent_at ON signalr_bp.sent_batch (sent_at);

CREATE FUNCTION signalr_bp._forget_batch_keys()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- the GUC prints with a unit ('15min'); its default when the module is not loaded yet
	v_keep interval := COALESCE(current_setting('signalr_bp.batch_key_retention', true), '15min')::interval;
	v_count integer;
BEGIN
	PERFORM signalr_bp._guard();
	DELETE FROM signalr_bp.sent_batch
	 WHERE ctid = ANY (ARRAY(SELECT b.ctid FROM signalr_bp.sent_batch b
							  WHERE b.sent_at < pg_catalog.now() - v_keep
							  ORDER BY b.sent_at LIMIT 10000));
	GET DIAGNOSTICS v_count = ROW_COUNT;
	RETURN v_count;
END
$$;

COMMENT ON FUNCTION signalr_bp._forget_batch_keys() IS
'delete batch keys older than signalr_bp.batch_key_retention; returns how many';

CREATE FUNCTION signalr_bp.send_all(app text, hub text, payload bytea, excluded text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_all'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_all(text, text, bytea, text[]) IS
'send to every connection of the hub but the excluded ones';

CREATE FUNCTION signalr_bp.send_connection(app text, hub text, connection_id text, payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_connection'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_connection(text, text, text, bytea) IS
'send to one connection of the hub';

CREATE FUNCTION signalr_bp.send_connections(app text, hub text, connection_ids text[], payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_connections'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_connections(text, text, text[], bytea) IS
'send to these connections of the hub';

CREATE FUNCTION signalr_bp.send_group(app text, hub text, group_name text, payload bytea,
									  excluded text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_group'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_group(text, text, text, bytea, text[]) IS
'send to the members of a group but the excluded connections';

CREATE FUNCTION signalr_bp.send_groups(app text, hub text, group_names text[], payload bytea,
									   excluded text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_groups'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_groups(text, text, text[], bytea, text[]) IS
'send to the members of any of the groups (once each) but the excluded connections';

CREATE FUNCTION signalr_bp.send_user(app text, hub text, user_id text, payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_user'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_user(text, text, text, bytea) IS
'send to every connection of a user';

CREATE FUNCTION signalr_bp.send_users(app text, hub text, user_ids text[], payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_users'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_users(text, text, text[], bytea) IS
'send to every connection of these users';

CREATE FUNCTION signalr_bp.send_batch(app text, hub text, kinds text[], targets text[],
									  payloads bytea[], batch_key uuid DEFAULT NULL,
									  async_commit boolean DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_send_batch_kinds'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_batch(text, text, text[], text[], bytea[], uuid, boolean) IS
'many sends in one call, in order; returns how many messages it appended (0 when batch_key was applied before); async_commit: commit without waiting for the WAL flush';

-- a NULL method or args is an error (22004)
CREATE OR REPLACE FUNCTION signalr_bp.json_invocation(method text, args jsonb DEFAULT '[]')
RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF method IS NULL OR args IS NULL THEN
		RAISE EXCEPTION '% must not be null', CASE WHEN method IS NULL THEN 'method' ELSE 'args' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	RETURN convert_to(jsonb_build_object('type', 1, 'target', method,
		'arguments', CASE WHEN jsonb_typeof(args) = 'array' THEN args ELSE jsonb_build_array(args) END)::text,
		'UTF8') || '\x1e'::bytea;
END
$$;

COMMENT ON FUNCTION signalr_bp.json_invocation(text, jsonb) IS
'a SignalR JSON hub-protocol Invocation message (record separator included), for sends from SQL';

GRANT EXECUTE ON FUNCTION
	signalr_bp.send_all(text, text, bytea, text[]),
	signalr_bp.send_connection(text, text, text, bytea),
	signalr_bp.send_connections(text, text, text[], bytea),
	signalr_bp.send_group(text, text, text, bytea, text[]),
	signalr_bp.send_groups(text, text, text[], bytea, text[]),
	signalr_bp.send_user(text, text, text, bytea),
	signalr_bp.send_users(text, text, text[], bytea),
	signalr_bp.send_batch(text, text, text[], text[], bytea[], uuid, boolean),
	signalr_bp.json_invocation(text, jsonb)
TO signalr_bp_hub;

-- 85_client_results.sql

CREATE UNLOGGED TABLE signalr_bp.invocation (
	app_id        integer NOT NULL,
	invocation_id text NOT NULL,
	hub           text NOT NULL,
	connection_id text NOT NULL,
	from_server   text NOT NULL,
	to_server     text NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, invocation_id)
);

CREATE INDEX invocation_connection ON signalr_bp.invocation (app_id, connection_id);

CREATE FUNCTION signalr_bp._fail_invocation(p_app integer, p_invocation text, p_error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM signalr_bp._guard();
	PERFORM signalr_bp._append(p_app, 7, '', ARRAY[p_invocation, p_error], NULL, NULL, 0);
END
$$;

CREATE OR REPLACE FUNCTION signalr_bp.invoke(app text, hub text, from_server text, connection_id text,
								  invocation_id text, payload bytea)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_to text;
	v_hub text;
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(connection_id, 'connection id', 256);
	PERFORM signalr_bp._check_name(invocation_id, 'invocation id', 256);
	IF payload IS NULL THEN
		RAISE EXCEPTION 'message payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM signalr_bp._server(v_app, from_server);
	SELECT c.server, c.hub INTO v_to, v_hub FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.connection_id = invoke.connection_id
	   FOR KEY SHARE;
	IF NOT FOUND OR v_hub <> hub THEN
		-- the exact text SignalR's client-result callers expect
		RAISE EXCEPTION 'Connection ''%'' does not exist.', connection_id USING ERRCODE = 'SB004';
	END IF;
	BEGIN
		INSERT INTO signalr_bp.invocation (app_id, invocation_id, hub, connection_id, from_server, to_server)
		VALUES (v_app, invocation_id, hub, connection_id, from_server, v_to);
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'invocation id "%" is already in use', invocation_id USING ERRCODE = 'unique_violation';
	END;
	PERFORM signalr_bp._append(v_app, 5, hub, ARRAY[connection_id, invocation_id, from_server], NULL, payload, 0);
END
$$;

COMMENT ON FUNCTION signalr_bp.invoke(text, text, text, text, text, bytea) IS
'ask the server holding a connection to invoke a client method and route the result back to from_server';

CREATE OR REPLACE FUNCTION signalr_bp.complete_invocation(app text, invocation_id text, payload bytea)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_pending boolean;
BEGIN
	PERFORM signalr_bp._check_name(invocation_id, 'invocation id', 256);
	IF payload IS NULL THEN
		RAISE EXCEPTION 'completion payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	DELETE FROM signalr_bp.invocation i
	 WHERE i.app_id = v_app AND i.invocation_id = complete_invocation.invocation_id;
	v_pending := FOUND;
	PERFORM signalr_bp._append(v_app, 6, '', ARRAY[invocation_id], NULL, payload, 0);
	RETURN v_pending;
END
$$;

COMMENT ON FUNCTION signalr_bp.complete_invocation(text, text, bytea) IS
'route a client''s result to the server that invoked it; returns whether the invocation was still pending';

CREATE FUNCTION signalr_bp.cancel_invocation(app text, invocation_id text, connection_id text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_connection text;
	v_hub text;
	v_pending boolean;
BEGIN
	PERFORM signalr_bp._check_name(invocation_id, 'invocation id', 256);
	IF connection_id IS NOT NULL THEN
		PERFORM signalr_bp._check_name(connection_id, 'connection id', 256);
	END IF;
	DELETE FROM signalr_bp.invocation i
	 WHERE i.app_id = v_app AND i.invocation_id = cancel_invocation.invocation_id
	RETURNING i.connection_id, i.hub INTO v_connection, v_hub;
	v_pending := FOUND;
	v_connection := COALESCE(v_connection, connection_id);
	IF v_connection IS NOT NULL THEN
		-- the hub is empty when the registry no longer had the invocation
		PERFORM signalr_bp._append(v_app, 8, COALESCE(v_hub, ''), ARRAY[v_connection, invocation_id], NULL, NULL, 0);
	END IF;
	RETURN v_pending;
END
$$;

COMMENT ON FUNCTION signalr_bp.cancel_invocation(text, text, text) IS
'tell the server holding the connection (from the registry, else connection_id) to cancel an invocation; returns whether it was pending';

GRANT EXECUTE ON FUNCTION
	signalr_bp.invoke(text, text, text, text, text, bytea),
	signalr_bp.complete_invocation(text, text, bytea),
	signalr_bp.cancel_invocation(text, text, text)
TO signalr_bp_hub;

-- 90_audiences.sql

COMMENT ON FUNCTION signalr_bp.lookup_connection(text, signalr_bp.connection_id) IS
'a registered connection''s id, user and groups (NULL when unknown)';

CREATE FUNCTION signalr_bp.send(app text, hub text, audience signalr_bp.audience, payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_audience'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send(text, text, signalr_bp.audience, bytea) IS
'send to an audience (one envelope in the application stream)';

CREATE FUNCTION signalr_bp.send_batch(app text, hub text, audiences signalr_bp.audience[],
									  payloads bytea[], batch_key uuid DEFAULT NULL,
									  async_commit boolean DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_send_batch_audiences'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

COMMENT ON FUNCTION signalr_bp.send_batch(text, text, signalr_bp.audience[], bytea[], uuid, boolean) IS
'payloads[i] to audiences[i], in order, in one call; returns how many messages it appended (0 when batch_key was applied before); async_commit: commit without waiting for the WAL flush';

GRANT EXECUTE ON FUNCTION
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
	signalr_bp.send(text, text, signalr_bp.audience, bytea),
	signalr_bp.send_batch(text, text, signalr_bp.audience[], bytea[], uuid, boolean)
TO signalr_bp_hub;

-- 95_presence.sql

-- the hub, when given, obeys the name rules
CREATE OR REPLACE FUNCTION signalr_bp.connection_count(app text, hub text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	IF hub IS NOT NULL THEN
		PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	END IF;
	RETURN (SELECT COALESCE(sum(t.n), 0)::bigint FROM signalr_bp.connection_tally t
			 WHERE t.app_id = v_app AND (connection_count.hub IS NULL OR t.hub = connection_count.hub));
END
$$;

COMMENT ON FUNCTION signalr_bp.connection_count(text, text) IS
'connections registered across all servers, of one hub or of all';

CREATE OR REPLACE FUNCTION signalr_bp.group_connections(app text, hub text, group_name text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(group_name, 'group name', 1024);
	RETURN QUERY SELECT g.connection_id FROM signalr_bp.group_member g
	 WHERE g.app_id = v_app AND g.hub = group_connections.hub
	   AND g.group_name = group_connections.group_name
	 ORDER BY 1;
END
$$;

COMMENT ON FUNCTION signalr_bp.group_connections(text, text, text) IS
'the members of a group, across all servers';

CREATE OR REPLACE FUNCTION signalr_bp.connection_groups(app text, connection_id text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(connection_id, 'connection id', 256);
	RETURN QUERY SELECT g.group_name FROM signalr_bp.group_member g
	 WHERE g.app_id = v_app AND g.connection_id = connection_groups.connection_id
	 ORDER BY 1;
END
$$;

COMMENT ON FUNCTION signalr_bp.connection_groups(text, text) IS
'the groups a connection belongs to';

CREATE OR REPLACE FUNCTION signalr_bp.user_connections(app text, hub text, user_id text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(user_id, 'user id', 1024);
	RETURN QUERY SELECT c.connection_id FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.hub = user_connections.hub AND c.user_id = user_connections.user_id
	 ORDER BY 1;
END
$$;

COMMENT ON FUNCTION signalr_bp.user_connections(text, text, text) IS
'the connections of a user, across all servers';

CREATE OR REPLACE FUNCTION signalr_bp.online_users(app text, hub text)
RETURNS TABLE (user_id text, connections bigint) LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	RETURN QUERY SELECT c.user_id, count(*) FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.hub = online_users.hub AND c.user_id IS NOT NULL
	 GROUP BY c.user_id ORDER BY 1;
END
$$;

COMMENT ON FUNCTION signalr_bp.online_users(text, text) IS
'users with at least one connection to the hub, and how many';

COMMENT ON FUNCTION signalr_bp.servers(text) IS
'live hub servers of the application, with their connection counts and heartbeat age';

GRANT EXECUTE ON FUNCTION
	signalr_bp.connection_count(text, text),
	signalr_bp.group_connections(text, text, text),
	signalr_bp.connection_groups(text, text),
	signalr_bp.user_connections(text, text, text),
	signalr_bp.online_users(text, text),
	signalr_bp.servers(text)
TO signalr_bp_hub;

---------------------------------------------------------------------------
-- Applications and streams, moved
---------------------------------------------------------------------------

INSERT INTO signalr_bp.application (id, name, owner, durable, server_ttl, registry_epoch, created_at)
OVERRIDING SYSTEM VALUE
SELECT a.id, a.name, a.owner::regrole, a.durable, a.server_ttl,
	   a.registry_epoch OPERATOR(pg_catalog.+) 1, a.created_at
  FROM pg_temp.sbp_application a;
SELECT pg_catalog.setval('signalr_bp.application_id_seq', s.last_value, s.is_called)
  FROM pg_temp.sbp_sequence s WHERE s.seq OPERATOR(pg_catalog.=) 'application';

-- the applications named after the owners of streams that had none
INSERT INTO signalr_bp.application (name, owner)
SELECT DISTINCT p.app_name, p.owner::regrole
  FROM pg_temp.sbp_stream_plan p
 WHERE NOT p.server AND p.app_id IS NULL
   AND NOT EXISTS (SELECT FROM signalr_bp.application a WHERE a.name OPERATOR(pg_catalog.=) p.app_name);
UPDATE pg_temp.sbp_stream_plan p SET app_id = a.id
  FROM signalr_bp.application a
 WHERE p.app_id IS NULL AND a.name OPERATOR(pg_catalog.=) p.app_name;
INSERT INTO signalr_bp.registry_alive (app_id)
SELECT a.id FROM signalr_bp.application a
 WHERE NOT EXISTS (SELECT FROM signalr_bp.registry_alive r WHERE r.app_id OPERATOR(pg_catalog.=) a.id);

-- Streams keep their ids (their chunks stay theirs) and get a channel token
-- (128 random bits, as the library makes them).  The shared_state trigger is
-- created afterwards: their shared memory is taken when they are first used,
-- as for streams older than the server's start.
INSERT INTO signalr_bp.stream (id, app_id, local_name, durable, token, low_offset, epoch, created_at)
OVERRIDING SYSTEM VALUE
SELECT p.id, p.app_id, p.local_name, p.durable,
	   pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
		   pg_catalog.gen_random_uuid()::text OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::text,
		   'UTF8')), 'hex'), 32),
	   p.low_offset, p.epoch, p.created_at
  FROM pg_temp.sbp_stream_plan p
 WHERE NOT p.server;
SELECT pg_catalog.setval('signalr_bp.stream_id_seq', s.last_value, s.is_called)
  FROM pg_temp.sbp_sequence s WHERE s.seq OPERATOR(pg_catalog.=) 'stream';
INSERT INTO signalr_bp.stream (app_id, local_name, durable, token)
SELECT a.id, '$signalr', a.durable,
	   pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
		   pg_catalog.gen_random_uuid()::text OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::text,
		   'UTF8')), 'hex'), 32)
  FROM signalr_bp.application a
 ORDER BY a.id;
-- no application starts above its limit
UPDATE signalr_bp.application a SET max_streams = n.streams
  FROM (SELECT s.app_id, pg_catalog.count(*)::integer AS streams FROM signalr_bp.stream s GROUP BY s.app_id) n
 WHERE n.app_id OPERATOR(pg_catalog.=) a.id AND n.streams OPERATOR(pg_catalog.>) a.max_streams;

-- triggers, once the rows are in

CREATE TRIGGER application_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signalr_bp.application
	FOR EACH STATEMENT EXECUTE FUNCTION signalr_bp._catalog_changed();

CREATE TRIGGER stream_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signalr_bp.stream
	FOR EACH STATEMENT EXECUTE FUNCTION signalr_bp._catalog_changed();

CREATE TRIGGER shared_state
	AFTER INSERT OR DELETE ON signalr_bp.stream
	FOR EACH ROW EXECUTE FUNCTION signalr_bp._stream_changed();

-- privileges: nothing for PUBLIC (sql/install/99_privileges.sql)

REVOKE ALL ON ALL TABLES IN SCHEMA signalr_bp FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA signalr_bp FROM PUBLIC;
REVOKE ALL ON SCHEMA signalr_bp FROM PUBLIC;
GRANT USAGE ON SCHEMA signalr_bp TO signalr_bp_hub;

DROP TABLE pg_temp.sbp_stream_plan, pg_temp.sbp_application, pg_temp.sbp_sequence;
DROP FUNCTION pg_temp.sbp_name_problem(text, text, integer, boolean);
