-- SignalR layer, client results (InvokeConnectionAsync).

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

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp.invoke(text, text, text, text, text, bytea),
	signalr_bp.complete_invocation(text, text, bytea),
	signalr_bp.cancel_invocation(text, text)
TO signalr_bp_hub;
