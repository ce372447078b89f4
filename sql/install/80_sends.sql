-- SignalR layer, sends (src/sends.c).  Each appends one envelope to the
-- application stream and reads nothing of the registry: the hub servers
-- filter with the connections, users and groups they hold.  Single sends
-- return nothing; send_batch returns how many messages it appended.

-- Batch keys of applied send_batch calls: a retried batch whose key is here
-- appends nothing.  Logged, so a retry after a crash or failover is still
-- recognized; maintain() forgets keys older than
-- signalr_bp.batch_key_retention.  No foreign key: its check would lock the
-- application's row on every send; drop_application deletes the keys.
CREATE TABLE signalr_bp.sent_batch (
	app_id    integer NOT NULL,
	batch_key uuid NOT NULL,
	sent_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (app_id, batch_key)
);
CREATE INDEX sent_batch_sent_at ON signalr_bp.sent_batch (sent_at);

-- Forget batch keys older than signalr_bp.batch_key_retention (maintain()
-- runs it): at most 10,000 per call, oldest first, found through the
-- sent_at index whatever the statistics.
CREATE FUNCTION signalr_bp._forget_batch_keys()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- the GUC prints with a unit ('15min'); its default when the module is not loaded yet
	v_keep interval := COALESCE(current_setting('signalr_bp.batch_key_retention', true), '15min')::interval;
	v_count integer;
BEGIN
	PERFORM signalr_bp._guard();
	DELETE FROM signalr_bp.sent_batch
	 WHERE ctid = ANY (ARRAY(SELECT b.ctid FROM signalr_bp.sent_batch b
							  WHERE b.sent_at < pg_catalog.now() - v_keep
							  ORDER BY b.sent_at LIMIT 10000));
	GET DIAGNOSTICS v_count = ROW_COUNT;
	RETURN v_count;
END
$$;
COMMENT ON FUNCTION signalr_bp._forget_batch_keys() IS
'delete batch keys older than signalr_bp.batch_key_retention; returns how many';

CREATE FUNCTION signalr_bp.send_all(app text, hub text, payload bytea, excluded text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_all'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_all(text, text, bytea, text[]) IS
'send to every connection of the hub but the excluded ones';

CREATE FUNCTION signalr_bp.send_connection(app text, hub text, connection_id text, payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_connection'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_connection(text, text, text, bytea) IS
'send to one connection of the hub';

CREATE FUNCTION signalr_bp.send_connections(app text, hub text, connection_ids text[], payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_connections'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_connections(text, text, text[], bytea) IS
'send to these connections of the hub';

CREATE FUNCTION signalr_bp.send_group(app text, hub text, group_name text, payload bytea,
									  excluded text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_group'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_group(text, text, text, bytea, text[]) IS
'send to the members of a group but the excluded connections';

CREATE FUNCTION signalr_bp.send_groups(app text, hub text, group_names text[], payload bytea,
									   excluded text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_groups'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_groups(text, text, text[], bytea, text[]) IS
'send to the members of any of the groups (once each) but the excluded connections';

CREATE FUNCTION signalr_bp.send_user(app text, hub text, user_id text, payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_user'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_user(text, text, text, bytea) IS
'send to every connection of a user';

CREATE FUNCTION signalr_bp.send_users(app text, hub text, user_ids text[], payload bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_send_users'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_users(text, text, text[], bytea) IS
'send to every connection of these users';

-- Many sends of any kind in one call (and one round trip).  kinds[i] is
-- all, connection, group or user; targets[i] names the connection, group
-- or user (ignored for all); payloads[i] is the message.
CREATE FUNCTION signalr_bp.send_batch(app text, hub text, kinds text[], targets text[],
									  payloads bytea[], batch_key uuid DEFAULT NULL,
									  async_commit boolean DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'sbp_send_batch_kinds'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp.send_batch(text, text, text[], text[], bytea[], uuid, boolean) IS
'many sends in one call, in order; returns how many messages it appended (0 when batch_key was applied before); async_commit: commit without waiting for the WAL flush';

-- For triggers and jobs: a SignalR JSON-protocol invocation of method(args...).
-- A NULL method or args is an error (22004), not a message clients reject;
-- no arguments is '[]', one JSON null argument is 'null'.
CREATE FUNCTION signalr_bp.json_invocation(method text, args jsonb DEFAULT '[]')
RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF method IS NULL OR args IS NULL THEN
		RAISE EXCEPTION '% must not be null', CASE WHEN method IS NULL THEN 'method' ELSE 'args' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	RETURN convert_to(jsonb_build_object('type', 1, 'target', method,
		'arguments', CASE WHEN jsonb_typeof(args) = 'array' THEN args ELSE jsonb_build_array(args) END)::text,
		'UTF8') || '\x1e'::bytea;
END
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
	signalr_bp.send_batch(text, text, text[], text[], bytea[], uuid, boolean),
	signalr_bp.json_invocation(text, jsonb)
TO signalr_bp_hub;
