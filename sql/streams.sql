-- Creating, finding and dropping streams.  Every stream belongs to an
-- application and is named <application>/<local name>.
SELECT signalr_bp.create_application('app', durable => false) > 0 AS created;
-- an application comes with its SignalR stream, durable as the application says
SELECT a.name, s.local_name, s.durable, s.token ~ '^[0-9a-f]{32}$' AS token_ok
  FROM signalr_bp.stream s JOIN signalr_bp.application a ON a.id = s.app_id ORDER BY 1, 2;
SELECT signalr_bp.create_stream('app/server-1') > 0 AS created;
SELECT signalr_bp.create_stream('app/server-fast', durable => false) > 0 AS created;
SELECT local_name, durable, low_offset, epoch FROM signalr_bp.stream ORDER BY local_name;
-- idempotent with if_not_exists, an error without it
SELECT signalr_bp.create_stream('app/server-1', true, if_not_exists => true)
	 = (SELECT id FROM signalr_bp.stream WHERE local_name = 'server-1') AS same_id;
SELECT signalr_bp.create_stream('app/server-1');
SELECT signalr_bp.create_stream('app/server-1', false, true);
-- local names: any text of 1 to 192 bytes without control characters, "/" included
SELECT signalr_bp.create_stream('app/host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77') > 0 AS created;
SELECT signalr_bp.create_stream('app/Grüße, 世界') > 0 AS created;
SELECT signalr_bp.create_stream('app/a/b/c') > 0 AS created;
SELECT signalr_bp.create_stream('app/' || repeat('x', 192)) > 0 AS created;
SELECT signalr_bp.create_stream('app/' || repeat('x', 193));
SELECT signalr_bp.create_stream('app/');
SELECT signalr_bp.create_stream('');
SELECT signalr_bp.create_stream(NULL);
SELECT signalr_bp.create_stream(E'app/tab\there');
SELECT signalr_bp.create_stream(E'app/c1\u0085');
SELECT signalr_bp.create_stream(E'app/del\x7f');
SELECT signalr_bp.create_stream('app/n', NULL);
-- the application part: up to the first "/", and it must exist
SELECT signalr_bp.create_stream('no-application-part');
SELECT signalr_bp.create_stream('/x');
SELECT signalr_bp.create_stream('nope/x');
SELECT signalr_bp.create_stream(repeat('a', 64) || '/x');
-- the longest names compose: a 63-byte application and a 192-byte local name
SELECT signalr_bp.create_application(repeat('a', 63)) > 0 AS created;
SELECT signalr_bp.create_stream(repeat('a', 63) || '/' || repeat('l', 192)) > 0 AS created;
SELECT octet_length(name) FROM signalr_bp.streams WHERE application = repeat('a', 63) AND name NOT LIKE '%$signalr';
SELECT signalr_bp.drop_application(repeat('a', 63));
-- local names starting with "$" are the extension's: no creating or dropping them
SELECT signalr_bp.create_stream('app/$signalr');
SELECT signalr_bp.create_stream('app/$mine');
SELECT signalr_bp.drop_stream('app/$signalr');
SELECT signalr_bp.drop_stream('app/$signalr', if_exists => true);
SELECT signalr_bp.create_stream('app/x$') > 0 AS created;
-- head and channel of a new stream; channels are unguessable and differ per stream
SELECT signalr_bp.head('app/server-1'),
	   signalr_bp.channel('app/server-1') ~ '^signalr_bp_[0-9a-f]{32}$' AS channel_ok,
	   signalr_bp.channel('app/server-1') <> signalr_bp.channel('app/server-fast') AS distinct_channels,
	   octet_length(signalr_bp.channel('app/server-1')) < 64 AS fits_in_a_channel_name;
SELECT signalr_bp.channel('app/server-1') =
	   'signalr_bp_' || (SELECT token FROM signalr_bp.stream WHERE local_name = 'server-1') AS from_the_row;
