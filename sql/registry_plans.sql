-- No registry plan depends on statistics: right after a bulk load of
-- 200,000 connections, before any ANALYZE, and again after one, sends, group
-- changes (5,000 one-member groups removed in one call among them), client
-- results and presence read the large registry tables through their indexes
-- only (pg_stat_xact_user_tables counts no sequential scan of them).  The
-- timings, un-analyzed against analyzed, are in bench/registry.sh.
\set SHOW_CONTEXT never

-- autovacuum must not analyze them while the test runs
ALTER TABLE signalr_bp.connection SET (autovacuum_enabled = false);
ALTER TABLE signalr_bp.group_member SET (autovacuum_enabled = false);
ALTER TABLE signalr_bp.invocation SET (autovacuum_enabled = false);
SELECT signalr_bp.create_application('plans', server_ttl => '1 day') > 0 AS created;
SELECT stream FROM signalr_bp.register_server('plans', 's1');
SELECT stream FROM signalr_bp.register_server('plans', 's2');
SELECT signalr_bp.connect_many('plans', 's1', 'Hub', array_agg('c' || i), array_agg('u' || (i / 2)))
  FROM generate_series(1, 200000) i;
SELECT signalr_bp.add_to_groups('plans', 'Hub', array_agg('c' || i), array_agg('g' || i), 's1')
  FROM generate_series(1, 5000) i;
SELECT count(signalr_bp.invoke('plans', 'Hub', 's2', 'c' || i, 'pending-' || i, 'x'))
  FROM generate_series(1, 5000) i;
SELECT relname, last_analyze IS NULL AND last_autoanalyze IS NULL AS never_analyzed
  FROM pg_stat_user_tables
 WHERE schemaname = 'signalr_bp' AND relname IN ('connection', 'group_member', 'invocation')
 ORDER BY 1;

-- every registry operation once, then how the large tables were read
CREATE FUNCTION public.registry_round(tag text) RETURNS TABLE (relname name, seq_scan bigint, index_used boolean)
LANGUAGE plpgsql AS $$
BEGIN
	-- this session's counts not yet flushed to the statistics system: compare before and after
	CREATE TEMP TABLE counts_before ON COMMIT DROP AS
		SELECT t.relname, t.seq_scan, t.idx_scan FROM pg_stat_xact_user_tables t WHERE t.schemaname = 'signalr_bp';
	PERFORM signalr_bp.connect('plans', 's2', 'Hub', 'new-' || tag, 'u1');
	PERFORM signalr_bp.connect_many('plans', 's2', 'Hub', ARRAY(SELECT tag || '-' || i FROM generate_series(1, 100) i));
	PERFORM signalr_bp.add_to_group('plans', 'Hub', 'c7', 'room-' || tag, 's1');
	PERFORM signalr_bp.add_to_group('plans', 'Hub', 'c8', 'room-' || tag, 's2');
	PERFORM signalr_bp.add_to_group('plans', 'Hub', 'unknown-' || tag, 'room-' || tag);
	PERFORM signalr_bp.remove_from_group('plans', 'Hub', 'c7', 'room-' || tag, 's1');
	PERFORM signalr_bp.remove_from_group('plans', 'Hub', 'c8', 'room-' || tag, 's2');
	PERFORM signalr_bp.remove_from_groups('plans', 'Hub', array_agg('c' || i), array_agg('g' || i), 's1')
	   FROM generate_series(1, 5000) i;
	PERFORM signalr_bp.add_to_groups('plans', 'Hub', array_agg('c' || i), array_agg('g' || i), 's2')
	   FROM generate_series(1, 5000) i;
	PERFORM signalr_bp.send_all('plans', 'Hub', 'x');
	PERFORM signalr_bp.send_group('plans', 'Hub', 'g1', 'x');
	PERFORM signalr_bp.send_user('plans', 'Hub', 'u1', 'x');
	PERFORM signalr_bp.send_connection('plans', 'Hub', 'c1', 'x');
	PERFORM signalr_bp.send_batch('plans', 'Hub', ARRAY['groups {g1,g2}', 'users {u3}']::signalr_bp.audience[],
								  ARRAY['x', 'y']::bytea[], gen_random_uuid());
	PERFORM signalr_bp.invoke('plans', 'Hub', 's1', 'c9', 'inv-' || tag, 'x');
	PERFORM signalr_bp.complete_invocation('plans', 'inv-' || tag, 'y');
	PERFORM signalr_bp.invoke('plans', 'Hub', 's1', 'c10', 'cancelled-' || tag, 'x');
	PERFORM signalr_bp.cancel_invocation('plans', 'cancelled-' || tag);
	PERFORM signalr_bp.disconnect('plans', 'c11');
	PERFORM signalr_bp.connect('plans', 's1', 'Hub', 'c11', 'u5');
	PERFORM signalr_bp.disconnect('plans', 'new-' || tag);
	PERFORM count(*) FROM signalr_bp.group_connections('plans', 'Hub', 'g2');
	PERFORM count(*) FROM signalr_bp.connection_groups('plans', 'c2');
	PERFORM count(*) FROM signalr_bp.user_connections('plans', 'Hub', 'u2');
	PERFORM count(*) FROM signalr_bp.online_users('plans', 'Hub');
	PERFORM signalr_bp.lookup_connection('plans', 'c3');
	PERFORM signalr_bp.connection_count('plans', 'Hub');
	PERFORM count(*) FROM signalr_bp.servers('plans');
	PERFORM signalr_bp.heartbeat('plans', 's1');
	RETURN QUERY SELECT t.relname, t.seq_scan - b.seq_scan, t.idx_scan > b.idx_scan
	  FROM pg_stat_xact_user_tables t JOIN counts_before b USING (relname)
	 WHERE t.schemaname = 'signalr_bp' AND t.relname IN ('connection', 'group_member', 'invocation')
	 ORDER BY 1;
END $$;

-- right after the bulk load, never analyzed
BEGIN;
SELECT * FROM registry_round('before');
COMMIT;
-- the same after ANALYZE
ANALYZE signalr_bp.connection, signalr_bp.group_member, signalr_bp.invocation;
BEGIN;
SELECT * FROM registry_round('after');
COMMIT;
SELECT signalr_bp.connection_count('plans', 'Hub'),
	   (SELECT count(*) FROM signalr_bp.group_connections('plans', 'Hub', 'g5000')) AS g5000;

DROP FUNCTION registry_round(text);
SELECT signalr_bp.drop_application('plans');
ALTER TABLE signalr_bp.connection RESET (autovacuum_enabled);
ALTER TABLE signalr_bp.group_member RESET (autovacuum_enabled);
ALTER TABLE signalr_bp.invocation RESET (autovacuum_enabled);
