-- Privileges: nothing for PUBLIC.  Each concern grants its API to
-- signalr_bp_hub beside its functions; this sweep, last, makes sure nothing
-- else is reachable.

REVOKE ALL ON ALL TABLES IN SCHEMA signalr_bp FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA signalr_bp FROM PUBLIC;
REVOKE ALL ON SCHEMA signalr_bp FROM PUBLIC;
GRANT USAGE ON SCHEMA signalr_bp TO signalr_bp_hub;
