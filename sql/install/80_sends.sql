-- SignalR layer, sends.  Each resolves its audience against the registry in
-- the sending transaction and appends one envelope to the stream of each
-- server holding a target.  They return the number of servers reached (0 is
-- not an error).

CREATE FUNCTION signalr_bp._envelope(kind integer, hub text, ids text[], payload bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'sbp_envelope'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION signalr_bp._envelope(integer, text, text[], bytea) IS
'encode a routed message for a hub server''s stream (format in src/signalr.c)';

-- Each resolves its audience against the registry in the sending
-- transaction and appends one envelope to the stream of each server holding
-- a target.  They return the number of servers reached (0 is not an error).

CREATE FUNCTION signalr_bp._deliver(p_app integer, p_hub text, p_connections text[],
									p_payload bytea)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v record;
	v_servers integer := 0;
BEGIN
	IF p_payload IS NULL THEN
		RAISE EXCEPTION 'message payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	FOR v IN
		-- by primary key, hub tested after (OFFSET 0 keeps it out of the index
		-- choice: with stale statistics it could pick a scan of the whole hub)
		SELECT s.stream, array_agg(DISTINCT c.connection_id) AS ids
		  FROM (SELECT k.connection_id, k.server, k.hub FROM signalr_bp.connection k
				 WHERE k.app_id = p_app AND k.connection_id = ANY (p_connections)
				OFFSET 0) c
		  JOIN signalr_bp.server s ON s.app_id = p_app AND s.name = c.server
		 WHERE c.hub = p_hub
		 GROUP BY s.stream
	LOOP
		PERFORM signalr_bp.publish(v.stream, signalr_bp._envelope(2, p_hub, v.ids, p_payload));
		v_servers := v_servers + 1;
	END LOOP;
	RETURN v_servers;
END
$$;

CREATE FUNCTION signalr_bp.send_all(app text, hub text, payload bytea, excluded text[] DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_streams text[];
BEGIN
	IF payload IS NULL THEN
		RAISE EXCEPTION 'message payload must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT array_agg(s.stream) INTO v_streams FROM signalr_bp.server s WHERE s.app_id = v_app;
	IF v_streams IS NULL THEN
		RETURN 0;
	END IF;
	PERFORM signalr_bp.publish(v_streams, signalr_bp._envelope(1, hub, COALESCE(excluded, '{}'), payload));
	RETURN cardinality(v_streams);
END
$$;
COMMENT ON FUNCTION signalr_bp.send_all(text, text, bytea, text[]) IS
'send to every connection of the hub (but the excluded ones), through every live server';

CREATE FUNCTION signalr_bp.send_connections(app text, hub text, connection_ids text[], payload bytea)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN signalr_bp._deliver(signalr_bp._app_id(app), hub, connection_ids, payload);
END
$$;

CREATE FUNCTION signalr_bp.send_groups(app text, hub text, group_names text[], payload bytea,
									   excluded text[] DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN signalr_bp._deliver(v_app, hub,
		ARRAY(SELECT g.connection_id FROM signalr_bp.group_member g
			   WHERE g.app_id = v_app AND g.hub = send_groups.hub AND g.group_name = ANY (group_names)
				 AND NOT g.connection_id = ANY (COALESCE(excluded, '{}'))),
		payload);
END
$$;

CREATE FUNCTION signalr_bp.send_users(app text, hub text, user_ids text[], payload bytea)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
BEGIN
	RETURN signalr_bp._deliver(v_app, hub,
		ARRAY(SELECT c.connection_id FROM signalr_bp.connection c
			   WHERE c.app_id = v_app AND c.hub = send_users.hub AND c.user_id = ANY (user_ids)),
		payload);
END
$$;

-- single-target forms, named as HubLifetimeManager's methods
CREATE FUNCTION signalr_bp.send_connection(app text, hub text, connection_id text, payload bytea)
RETURNS integer LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT signalr_bp.send_connections(app, hub, ARRAY[connection_id], payload) $$;
CREATE FUNCTION signalr_bp.send_group(app text, hub text, group_name text, payload bytea,
									  excluded text[] DEFAULT '{}')
RETURNS integer LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT signalr_bp.send_groups(app, hub, ARRAY[group_name], payload, excluded) $$;
CREATE FUNCTION signalr_bp.send_user(app text, hub text, user_id text, payload bytea)
RETURNS integer LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT signalr_bp.send_users(app, hub, ARRAY[user_id], payload) $$;

-- Batch form: many sends of any kind in one call (and one round trip).
-- kinds[i] is all, connection, group or user; targets[i] names the
-- connection, group or user (NULL for all); payloads[i] is the message.
CREATE FUNCTION signalr_bp.send_batch(app text, hub text, kinds text[], targets text[],
									  payloads bytea[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v_servers integer := 0;
	n integer := cardinality(kinds);
BEGIN
	IF kinds IS NULL OR targets IS NULL OR payloads IS NULL THEN
		RAISE EXCEPTION 'kinds, targets and payloads must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF cardinality(targets) <> n OR cardinality(payloads) <> n THEN
		RAISE EXCEPTION 'kinds, targets and payloads must have the same length'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	FOR i IN 1..n LOOP
		v_servers := v_servers + CASE kinds[i]
			WHEN 'all' THEN signalr_bp.send_all(app, hub, payloads[i])
			WHEN 'connection' THEN signalr_bp._deliver(v_app, hub, ARRAY[targets[i]], payloads[i])
			WHEN 'group' THEN signalr_bp.send_groups(app, hub, ARRAY[targets[i]], payloads[i])
			WHEN 'user' THEN signalr_bp.send_users(app, hub, ARRAY[targets[i]], payloads[i])
		END;
		IF kinds[i] IS NULL OR kinds[i] NOT IN ('all', 'connection', 'group', 'user') THEN
			RAISE EXCEPTION 'invalid send kind "%"', kinds[i] USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Use all, connection, group or user.';
		END IF;
	END LOOP;
	RETURN v_servers;
END
$$;
COMMENT ON FUNCTION signalr_bp.send_batch(text, text, text[], text[], bytea[]) IS
'many sends in one call; returns the total number of server deliveries';

-- For triggers and jobs: a SignalR JSON-protocol invocation of method(args...)
CREATE FUNCTION signalr_bp.json_invocation(method text, args jsonb DEFAULT '[]')
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT convert_to(jsonb_build_object('type', 1, 'target', method,
		'arguments', CASE WHEN jsonb_typeof(args) = 'array' THEN args ELSE jsonb_build_array(args) END)::text,
		'UTF8') || '\x1e'::bytea
$$;
COMMENT ON FUNCTION signalr_bp.json_invocation(text, jsonb) IS
'a SignalR JSON hub-protocol Invocation message (record separator included), for sends from SQL';

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp.send_all(text, text, bytea, text[]),
	signalr_bp.send_connection(text, text, text, bytea),
	signalr_bp.send_connections(text, text, text[], bytea),
	signalr_bp.send_group(text, text, text, bytea, text[]),
	signalr_bp.send_groups(text, text, text[], bytea, text[]),
	signalr_bp.send_user(text, text, text, bytea),
	signalr_bp.send_users(text, text, text[], bytea),
	signalr_bp.send_batch(text, text, text[], text[], bytea[]),
	signalr_bp.json_invocation(text, jsonb)
TO signalr_bp_hub;
