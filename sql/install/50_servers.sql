-- SignalR layer, hub servers: registration, heartbeats, reaping.

-- Unlogged like the rest of the registry: heartbeats and the row locks that
-- serialize connect against reap write no WAL, so registry transactions
-- commit without a flush.  After a crash or failover it is empty; servers
-- get SB003 from heartbeat() and register again.  No message is lost
-- meanwhile: sends never read the registry, and the application stream is
-- logged.
CREATE UNLOGGED TABLE signalr_bp.server (
	app_id        integer NOT NULL REFERENCES signalr_bp.application ON DELETE CASCADE,
	name          text NOT NULL,
	registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	heartbeat_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, name)
);

-- A server's row, locked against a concurrent reap; errors if it is gone.
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

-- The registry's epoch, moved when the unlogged registry was lost.
CREATE FUNCTION signalr_bp._registry_epoch(p_app integer)
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

CREATE FUNCTION signalr_bp.register_server(app text, server text,
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

CREATE FUNCTION signalr_bp.deregister_server(app text, server text)
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

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp.register_server(text, text),
	signalr_bp.heartbeat(text, text),
	signalr_bp.deregister_server(text, text)
TO signalr_bp_hub;
