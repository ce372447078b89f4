-- The guard every function that touches the extension's state calls first
-- (src/guard.c): on a standby it fails with SQLSTATE 25006 "signalr_bp
-- requires a primary server"; on the primary it takes the extension lock
-- (AccessShareLock on the extension, until the transaction ends), so that
-- DROP EXTENSION waits for calls in progress instead of breaking them, and
-- calls that wait for DROP EXTENSION fail cleanly (42704) once it commits.
-- SQL and PL/pgSQL functions: PERFORM signalr_bp._guard(); first.

CREATE FUNCTION signalr_bp._guard()
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_guard_sql'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION signalr_bp._guard() IS
'fail on a standby (25006); otherwise lock the extension against DROP EXTENSION until the transaction ends';

GRANT EXECUTE ON FUNCTION signalr_bp._guard() TO signalr_bp_hub;
