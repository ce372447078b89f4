-- Creating, finding and dropping streams.
SELECT signalr_bp.create_stream('server-1') > 0 AS created;
SELECT signalr_bp.create_stream('server-fast', durable => false) > 0 AS created;
SELECT name, durable, low_offset, epoch FROM signalr_bp.stream ORDER BY name;
-- idempotent with if_not_exists, an error without it
SELECT signalr_bp.create_stream('server-1', true, if_not_exists => true)
	 = (SELECT id FROM signalr_bp.stream WHERE name = 'server-1') AS same_id;
SELECT signalr_bp.create_stream('server-1');
SELECT signalr_bp.create_stream('server-1', false, true);
-- names: any text of 1 to 200 bytes without control characters
SELECT signalr_bp.create_stream('host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77') > 0 AS created;
SELECT signalr_bp.create_stream('Grüße, 世界') > 0 AS created;
SELECT signalr_bp.create_stream(repeat('x', 200)) > 0 AS created;
SELECT signalr_bp.create_stream(repeat('x', 201));
SELECT signalr_bp.create_stream('');
SELECT signalr_bp.create_stream(NULL);
SELECT signalr_bp.create_stream(E'tab\there');
SELECT signalr_bp.create_stream('n', NULL);
-- head and channel of a new stream
SELECT signalr_bp.head('server-1'), signalr_bp.channel('server-1') ~ '^signalr_bp_[0-9]+$' AS channel_ok;
SELECT signalr_bp.head('nope');
-- drop
SELECT signalr_bp.drop_stream(repeat('x', 200));
SELECT signalr_bp.drop_stream('Grüße, 世界');
SELECT signalr_bp.drop_stream('nope');
SELECT signalr_bp.drop_stream('nope', if_exists => true);
SELECT signalr_bp.drop_stream(NULL);
-- a dropped stream's messages go with it, and the name is free again
SELECT signalr_bp.publish('host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77', 'bye');
SELECT signalr_bp.drop_stream('host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77');
SELECT signalr_bp.publish('host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77', 'gone');
SELECT signalr_bp.create_stream('host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77') > 0 AS created;
SELECT signalr_bp.head('host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77');
SELECT name FROM signalr_bp.stream ORDER BY name;
