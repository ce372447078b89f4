-- Re-creating the extension on a running server starts streams afresh:
-- shared state of the old installation's streams does not leak into new ones.
SELECT signalr_bp.create_application('ri') > 0 AS created;
SELECT signalr_bp.create_stream('ri/again') > 0;
SELECT signalr_bp.publish_batch('ri/again', ARRAY['1', '2', '3']::bytea[]);
SELECT signalr_bp.head('ri/again');
SELECT id AS old_id FROM signalr_bp.stream WHERE local_name = 'again' \gset
DROP EXTENSION signalr_bp;
CREATE EXTENSION signalr_bp;
-- give the new 'ri/again' the same stream id as the old one (ri/$signalr is 1)
SELECT signalr_bp.create_application('ri', max_streams => 1000) > 0 AS created;
SELECT count(signalr_bp.create_stream('ri/filler-' || i)) > 0 AS filled FROM generate_series(2, :old_id - 1) i;
SELECT signalr_bp.create_stream('ri/again') = :old_id AS same_id;
SELECT signalr_bp.publish('ri/again', 'first');
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('ri/again', 0);
SELECT name, head, messages IS NULL OR messages = 1 AS counted_once FROM signalr_bp.streams WHERE name = 'ri/again';
