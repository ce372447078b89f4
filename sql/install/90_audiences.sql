-- Names and audiences: name domains, the audience type (src/audience.c), and
-- sends to an audience.

-- Domains carrying the registry's name rules (non-empty, bounded, no control
-- characters); NULL passes, so a NULL user id stays possible.
CREATE FUNCTION signalr_bp._valid_name(p_value text, p_what text, p_max integer)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF p_value IS NOT NULL THEN
		PERFORM signalr_bp._check_name(p_value, p_what, p_max);
	END IF;
	RETURN true;
END
$$;
CREATE DOMAIN signalr_bp.hub_name AS text
	CHECK (signalr_bp._valid_name(VALUE, 'hub name', 256));
CREATE DOMAIN signalr_bp.connection_id AS text
	CHECK (signalr_bp._valid_name(VALUE, 'connection id', 256));
CREATE DOMAIN signalr_bp.group_name AS text
	CHECK (signalr_bp._valid_name(VALUE, 'group name', 1024));
CREATE DOMAIN signalr_bp.user_id AS text
	CHECK (signalr_bp._valid_name(VALUE, 'user id', 1024));

-- What routing knows about one connection: `audience @> connection_ref`.
CREATE TYPE signalr_bp.connection_ref AS (
	connection_id text,
	user_id       text,
	groups        text[]
);

-- A message's audience (src/audience.c): all, connections, groups or users,
-- each with excluded connections.  Text form: all | all except {c1,c2} |
-- connections {c1} | groups {g1,"room 2"} except {c3} | users {u1,u2}.
CREATE TYPE signalr_bp.audience;
CREATE FUNCTION signalr_bp.audience_in(cstring) RETURNS signalr_bp.audience
	AS 'MODULE_PATHNAME', 'sbp_audience_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_out(signalr_bp.audience) RETURNS cstring
	AS 'MODULE_PATHNAME', 'sbp_audience_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_recv(internal) RETURNS signalr_bp.audience
	AS 'MODULE_PATHNAME', 'sbp_audience_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_send(signalr_bp.audience) RETURNS bytea
	AS 'MODULE_PATHNAME', 'sbp_audience_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE signalr_bp.audience (
	INPUT = signalr_bp.audience_in,
	OUTPUT = signalr_bp.audience_out,
	RECEIVE = signalr_bp.audience_recv,
	SEND = signalr_bp.audience_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = extended
);
COMMENT ON TYPE signalr_bp.audience IS
'who a message is for: all, connections, groups or users, each with excluded connections';

