-- Monitoring from outside the applications: every stream's counters for
-- pg_monitor (CloudNativePG's exporter role is a member), whose members may
-- use no application and so see nothing in the streams view.  Counters and
-- offsets only, never a payload.

CREATE FUNCTION signalr_bp.stream_metrics()
RETURNS SETOF signalr_bp.streams
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM signalr_bp.streams $$;
COMMENT ON FUNCTION signalr_bp.stream_metrics() IS
'every stream''s row of the streams view, for monitoring (pg_monitor)';

REVOKE ALL ON FUNCTION signalr_bp.stream_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION signalr_bp.stream_metrics() TO pg_monitor;
GRANT USAGE ON SCHEMA signalr_bp TO pg_monitor;
