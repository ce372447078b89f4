-- Privileges: nothing for PUBLIC; hub roles use only their own applications'
-- streams, and cannot tell another application's streams from missing ones.
CREATE ROLE app_a LOGIN IN ROLE signalr_bp_hub;
CREATE ROLE app_b LOGIN IN ROLE signalr_bp_hub;
CREATE ROLE outsider LOGIN;
SELECT signalr_bp.create_application('a', owner => 'app_a') > 0 AS a,
	   signalr_bp.create_application('b', owner => 'app_b') > 0 AS b;
SET ROLE app_a;
SELECT signalr_bp.create_stream('a/server-1') > 0;
SELECT signalr_bp.publish('a/server-1', 'for a');
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('a/server-1', 0);
-- the application's SignalR stream: its hub roles read it, only the extension writes it
SELECT signalr_bp.head('a/$signalr');
SELECT try($$SELECT signalr_bp.publish('a/$signalr', 'forged')$$);
SELECT try($$SELECT signalr_bp.publish(ARRAY['a/server-1', 'a/$signalr'], 'forged')$$);
SELECT try($$SELECT signalr_bp.publish_batch('a/$signalr', ARRAY['forged']::bytea[])$$);
-- streams are created only in one's own applications
SELECT signalr_bp.create_stream('b/b2');
-- the view shows only the caller's applications
SELECT name, application, owner FROM signalr_bp.streams ORDER BY name;
-- the tables themselves are closed even to hub roles
SELECT try($$SELECT count(*) FROM signalr_bp.seg_d0$$);
SELECT try($$SELECT count(*) FROM signalr_bp.stream$$);
SELECT try($$SELECT count(*) FROM signalr_bp.application$$);
SELECT try($$INSERT INTO signalr_bp.seg_d0 VALUES (1, 0, 0, 'x')$$);
SELECT try($$SELECT signalr_bp.maintain()$$);
SELECT try($$SELECT signalr_bp.create_application('mine')$$);
SELECT try($$SELECT signalr_bp.alter_application('b', owner => 'app_a')$$);
SELECT try($$SELECT signalr_bp._create_stream(2, 'x', true)$$);
SELECT try($$SELECT signalr_bp._drop_streams(2)$$);
RESET ROLE;
SET ROLE app_b;
-- a's stream, a missing stream of a, and a missing application: the same error
SELECT * FROM signalr_bp.fetch('a/server-1', 0);
SELECT * FROM signalr_bp.fetch('a/nothing', 0);
SELECT * FROM signalr_bp.fetch('nothing/x', 0);
SELECT signalr_bp.create_stream('a/new');
SELECT signalr_bp.create_stream('nothing/new');
SELECT try($$SELECT signalr_bp.publish('a/server-1', 'from b')$$);
SELECT try($$SELECT signalr_bp.publish(ARRAY['a/$signalr', 'a/server-1'], 'from b')$$);
SELECT try($$SELECT signalr_bp.publish_batch('a/server-1', ARRAY['from b']::bytea[])$$);
SELECT try($$SELECT signalr_bp.drop_stream('a/server-1')$$);
SELECT try($$SELECT signalr_bp.create_stream('a/server-1', true, true)$$);
SELECT try($$SELECT signalr_bp.head('a/server-1')$$);
SELECT try($$SELECT signalr_bp.channel('a/server-1')$$);
SELECT try($$SELECT signalr_bp.channel('a/$signalr')$$);
SELECT try($$SELECT signalr_bp._stream_stats('a/server-1')$$);
SELECT signalr_bp.drop_stream('a/server-1', if_exists => true) AS dropped;
SELECT count(*) FROM signalr_bp.streams WHERE application = 'a';
RESET ROLE;
SET ROLE outsider;
SELECT try($$SELECT signalr_bp.publish('a/server-1', 'x')$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('a/server-1', 0)$$);
SELECT try($$SELECT count(*) FROM signalr_bp.streams$$);
RESET ROLE;
-- b's attempts left nothing
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('a/server-1', 0);
SELECT signalr_bp.head('a/$signalr');
-- every SQL and PL/pgSQL function, definer or not, pins search_path
SELECT count(*) AS functions,
	   count(*) FILTER (WHERE p.prosecdef) > 0 AS some_definers,
	   count(*) FILTER (WHERE NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)) AS unpinned
  FROM pg_proc p
 WHERE p.pronamespace = 'signalr_bp'::regnamespace
   AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'));
SELECT signalr_bp.drop_application('a'), signalr_bp.drop_application('b');
DROP ROLE app_a, app_b, outsider;