CREATE FUNCTION signalr_bp.audience_all(excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_all' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_connections(connection_ids text[], excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_connections' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_groups(group_names text[], excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_groups' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_users(user_ids text[], excluded text[] DEFAULT '{}')
RETURNS signalr_bp.audience
AS 'MODULE_PATHNAME', 'sbp_audience_users' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_kind(signalr_bp.audience) RETURNS text
AS 'MODULE_PATHNAME', 'sbp_audience_kind' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_targets(signalr_bp.audience) RETURNS text[]
AS 'MODULE_PATHNAME', 'sbp_audience_targets' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_excluded(signalr_bp.audience) RETURNS text[]
AS 'MODULE_PATHNAME', 'sbp_audience_excluded' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp.audience_includes(signalr_bp.audience, signalr_bp.connection_ref)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_contains' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp._audience_included(signalr_bp.connection_ref, signalr_bp.audience)
RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_contained' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp._audience_eq(signalr_bp.audience, signalr_bp.audience) RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION signalr_bp._audience_ne(signalr_bp.audience, signalr_bp.audience) RETURNS boolean
AS 'MODULE_PATHNAME', 'sbp_audience_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR signalr_bp.@> (
	LEFTARG = signalr_bp.audience, RIGHTARG = signalr_bp.connection_ref,
	FUNCTION = signalr_bp.audience_includes, COMMUTATOR = OPERATOR(signalr_bp.<@)
);
CREATE OPERATOR signalr_bp.<@ (
	LEFTARG = signalr_bp.connection_ref, RIGHTARG = signalr_bp.audience,
	FUNCTION = signalr_bp._audience_included, COMMUTATOR = OPERATOR(signalr_bp.@>)
);
CREATE OPERATOR signalr_bp.= (
	LEFTARG = signalr_bp.audience, RIGHTARG = signalr_bp.audience,
	FUNCTION = signalr_bp._audience_eq, COMMUTATOR = OPERATOR(signalr_bp.=),
	NEGATOR = OPERATOR(signalr_bp.<>)
);
CREATE OPERATOR signalr_bp.<> (
	LEFTARG = signalr_bp.audience, RIGHTARG = signalr_bp.audience,
	FUNCTION = signalr_bp._audience_ne, COMMUTATOR = OPERATOR(signalr_bp.<>),
	NEGATOR = OPERATOR(signalr_bp.=)
);

-- The registry's view of one connection, for `audience @> lookup_connection(...)`.
CREATE FUNCTION signalr_bp.lookup_connection(app text, connection_id signalr_bp.connection_id)
RETURNS signalr_bp.connection_ref
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_app integer := signalr_bp._app_id(app);
	v signalr_bp.connection_ref;
BEGIN
	SELECT c.connection_id, c.user_id,
		   ARRAY(SELECT g.group_name FROM signalr_bp.group_member g
				  WHERE g.app_id = v_app AND g.connection_id = c.connection_id
				  ORDER BY g.group_name)
	  INTO v
	  FROM signalr_bp.connection c
	 WHERE c.app_id = v_app AND c.connection_id = lookup_connection.connection_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION signalr_bp.lookup_connection(text, signalr_bp.connection_id) IS
'a registered connection''s id, user and groups (NULL when unknown)';

-- Send to an audience (src/sends.c): the general form of every send_* function.
CREATE FUNCTION signalr_bp.send(app text, hub text, audience signalr_bp.audience, payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_audience'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send(text, text, signalr_bp.audience, bytea) IS
'send to an audience (one envelope in the application stream)';

CREATE FUNCTION signalr_bp.send_batch(app text, hub text, audiences signalr_bp.audience[],
									  payloads bytea[], batch_key uuid DEFAULT NULL,
									  async_commit boolean DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_send_batch_audiences'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_batch(text, text, signalr_bp.audience[], bytea[], uuid, boolean) IS
'payloads[i] to audiences[i], in order, in one call; returns how many messages it appended (0 when batch_key was applied before); async_commit: commit without waiting for the WAL flush';

-- for hub servers
GRANT EXECUTE ON FUNCTION
	signalr_bp._valid_name(text, text, integer),
	signalr_bp.audience_in(cstring),
	signalr_bp.audience_out(signalr_bp.audience),
	signalr_bp.audience_recv(internal),
	signalr_bp.audience_send(signalr_bp.audience),
	signalr_bp.audience_all(text[]),
	signalr_bp.audience_connections(text[], text[]),
	signalr_bp.audience_groups(text[], text[]),
	signalr_bp.audience_users(text[], text[]),
	signalr_bp.audience_kind(signalr_bp.audience),
	signalr_bp.audience_targets(signalr_bp.audience),
	signalr_bp.audience_excluded(signalr_bp.audience),
	signalr_bp.audience_includes(signalr_bp.audience, signalr_bp.connection_ref),
	signalr_bp._audience_included(signalr_bp.connection_ref, signalr_bp.audience),
	signalr_bp._audience_eq(signalr_bp.audience, signalr_bp.audience),
	signalr_bp._audience_ne(signalr_bp.audience, signalr_bp.audience),
	signalr_bp.lookup_connection(text, signalr_bp.connection_id),
	signalr_bp.send(text, text, signalr_bp.audience, bytea),
	signalr_bp.send_batch(text, text, signalr_bp.audience[], bytea[], uuid, boolean)
TO signalr_bp_hub;
