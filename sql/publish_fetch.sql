-- Publishing is transactional; fetching returns committed messages in commit order.
SELECT signalr_bp.create_application('pf') > 0 AS created;
SELECT signalr_bp.create_stream('pf/s1') > 0, signalr_bp.create_stream('pf/s2', false) > 0;
SELECT signalr_bp.publish('pf/s1', 'one');
SELECT signalr_bp.publish_batch('pf/s1', ARRAY['two', 'three']::bytea[]);
SELECT signalr_bp.publish_batch('pf/s1', '{}'::bytea[]);
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('pf/s1', 0);
-- rolled back: nothing
BEGIN;
SELECT signalr_bp.publish('pf/s1', 'never');
ROLLBACK;
-- savepoints: rolled back parts vanish, released parts stay
BEGIN;
SELECT signalr_bp.publish('pf/s1', 'kept-1');
SAVEPOINT a;
SELECT signalr_bp.publish('pf/s1', 'dropped-1');
SAVEPOINT b;
SELECT signalr_bp.publish('pf/s1', 'dropped-2');
ROLLBACK TO a;
SAVEPOINT c;
SELECT signalr_bp.publish('pf/s1', 'kept-2');
RELEASE c;
SELECT signalr_bp.publish(ARRAY['pf/s1', 'pf/s2', 'pf/s1'], 'to-both');
COMMIT;
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('pf/s1', 3);
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('pf/s2', 0);
-- an error caught in PL/pgSQL rolls back only its block's messages
DO $$
BEGIN
	PERFORM signalr_bp.publish('pf/s1', 'block-kept');
	BEGIN
		PERFORM signalr_bp.publish('pf/s1', 'block-dropped');
		PERFORM 1 / 0;
	EXCEPTION WHEN division_by_zero THEN
		NULL;
	END;
END $$;
SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('pf/s1', 6);
-- limits and resume points
SELECT msg_offset FROM signalr_bp.fetch('pf/s1', 1, max_messages => 2);
SELECT msg_offset FROM signalr_bp.fetch('pf/s1', 7);
SELECT signalr_bp.head('pf/s1'), signalr_bp.head('pf/s2');
-- packed form: [int64 offset][int32 length][payload] per message
SELECT next_offset, message_count, length(messages) FROM signalr_bp.fetch_packed('pf/s1', 4);
SELECT get_byte(messages, 7) AS first_offset_low_byte,
	   get_byte(messages, 11) AS first_length_low_byte,
	   convert_from(substring(messages from 13 for 6), 'UTF8') AS first_payload
  FROM signalr_bp.fetch_packed('pf/s1', 4);
-- max_bytes bounds the value, headers included; the first message always fits
SELECT next_offset, message_count FROM signalr_bp.fetch_packed('pf/s1', 0, max_bytes => 6);
SELECT next_offset, message_count, length(messages) FROM signalr_bp.fetch_packed('pf/s1', 0, max_bytes => 40);
-- a larger max_bytes than one call returns (64 MB) is clamped, not refused
SELECT next_offset, message_count FROM signalr_bp.fetch_packed('pf/s1', 0, max_bytes => 2147483647);
SELECT count(*) FROM signalr_bp.fetch('pf/s1', 0, max_messages => 2147483647);
SELECT next_offset, message_count, length(messages) FROM signalr_bp.fetch_packed('pf/s1', 7);
-- follow: fetch_packed as rows until wait_ms is over, [int64 next_offset] before the messages
SELECT ('x' || encode(substring(r from 1 for 8), 'hex'))::bit(64)::bigint AS next_offset,
	   length(r) - 8 AS packed_length
  FROM signalr_bp.follow('pf/s1', 4, wait_ms => 0) r;
SELECT ('x' || encode(substring(r from 1 for 8), 'hex'))::bit(64)::bigint AS next_offset,
	   length(r) - 8 AS packed_length
  FROM signalr_bp.follow('pf/s1', 0, max_bytes => 40, wait_ms => 1500) r;
-- in the select list, each row is sent as it is read; at the head, no row
SELECT count(*) AS rows_at_head FROM (SELECT signalr_bp.follow('pf/s1', 7, wait_ms => 50)) x;
-- many messages in one transaction are split into chunks of about chunk_size bytes
SELECT signalr_bp.publish_batch('pf/s2', array_agg(convert_to(lpad(i::text, 300, '.'), 'UTF8')))
  FROM generate_series(1, 1000) i;
SELECT count(*) AS chunks, sum(last_offset - first_offset + 1) AS messages,
	   max(length(data)) <= 8000 AS within_chunk_size
  FROM (SELECT * FROM signalr_bp.seg_f0 UNION ALL SELECT * FROM signalr_bp.seg_f1
		UNION ALL SELECT * FROM signalr_bp.seg_f2 UNION ALL SELECT * FROM signalr_bp.seg_f3) c
 WHERE stream_id = (SELECT id FROM signalr_bp.stream WHERE local_name = 's2');
SELECT count(*), min(msg_offset), max(msg_offset),
	   bool_and(convert_from(payload, 'UTF8') = lpad(msg_offset::text, 300, '.')) AS payloads_match
  FROM signalr_bp.fetch('pf/s2', 1, max_messages => 5000);
-- payloads larger than a page (no 8000-byte cap, unlike NOTIFY) round-trip intact
SELECT signalr_bp.publish('pf/s1', convert_to(repeat('ab', 100000), 'UTF8'));
SELECT msg_offset, length(payload), md5(payload) = md5(convert_to(repeat('ab', 100000), 'UTF8')) AS intact
  FROM signalr_bp.fetch('pf/s1', 7);
SELECT length(payload) FROM signalr_bp.fetch('pf/s1', 0, max_messages => 100) WHERE msg_offset = 7;
-- max_bytes bounds the packed batch, except that one message always comes
SELECT next_offset, message_count FROM signalr_bp.fetch_packed('pf/s1', 6, max_bytes => 1000);
SELECT next_offset, message_count FROM signalr_bp.fetch_packed('pf/s1', 7, max_bytes => 1000);
-- binary payloads with zero bytes
SELECT signalr_bp.publish('pf/s1', '\x00ff00'::bytea);
SELECT msg_offset, payload FROM signalr_bp.fetch('pf/s1', 8);
-- a waiting fetch returns as soon as something arrives or after wait_ms
SELECT count(*) FROM signalr_bp.fetch('pf/s1', 9, wait_ms => 50);
-- the monitoring view
SELECT name, durable, low_offset, head FROM signalr_bp.streams WHERE name IN ('pf/s1', 'pf/s2') ORDER BY name;
