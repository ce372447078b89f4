-- SignalR layer, presence: who is connected, across all servers.

-- (PL/pgSQL so that the application is resolved once, not once per row)
CREATE FUNCTION signalr_bp.connection_count(app text, hub text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	IF hub IS NOT NULL THEN
		PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	END IF;
	RETURN (SELECT COALESCE(sum(t.n), 0)::bigint FROM signalr_bp.connection_tally t
			 WHERE t.app_id = v_app AND (connection_count.hub IS NULL OR t.hub = connection_count.hub));
END
$$;
COMMENT ON FUNCTION signalr_bp.connection_count(text, text) IS
'connections registered across all servers, of one hub or of all';

CREATE FUNCTION signalr_bp.group_connections(app text, hub text, group_name text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(group_name, 'group name', 1024);
	RETURN QUERY SELECT g.connection_id FROM signalr_bp.group_member g
	 WHERE g.app_id = v_app AND g.hub = group_connections.hub
	   AND g.group_name = group_connections.group_name
	 ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.group_connections(text, text, text) IS
'the members of a group, across all servers';

CREATE FUNCTION signalr_bp.connection_groups(app text, connection_id text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(connection_id, 'connection id', 256);
	RETURN QUERY SELECT g.group_name FROM signalr_bp.group_member g
	 WHERE g.app_id = v_app AND g.connection_id = connection_groups.connection_id
	 ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.connection_groups(text, text) IS
'the groups a connection belongs to';

CREATE FUNCTION signalr_bp.user_connections(app text, hub text, user_id text)
RETURNS SETOF text LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	PERFORM signalr_bp._check_name(user_id, 'user id', 1024);
	RETURN QUERY SELECT c.connection_id FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.hub = user_connections.hub AND c.user_id = user_connections.user_id
	 ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.user_connections(text, text, text) IS
'the connections of a user, across all servers';

-- It reads a whole hub.  In (hub, user) index order, with no sort: before the
-- first ANALYZE the planner would pick a bitmap scan and a sort that spills to
-- disk (2.6x slower at 200,000 connections), after it a sequential scan.
CREATE FUNCTION signalr_bp.online_users(app text, hub text)
RETURNS TABLE (user_id text, connections bigint) LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	PERFORM signalr_bp._check_name(hub, 'hub name', 256);
	RETURN QUERY SELECT c.user_id, count(*) FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.hub = online_users.hub AND c.user_id IS NOT NULL
	 GROUP BY c.user_id ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.online_users(text, text) IS
'users with at least one connection to the hub, and how many';

CREATE FUNCTION signalr_bp.servers(app text)
RETURNS TABLE (server text, connections bigint, heartbeat_age interval, registered_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN QUERY SELECT s.name,
		   (SELECT COALESCE(sum(t.n), 0)::bigint FROM signalr_bp.connection_tally t
			 WHERE t.app_id = s.app_id AND t.server = s.name),
		   pg_catalog.now() - s.heartbeat_at, s.registered_at
	  FROM signalr_bp.server s WHERE s.app_id = v_app ORDER BY 1;
END
$$;
COMMENT ON FUNCTION signalr_bp.servers(text) IS
'live hub servers of the application, with their connection counts and heartbeat age';

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp.connection_count(text, text),
	signalr_bp.group_connections(text, text, text),
	signalr_bp.connection_groups(text, text),
	signalr_bp.user_connections(text, text, text),
	signalr_bp.online_users(text, text),
	signalr_bp.servers(text)
TO signalr_bp_hub;
