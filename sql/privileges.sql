-- Privileges: nothing for PUBLIC; hub roles use only their own streams.
CREATE ROLE app_a LOGIN IN ROLE signalr_bp_hub;
CREATE ROLE app_b LOGIN IN ROLE signalr_bp_hub;
CREATE ROLE outsider LOGIN;
SET ROLE app_a;
SELECT signalr_bp.create_stream('a-server-1') > 0;
SELECT signalr_bp.publish('a-server-1', 'for a');
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('a-server-1', 0);
-- the tables themselves are closed even to hub roles
SELECT try($$SELECT count(*) FROM signalr_bp.seg_d0$$);
SELECT try($$SELECT count(*) FROM signalr_bp.stream$$);
SELECT try($$INSERT INTO signalr_bp.seg_d0 VALUES (1, 0, 0, 'x')$$);
SELECT try($$SELECT signalr_bp.maintain()$$);
RESET ROLE;
SET ROLE app_b;
SELECT try($$SELECT * FROM signalr_bp.fetch('a-server-1', 0)$$);
SELECT try($$SELECT signalr_bp.publish('a-server-1', 'from b')$$);
SELECT try($$SELECT signalr_bp.publish(ARRAY['a-server-1'], 'from b')$$);
SELECT try($$SELECT signalr_bp.drop_stream('a-server-1')$$);
SELECT try($$SELECT signalr_bp.create_stream('a-server-1', true, true)$$);
SELECT try($$SELECT signalr_bp.head('a-server-1')$$);
RESET ROLE;
SET ROLE outsider;
SELECT try($$SELECT signalr_bp.publish('a-server-1', 'x')$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('a-server-1', 0)$$);
RESET ROLE;
-- b's attempts left nothing
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('a-server-1', 0);
-- every SQL and PL/pgSQL function, definer or not, pins search_path
SELECT count(*) AS functions,
	   count(*) FILTER (WHERE p.prosecdef) > 0 AS some_definers,
	   count(*) FILTER (WHERE NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)) AS unpinned
  FROM pg_proc p
 WHERE p.pronamespace = 'signalr_bp'::regnamespace
   AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'));
SELECT signalr_bp.drop_stream('a-server-1');
DROP ROLE app_a, app_b, outsider;
