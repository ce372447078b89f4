-- Retention: rotating the ring drops the oldest segment and moves low_offset.
SELECT signalr_bp.create_application('ret') > 0 AS created;
SELECT signalr_bp.create_stream('ret/r') > 0, signalr_bp.create_stream('ret/rf', false) > 0;
SELECT signalr_bp.publish_batch('ret/r', ARRAY['a', 'b', 'c']::bytea[]);
SELECT signalr_bp.publish_batch('ret/rf', ARRAY['a', 'b']::bytea[]);
-- nothing is due yet
SELECT signalr_bp.maintain();
-- force a full turn of both rings: every message now lies in a dropped segment
SELECT signalr_bp.maintain(force => true) FROM generate_series(1, 4);
SELECT name, low_offset, head FROM signalr_bp.streams WHERE application = 'ret' AND name <> 'ret/$signalr' ORDER BY name;
-- a consumer behind the retained range is told so (SB001), never silently skipped
SELECT try($$SELECT * FROM signalr_bp.fetch('ret/r', 0)$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('ret/rf', 1)$$);
SELECT count(*) FROM signalr_bp.fetch('ret/r', 3);
-- offsets continue after retention
SELECT signalr_bp.publish('ret/r', 'd');
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('ret/r', 3);
-- one rotation keeps the three newest segments: recent messages survive it
SELECT signalr_bp.maintain(force => true);
SELECT msg_offset FROM signalr_bp.fetch('ret/r', 3);
SELECT (SELECT count(DISTINCT generation) FROM signalr_bp.segment) AS distinct_generations;
