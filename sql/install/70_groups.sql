-- SignalR layer, group membership.
--
-- The holder of a connection keeps its groups in memory, to filter group
-- sends and to register them again after the registry was lost.  Its own
-- changes (from_server => itself) cost nothing more; a change made by
-- anyone else (another server, SQL) also appends a joined/left envelope to
-- the application stream, in order with the sends, so the holder learns of
-- it.  When the registry does not know the connection (it is being rebuilt
-- after a crash or failover) the envelope is appended anyway: joined with
-- flag UNREGISTERED, which tells the holder to register the membership
-- itself once it has registered the connection again.  A server whose own
-- registration is gone too gets SB003 from add_to_group for a connection
-- the registry does not know, so a holder never appends such an envelope
-- again for its own connection: it registers and rebuilds first.

CREATE UNLOGGED TABLE signalr_bp.group_member (
	app_id        integer NOT NULL,
	hub           text NOT NULL,
	group_name    text NOT NULL,
	connection_id text NOT NULL,
	PRIMARY KEY (app_id, hub, group_name, connection_id)
);
CREATE INDEX group_member_connection ON signalr_bp.group_member (app_id, connection_id);

-- One membership change, shared by the single and batch forms.  Every
-- statement is a primary-key lookup (hub is tested after the lookup, never
-- in the index condition), so no plan depends on statistics.  The
-- connection is locked, so a concurrent disconnect cannot leave an orphan
-- membership.
CREATE FUNCTION signalr_bp._join(p_app integer, p_hub text, p_connection text, p_group text,
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

-- A removal by anyone but the holder is told even when the registry has no
-- such membership: while the registry is rebuilt, the holder may still
-- have it.
CREATE FUNCTION signalr_bp._leave(p_app integer, p_hub text, p_connection text, p_group text,
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

CREATE FUNCTION signalr_bp.add_to_group(app text, hub text, connection_id text, group_name text,
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

CREATE FUNCTION signalr_bp.remove_from_group(app text, hub text, connection_id text, group_name text,
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

-- Batch forms: pairs connection_ids[i], group_names[i], one round trip (a
-- server rebuilding a lost registry, or an application moving many
-- connections at once).
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

CREATE FUNCTION signalr_bp.add_to_groups(app text, hub text, connection_ids text[], group_names text[],
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

CREATE FUNCTION signalr_bp.remove_from_groups(app text, hub text, connection_ids text[], group_names text[],
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

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp.add_to_group(text, text, text, text, text),
	signalr_bp.remove_from_group(text, text, text, text, text),
	signalr_bp.add_to_groups(text, text, text[], text[], text),
	signalr_bp.remove_from_groups(text, text, text[], text[], text)
TO signalr_bp_hub;
