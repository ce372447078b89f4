-- SignalR layer, client results (InvokeConnectionAsync).
--
-- invoke checks the registry (SB004 when the connection is unknown, so the
-- caller fails fast), records the invocation and appends *invoke*; the
-- holder's client answers through complete_invocation, which appends
-- *result* whether or not the invocation is still recorded (the invoking
-- server ignores ids it no longer waits for).  Disconnecting the target, or
-- reaping its server, appends *failed*.

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

-- Tell the invoking server (whichever it is) that an invocation failed.
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

CREATE FUNCTION signalr_bp.complete_invocation(app text, invocation_id text, payload bytea)
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

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp.invoke(text, text, text, text, text, bytea),
	signalr_bp.complete_invocation(text, text, bytea),
	signalr_bp.cancel_invocation(text, text, text)
TO signalr_bp_hub;
