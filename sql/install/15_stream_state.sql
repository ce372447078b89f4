-- Streams' shared state follows their rows (src/lifecycle.c): a stream that
-- is created gets its shared-memory entry at once (or the creation fails
-- with 54000 when signalr_bp.max_streams entries are in use); a stream that
-- is deleted, by whatever statement, gives its entry back when the deleting
-- transaction commits, and takes with it what that transaction published
-- to it.

CREATE FUNCTION signalr_bp._stream_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'sbp_stream_changed'
LANGUAGE C;
COMMENT ON FUNCTION signalr_bp._stream_changed() IS
'row trigger on signalr_bp.stream: reserves and releases the stream''s shared state';

CREATE TRIGGER shared_state
	AFTER INSERT OR DELETE ON signalr_bp.stream
	FOR EACH ROW EXECUTE FUNCTION signalr_bp._stream_changed();
