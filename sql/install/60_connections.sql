-- SignalR layer, connections and their presence tally.

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

CREATE FUNCTION signalr_bp.disconnect(app text, connection_id text)
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

CREATE FUNCTION signalr_bp.connect_many(app text, server text, hub text,
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

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp.connect(text, text, text, text, text),
	signalr_bp.connect_many(text, text, text, text[], text[]),
	signalr_bp.disconnect(text, text)
TO signalr_bp_hub;
