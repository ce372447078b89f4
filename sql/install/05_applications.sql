-- Applications: the unit of trust.  Every stream and every piece of SignalR
-- state belongs to one application; a role may use them iff it has the
-- privileges of the application's owner.  (Created before the streams, which
-- reference it.)
--
-- SignalR functions are SECURITY DEFINER with search_path pinned to
-- pg_catalog, pg_temp; every table is schema-qualified.  Each first calls
-- signalr_bp._app_id() (src/applications.c), which checks that the calling
-- role has the privileges of the application's owner, and says "does not
-- exist" both for a missing application and for one the caller may not use.
-- The registry (servers, connections, groups, invocations) is unlogged soft
-- state that hub servers rebuild: after a crash or a failover it is empty,
-- the application's registry_epoch moves, and servers re-register.  Messages
-- are in the application's streams, which are logged.

CREATE TABLE signalr_bp.application (
	id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name            text NOT NULL UNIQUE,
	-- regrole: pg_dump writes the role's name, a restore resolves it
	owner           regrole NOT NULL,
	durable         boolean NOT NULL DEFAULT true,	-- its SignalR stream
	server_ttl      interval NOT NULL DEFAULT '30 seconds',
	max_streams     integer NOT NULL DEFAULT 64 CHECK (max_streams > 0),
	registry_epoch  integer NOT NULL DEFAULT 1,
	created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- applications and their streams survive pg_dump, with their id counters
SELECT pg_catalog.pg_extension_config_dump('signalr_bp.application', '');
SELECT pg_catalog.pg_extension_config_dump('signalr_bp.application_id_seq', '');

-- present while the unlogged registry of the application is intact
CREATE UNLOGGED TABLE signalr_bp.registry_alive (
	app_id integer PRIMARY KEY
);

CREATE FUNCTION signalr_bp._app_id(app text)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_app_id'
LANGUAGE C CALLED ON NULL INPUT STABLE;
COMMENT ON FUNCTION signalr_bp._app_id(text) IS
'the application''s id if the calling role may use it; else "does not exist"';

-- the name rules (src/names.c), for SQL functions and the name domains
CREATE FUNCTION signalr_bp._check_name(p_value text, p_what text, p_max integer,
									   p_slash_ok boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_check_name_sql'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE;
COMMENT ON FUNCTION signalr_bp._check_name(text, text, integer, boolean) IS
'raise an error unless p_value is a valid name of 1 to p_max bytes (valid text, no control characters, no "/" unless p_slash_ok)';

-- for the streams view: may the current role use what owner owns?
CREATE FUNCTION signalr_bp._may_use(owner regrole)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_may_use'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION signalr_bp._may_use(regrole) IS
'whether the current role has the privileges of owner';

-- Applications -----------------------------------------------------------

CREATE FUNCTION signalr_bp.create_application(name text, owner regrole DEFAULT NULL,
											  durable boolean DEFAULT true,
											  server_ttl interval DEFAULT '30 seconds',
											  max_streams integer DEFAULT 64)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id integer;
BEGIN
	PERFORM signalr_bp._guard();
	PERFORM signalr_bp._check_name(name, 'application name', 63, false);
	IF server_ttl IS NULL OR server_ttl OPERATOR(pg_catalog.<) interval '1 second' THEN
		RAISE EXCEPTION 'server_ttl must be at least 1 second' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF durable IS NULL THEN
		RAISE EXCEPTION 'durable must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF max_streams IS NULL OR max_streams OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_streams must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- a regrole given as a number need not name a role
	IF owner IS NOT NULL AND NOT EXISTS (SELECT FROM pg_catalog.pg_authid r WHERE r.oid OPERATOR(pg_catalog.=) owner) THEN
		RAISE EXCEPTION 'role with OID % does not exist', owner::oid USING ERRCODE = 'undefined_object';
	END IF;
	INSERT INTO signalr_bp.application (name, owner, durable, server_ttl, max_streams)
	VALUES (name, COALESCE(owner, session_user::regrole), durable, server_ttl, max_streams)
	RETURNING id INTO v_id;
	INSERT INTO signalr_bp.registry_alive VALUES (v_id);
	-- the stream that carries the application's SignalR traffic
	PERFORM signalr_bp._create_stream(v_id, '$signalr', durable);
	RETURN v_id;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'application "%" already exists', name USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION signalr_bp.create_application(text, regrole, boolean, interval, integer) IS
'create an application (a SignalR deployment) and its stream <name>/$signalr; roles with the privileges of owner (default: the session user) may use it';

CREATE FUNCTION signalr_bp.alter_application(name text, owner regrole DEFAULT NULL,
											 server_ttl interval DEFAULT NULL,
											 max_streams integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(name);
BEGIN
	IF server_ttl OPERATOR(pg_catalog.<) interval '1 second' THEN
		RAISE EXCEPTION 'server_ttl must be at least 1 second' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF max_streams OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_streams must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF owner IS NOT NULL AND NOT EXISTS (SELECT FROM pg_catalog.pg_authid r WHERE r.oid OPERATOR(pg_catalog.=) owner) THEN
		RAISE EXCEPTION 'role with OID % does not exist', owner::oid USING ERRCODE = 'undefined_object';
	END IF;
	-- the statement trigger empties every session's cache of owners
	UPDATE signalr_bp.application a
	   SET owner = COALESCE(alter_application.owner, a.owner),
		   server_ttl = COALESCE(alter_application.server_ttl, a.server_ttl),
		   max_streams = COALESCE(alter_application.max_streams, a.max_streams)
	 WHERE a.id OPERATOR(pg_catalog.=) v_app;
END
$$;
COMMENT ON FUNCTION signalr_bp.alter_application(text, regrole, interval, integer) IS
'change an application''s owner, server_ttl or max_streams (NULL keeps the current value)';

CREATE FUNCTION signalr_bp.drop_application(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(name);
	v_server record;
BEGIN
	-- nobody is left to tell that pending client results failed
	DELETE FROM signalr_bp.invocation WHERE app_id OPERATOR(pg_catalog.=) v_app;
	FOR v_server IN SELECT s.name FROM signalr_bp.server s WHERE s.app_id OPERATOR(pg_catalog.=) v_app LOOP
		PERFORM signalr_bp._remove_server(v_app, v_server.name, 'application dropped');
	END LOOP;
	DELETE FROM signalr_bp.registry_alive WHERE app_id OPERATOR(pg_catalog.=) v_app;
	DELETE FROM signalr_bp.sent_batch WHERE app_id OPERATOR(pg_catalog.=) v_app;
	PERFORM signalr_bp._drop_streams(v_app);
	DELETE FROM signalr_bp.application WHERE id OPERATOR(pg_catalog.=) v_app;
END
$$;
COMMENT ON FUNCTION signalr_bp.drop_application(text) IS
'drop an application with its registry and every stream it owns, messages included';

-- Caches never outlive a change: these statement-level triggers (and those
-- on signalr_bp.stream) empty every session's cache of names and owners.
CREATE FUNCTION signalr_bp._catalog_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'sbp_catalog_changed'
LANGUAGE C;
COMMENT ON FUNCTION signalr_bp._catalog_changed() IS
'trigger: sessions forget cached applications and streams when this transaction commits';
CREATE TRIGGER application_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signalr_bp.application
	FOR EACH STATEMENT EXECUTE FUNCTION signalr_bp._catalog_changed();

-- for hub servers (the name domains check names as the calling role)
GRANT EXECUTE ON FUNCTION
	signalr_bp._check_name(text, text, integer, boolean),
	signalr_bp._may_use(regrole)
TO signalr_bp_hub;
