-- Bad input: clear errors with SQLSTATEs, and nothing half-written.
SELECT signalr_bp.create_application('err') > 0 AS created;
SELECT signalr_bp.create_stream('err/e') > 0;
SELECT try($$SELECT signalr_bp.publish(NULL, 'x')$$);
SELECT try($$SELECT signalr_bp.publish('err/e', NULL)$$);
SELECT try($$SELECT signalr_bp.publish('', 'x')$$);
SELECT try($$SELECT signalr_bp.publish('err/' || repeat('y', 253), 'x')$$);
SELECT try($$SELECT signalr_bp.publish('err/unknown', 'x')$$);
SELECT try($$SELECT signalr_bp.publish(NULL::text[], 'x')$$);
SELECT try($$SELECT signalr_bp.publish(ARRAY['err/e', NULL], 'x')$$);
SELECT try($$SELECT signalr_bp.publish(ARRAY[['err/e'], ['err/e']], 'x')$$);
SELECT try($$SELECT signalr_bp.publish(ARRAY['err/e', 'err/unknown'], 'x')$$);
SELECT try($$SELECT signalr_bp.publish_batch('err/e', NULL)$$);
SELECT try($$SELECT signalr_bp.publish_batch('err/e', ARRAY['a', NULL]::bytea[])$$);
SELECT try($$SELECT signalr_bp.publish_batch(NULL, ARRAY['a']::bytea[])$$);
-- payload size limit
SET signalr_bp.max_message_size = 100;
SELECT try($$SELECT signalr_bp.publish('err/e', convert_to(repeat('z', 101), 'UTF8'))$$);
SELECT try($$SELECT signalr_bp.publish('err/e', convert_to(repeat('z', 100), 'UTF8'))$$);
SELECT try($$SELECT signalr_bp.publish_batch('err/e', ARRAY['ok', convert_to(repeat('z', 101), 'UTF8')])$$);
RESET signalr_bp.max_message_size;
-- none of the failed calls left anything behind: only the one good message
SELECT msg_offset, length(payload) FROM signalr_bp.fetch('err/e', 0);
-- fetch arguments
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', NULL)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', -1)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', 0, 0)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', 0, NULL)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', 0, 10, NULL)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch_packed('err/e', 0, NULL)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', 0, 10, -5)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch_packed('err/e', 0, -1)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('err/unknown', 0)$$);
-- resuming beyond the head means the stream lost messages: SB002, never silence
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', 2)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('err/e', 1)$$);
-- transactions that cannot publish
BEGIN READ ONLY;
SELECT signalr_bp.publish('err/e', 'ro');
ROLLBACK;
BEGIN;
SELECT signalr_bp.publish('err/e', 'two-phase');
PREPARE TRANSACTION 'p1';
SELECT count(*) FROM pg_prepared_xacts;
SELECT msg_offset FROM signalr_bp.fetch('err/e', 0);
-- an unknown name under the extension's reserved prefix
SET signalr_bp.nonexistent = 1;