SELECT signalr_bp.head('app/nope');
-- drop
SELECT signalr_bp.drop_stream('app/' || repeat('x', 192));
SELECT signalr_bp.drop_stream('app/Grüße, 世界');
SELECT signalr_bp.drop_stream('app/nope');
SELECT signalr_bp.drop_stream('app/nope', if_exists => true);
SELECT signalr_bp.drop_stream('nope/nope', if_exists => true);
SELECT signalr_bp.drop_stream(NULL);
SELECT signalr_bp.drop_stream('app/nope', if_exists => NULL);
SELECT signalr_bp.create_stream('app/nope', true, if_not_exists => NULL);
-- a dropped stream's messages go with it, and the name is free again
SELECT signalr_bp.publish('app/host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77', 'bye');
SELECT signalr_bp.drop_stream('app/host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77');
SELECT signalr_bp.publish('app/host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77', 'gone');
SELECT signalr_bp.create_stream('app/host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77') > 0 AS created;
SELECT signalr_bp.head('app/host-7_5f0c2b9e-81d4-4c1a-9e1e-2d4c9c1a0b77');
SELECT name FROM signalr_bp.streams ORDER BY name;
-- max_streams caps the streams of one application ($signalr counts)
SELECT signalr_bp.create_application('capped', max_streams => 3) > 0 AS created;
SELECT signalr_bp.create_stream('capped/1') > 0, signalr_bp.create_stream('capped/2') > 0;
SELECT signalr_bp.create_stream('capped/3');
-- an existing stream is still found at the cap
SELECT signalr_bp.create_stream('capped/2', if_not_exists => true) > 0 AS found;
SELECT signalr_bp.alter_application('capped', max_streams => 4);
SELECT signalr_bp.create_stream('capped/3') > 0 AS created;
SELECT signalr_bp.alter_application('capped', max_streams => 0);
SELECT signalr_bp.alter_application('capped', server_ttl => '0 seconds');
SELECT signalr_bp.alter_application('nope', max_streams => 10);
SELECT name, max_streams, server_ttl FROM signalr_bp.application WHERE name = 'capped';
-- application names: 1 to 63 bytes, no "/", no control characters
SELECT signalr_bp.create_application('tenant/x');
SELECT signalr_bp.create_application(repeat('a', 64));
SELECT signalr_bp.create_application('');
SELECT signalr_bp.create_application(NULL);
SELECT signalr_bp.create_application(E'c1\u009f');
SELECT signalr_bp.create_application('capped');
SELECT signalr_bp.create_application('m', max_streams => 0);
SELECT signalr_bp.create_application('m', owner => 4000000000::oid::regrole);
SELECT signalr_bp.alter_application('app', owner => 4000000000::oid::regrole);
-- dropping an application drops every stream it has, with its messages
SELECT signalr_bp.publish('capped/1', 'x');
SELECT signalr_bp.publish_batch('capped/3', ARRAY['y', 'z']::bytea[]);
SELECT id AS capped_id FROM signalr_bp.application WHERE name = 'capped' \gset
SELECT array_agg(id) AS capped_streams FROM signalr_bp.stream WHERE app_id = :capped_id \gset
SELECT count(*) AS chunks_before
  FROM (SELECT stream_id FROM signalr_bp.seg_d0 UNION ALL SELECT stream_id FROM signalr_bp.seg_d1
		UNION ALL SELECT stream_id FROM signalr_bp.seg_d2 UNION ALL SELECT stream_id FROM signalr_bp.seg_d3) c
 WHERE stream_id = ANY (:'capped_streams');
SELECT signalr_bp.drop_application('capped');
SELECT count(*) AS streams_left FROM signalr_bp.stream WHERE app_id = :capped_id;
SELECT count(*) AS chunks_left
  FROM (SELECT stream_id FROM signalr_bp.seg_d0 UNION ALL SELECT stream_id FROM signalr_bp.seg_d1
		UNION ALL SELECT stream_id FROM signalr_bp.seg_d2 UNION ALL SELECT stream_id FROM signalr_bp.seg_d3) c
 WHERE stream_id = ANY (:'capped_streams');
SELECT signalr_bp.head('capped/1');
SELECT signalr_bp.drop_application('capped');
