-- pgTAP: the installed schema, its privileges, and security properties.
BEGIN;
SELECT plan(31);

SELECT has_schema('signalr_bp');
SELECT has_role('signalr_bp_hub');
SELECT has_table('signalr_bp', 'stream', 'stream catalog');
SELECT has_table('signalr_bp', 'application', 'application catalog');
SELECT fk_ok('signalr_bp', 'stream', 'app_id', 'signalr_bp', 'application', 'id');
SELECT hasnt_column('signalr_bp', 'stream', 'owner', 'a stream''s owner is its application''s');
SELECT col_type_is('signalr_bp', 'application', 'owner', 'regrole', 'owners are stored as regrole (dumped by name)');
-- pg_dump keeps applications, streams and their id counters; not the messages
SELECT set_eq($$SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'signalr_bp'$$,
			  ARRAY['signalr_bp.application', 'signalr_bp.application_id_seq',
					'signalr_bp.stream', 'signalr_bp.stream_id_seq'],
			  'configuration dumped by pg_dump');
SELECT triggers_are('signalr_bp', 'stream', ARRAY['stream_changed', 'shared_state'], 'stream changes empty every cache and follow the shared state');
SELECT triggers_are('signalr_bp', 'application', ARRAY['application_changed'], 'application changes empty every cache');
SELECT has_table('signalr_bp', 'segment', 'segment ring');
SELECT has_view('signalr_bp', 'streams', 'monitoring view');
SELECT is((SELECT count(*)::int FROM pg_class WHERE relnamespace = 'signalr_bp'::regnamespace
			AND relname ~ '^seg_d[0-3]$' AND relpersistence = 'p'), 4, 'four logged durable segments');
SELECT is((SELECT count(*)::int FROM pg_class WHERE relnamespace = 'signalr_bp'::regnamespace
			AND relname ~ '^seg_f[0-3]$' AND relpersistence = 'u'), 4, 'four unlogged fast segments');
SELECT has_index('signalr_bp', 'seg_d0', 'seg_d0_stream_last', ARRAY['stream_id', 'last_offset']);
SELECT col_is_pk('signalr_bp', 'stream', 'id', 'stream id is the primary key');
SELECT function_returns('signalr_bp', 'publish', ARRAY['text', 'bytea'], 'void');
SELECT function_returns('signalr_bp', 'fetch_packed', ARRAY['text', 'bigint', 'integer', 'integer'], 'record');
SELECT volatility_is('signalr_bp', 'fetch', ARRAY['text', 'bigint', 'integer', 'integer'], 'volatile');

-- PUBLIC has nothing; the hub role has the API and no table access
SELECT ok(NOT has_schema_privilege('public', 'signalr_bp', 'USAGE'), 'PUBLIC has no USAGE on the schema');
SELECT ok(NOT has_function_privilege('public', 'signalr_bp.publish(text, bytea)', 'EXECUTE'), 'PUBLIC cannot publish');
SELECT ok(NOT has_function_privilege('public', 'signalr_bp.fetch(text, bigint, integer, integer)', 'EXECUTE'), 'PUBLIC cannot fetch');
SELECT ok(has_function_privilege('signalr_bp_hub', 'signalr_bp.publish_batch(text, bytea[])', 'EXECUTE'), 'hub role can publish');
SELECT ok(has_function_privilege('signalr_bp_hub', 'signalr_bp.fetch_packed(text, bigint, integer, integer)', 'EXECUTE'), 'hub role can fetch');
SELECT ok(NOT has_function_privilege('signalr_bp_hub', 'signalr_bp.maintain(boolean)', 'EXECUTE'), 'hub role cannot run retention');
SELECT ok(NOT has_table_privilege('signalr_bp_hub', 'signalr_bp.seg_d0', 'SELECT'), 'hub role cannot read segments');
SELECT ok(NOT has_table_privilege('signalr_bp_hub', 'signalr_bp.stream', 'UPDATE'), 'hub role cannot edit streams');
SELECT ok(has_table_privilege('signalr_bp_hub', 'signalr_bp.streams', 'SELECT'), 'hub role reads the streams view (its own rows)');
SELECT ok((SELECT 'security_barrier=true' = ANY (reloptions) FROM pg_class WHERE oid = 'signalr_bp.streams'::regclass),
		  'the streams view is a security barrier');
-- SECURITY DEFINER only with a pinned search_path; no C function is a definer
SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'signalr_bp'::regnamespace AND prosecdef
			AND NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)), 0,
		  'every SECURITY DEFINER function pins search_path');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'signalr_bp'::regnamespace
			AND prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'))
			AND NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)), 0,
		  'SQL and PL/pgSQL functions pin search_path');

SELECT * FROM finish();
ROLLBACK;
