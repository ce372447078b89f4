-- SignalR layer, applications.
--
-- SignalR functions are SECURITY DEFINER with search_path pinned to
-- pg_catalog, pg_temp; every table is schema-qualified.  Each first calls
-- signalr_bp._app_id(), which checks that the calling role is a member of
-- the application's owner: one application cannot see or touch another's
-- state.  The registry (servers, connections, groups, invocations) is
-- unlogged soft state that hub servers rebuild: after a crash or a failover
-- it is empty, the application's registry_epoch moves, and servers
-- re-register.  Messages are in the servers' streams, which are logged.

CREATE TABLE signalr_bp.application (
	id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name            text NOT NULL UNIQUE,
	owner           oid NOT NULL,
	durable         boolean NOT NULL DEFAULT true,	-- servers' streams
	server_ttl      interval NOT NULL DEFAULT '30 seconds',
	registry_epoch  integer NOT NULL DEFAULT 1,
	created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('signalr_bp.application', '');

-- present while the unlogged registry of the application is intact
CREATE UNLOGGED TABLE signalr_bp.registry_alive (
	app_id integer PRIMARY KEY
);

CREATE FUNCTION signalr_bp._app_id(app text)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_app_id'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION signalr_bp._check_name(p_value text, p_what text, p_max integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_value IS NULL THEN
		RAISE EXCEPTION '% must not be null', p_what USING ERRCODE = 'null_value_not_allowed';
	ELSIF p_value = '' THEN
		RAISE EXCEPTION '% must not be empty', p_what USING ERRCODE = 'invalid_name';
	ELSIF octet_length(p_value) > p_max THEN
		RAISE EXCEPTION '% is too long', p_what USING ERRCODE = 'name_too_long',
			DETAIL = format('The value has %s bytes; the limit is %s.', octet_length(p_value), p_max);
	ELSIF p_value ~ '[\x01-\x1f\x7f]' THEN
		RAISE EXCEPTION '% must not contain control characters', p_what USING ERRCODE = 'invalid_name';
	END IF;
END
$$;

-- Applications -----------------------------------------------------------

CREATE FUNCTION signalr_bp.create_application(name text, owner regrole DEFAULT NULL,
											  durable boolean DEFAULT true,
											  server_ttl interval DEFAULT '30 seconds')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id integer;
BEGIN
	PERFORM signalr_bp._check_name(name, 'application name', 200);
	IF server_ttl IS NULL OR server_ttl < interval '1 second' THEN
		RAISE EXCEPTION 'server_ttl must be at least 1 second' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF durable IS NULL THEN
		RAISE EXCEPTION 'durable must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	INSERT INTO signalr_bp.application (name, owner, durable, server_ttl)
	VALUES (name, COALESCE(owner::oid, session_user::regrole::oid), durable, server_ttl)
	RETURNING id INTO v_id;
	INSERT INTO signalr_bp.registry_alive VALUES (v_id);
	RETURN v_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'application "%" already exists', name USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION signalr_bp.create_application(text, regrole, boolean, interval) IS
'create an application (a SignalR deployment); members of owner (default: the session user) may use it';

CREATE FUNCTION signalr_bp.drop_application(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(name);
	v_server record;
BEGIN
	FOR v_server IN SELECT s.name FROM signalr_bp.server s WHERE s.app_id = v_app LOOP
		PERFORM signalr_bp._remove_server(v_app, v_server.name, 'application dropped');
	END LOOP;
	DELETE FROM signalr_bp.registry_alive WHERE app_id = v_app;
	DELETE FROM signalr_bp.application WHERE id = v_app;
END
$$;

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp._check_name(text, text, integer)
TO signalr_bp_hub;
