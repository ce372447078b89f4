-- SignalR layer, the application stream: every send, group change by a
-- non-holder and client-result step is one envelope (format in
-- src/signalr.c) appended to "<application>/$signalr", which every hub
-- server of the application consumes and filters with what it holds.

-- For the registry's functions, which checked the caller's access first.
CREATE FUNCTION signalr_bp._append(app_id integer, kind integer, hub text, list1 text[],
								   list2 text[], payload bytea, flags integer DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'sbp_signalr_append_sql'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION signalr_bp._append(integer, integer, text, text[], text[], bytea, integer) IS
'append one envelope to the application''s stream (internal: not granted)';
