-- Streams: the catalog, the segment ring that stores their messages, and
-- the engine's C functions (src/streams.c, publish.c, fetch.c).

-- A stream is one destination's ordered message log, named
-- "<application>/<local_name>" and owned by its application's owner.  Local
-- names starting with "$" are the extension's (<application>/$signalr).
-- Rows are written only by the C functions (src/streams.c).
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

-- Stream definitions (and their id counter) survive pg_dump; message chunks
-- do not: a restored stream starts empty, at offset 0.
SELECT pg_catalog.pg_extension_config_dump('signalr_bp.stream', '');
SELECT pg_catalog.pg_extension_config_dump('signalr_bp.stream_id_seq', '');

-- every session forgets cached streams when this table changes
CREATE TRIGGER stream_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signalr_bp.stream
	FOR EACH STATEMENT EXECUTE FUNCTION signalr_bp._catalog_changed();

---------------------------------------------------------------------------
-- C functions
---------------------------------------------------------------------------

CREATE FUNCTION signalr_bp.create_stream(name text, durable boolean DEFAULT true,
										 if_not_exists boolean DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_create_stream'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.create_stream(text, boolean, boolean) IS
'create stream <application>/<name> (a destination); durable streams are WAL-logged, fast ones unlogged';

-- create_application's way to <application>/$signalr
CREATE FUNCTION signalr_bp._create_stream(app_id integer, local_name text, durable boolean)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_create_stream_internal'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION signalr_bp._create_stream(integer, text, boolean) IS
'create a stream of an application, reserved names allowed, without a permission check (for the extension''s own functions)';

CREATE FUNCTION signalr_bp.drop_stream(name text, if_exists boolean DEFAULT false)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_drop_stream'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.drop_stream(text, boolean) IS
'drop a stream and every message it holds';

-- drop_application's way to every stream of the application
CREATE FUNCTION signalr_bp._drop_streams(app_id integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sbp_drop_app_streams'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION signalr_bp._drop_streams(integer) IS
'drop every stream of an application with its messages; returns how many';

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

CREATE FUNCTION signalr_bp.follow(stream text, from_offset bigint,
								  max_bytes integer DEFAULT 1048576,
								  wait_ms integer DEFAULT 1000)
RETURNS SETOF bytea
AS 'MODULE_PATHNAME', 'sbp_follow'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 10;
COMMENT ON FUNCTION signalr_bp.follow(text, bigint, integer, integer) IS
'fetch_packed as rows, for wait_ms: a row as messages commit, [int64 next_offset] then fetch_packed''s messages; in the select list, each row reaches the client at once';

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

-- for hub servers
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
