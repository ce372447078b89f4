-- The SignalR layer with two hub servers: registry, groups, every send
-- kind, client results, presence, reaping, and bad input.
\set SHOW_CONTEXT never

-- decode an envelope (format in src/signalr.c) for display
CREATE FUNCTION public.envelope(e bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	pos integer := 3;
	len integer;
	n integer;
	hub text;
	ids text[] := '{}';
BEGIN
	len := get_byte(e, 2) * 256 + get_byte(e, 3);
	hub := convert_from(substring(e from 5 for len), 'UTF8');
	pos := 4 + len;
	n := (get_byte(e, pos) << 24) + (get_byte(e, pos + 1) << 16) + (get_byte(e, pos + 2) << 8) + get_byte(e, pos + 3);
	pos := pos + 4;
	FOR i IN 1..n LOOP
		len := get_byte(e, pos) * 256 + get_byte(e, pos + 1);
		ids := ids || convert_from(substring(e from pos + 3 for len), 'UTF8');
		pos := pos + 2 + len;
	END LOOP;
	RETURN format('kind=%s hub=%s ids=%s payload=%s', get_byte(e, 1), hub, ids,
				  convert_from(substring(e from pos + 1), 'UTF8'));
END $$;
-- what a server's stream received since offset n
CREATE FUNCTION public.received(app text, server text, n bigint DEFAULT 0)
RETURNS SETOF text LANGUAGE sql AS $$
	SELECT msg_offset || ': ' || envelope(payload) FROM signalr_bp.fetch(app || '/' || server, n) $$;

SELECT signalr_bp.create_application('chat', server_ttl => '10 seconds') > 0 AS created;
SELECT * FROM signalr_bp.register_server('chat', 'srv-1');
SELECT * FROM signalr_bp.register_server('chat', 'srv-2');
SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', 'c1', 'alice');
SELECT signalr_bp.connect('chat', 'srv-2', 'Chat', 'c2', 'alice');
SELECT signalr_bp.connect('chat', 'srv-2', 'Chat', 'c3', 'bob');
SELECT signalr_bp.connect('chat', 'srv-2', 'Chat', 'c4');
-- same id again on the same server: an update; on another server: an error
SELECT signalr_bp.connect('chat', 'srv-2', 'Chat', 'c4', 'carol');
SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', 'c4');
-- a connection belongs to one hub
SELECT signalr_bp.connect('chat', 'srv-2', 'Other', 'c4');
-- groups: any server adds any connection, idempotently, with no round trip
-- (from_server: the caller; here each holder adds its own connections)
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c1', 'room', 'srv-1');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c3', 'room', 'srv-2');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c3', 'room', 'srv-2');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c4', 'other', 'srv-2');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'nobody', 'room');
SELECT signalr_bp.add_to_group('chat', 'Other', 'c1', 'room');
SELECT signalr_bp.group_connections('chat', 'Chat', 'room');
SELECT signalr_bp.connection_groups('chat', 'c3');

-- every send kind, and where each landed
SELECT signalr_bp.send_all('chat', 'Chat', 'to all');
SELECT signalr_bp.send_all('chat', 'Chat', 'all but c1, c2', ARRAY['c1', 'c2']);
SELECT signalr_bp.send_connection('chat', 'Chat', 'c3', 'to c3');
SELECT signalr_bp.send_connections('chat', 'Chat', ARRAY['c1', 'c3', 'gone'], 'to c1 c3');
SELECT signalr_bp.send_group('chat', 'Chat', 'room', 'to room');
SELECT signalr_bp.send_group('chat', 'Chat', 'room', 'to room but c3', ARRAY['c3']);
SELECT signalr_bp.send_groups('chat', 'Chat', ARRAY['room', 'other'], 'to room and other');
SELECT signalr_bp.send_user('chat', 'Chat', 'alice', 'to alice');
SELECT signalr_bp.send_users('chat', 'Chat', ARRAY['bob', 'carol'], 'to bob and carol');
-- reaching nobody is cheap and not an error
SELECT signalr_bp.send_group('chat', 'Chat', 'empty', 'to nobody');
SELECT signalr_bp.send_user('chat', 'Chat', 'nobody', 'to nobody');
SELECT received('chat', 'srv-1');
SELECT received('chat', 'srv-2');

-- batch form: several sends of any kind in one call
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['group', 'user', 'connection'],
							 ARRAY['other', 'alice', 'c1'], ARRAY['b1', 'b2', 'b3']::bytea[]);
SELECT received('chat', 'srv-1', 7), received('chat', 'srv-2', 8);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['bogus'], ARRAY['x'], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all'], ARRAY[NULL, NULL], ARRAY['p']::bytea[])$$);
-- presence
SELECT signalr_bp.connection_count('chat'), signalr_bp.connection_count('chat', 'Chat'),
	   signalr_bp.connection_count('chat', 'Other');
SELECT * FROM signalr_bp.online_users('chat', 'Chat');
SELECT signalr_bp.user_connections('chat', 'Chat', 'alice');
SELECT server, connections, heartbeat_age < '1 minute' AS alive FROM signalr_bp.servers('chat');

-- client results: srv-1 invokes a method on c3 (held by srv-2)
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c3', 'inv-1', 'ask c3');
SELECT received('chat', 'srv-2', 10);
SELECT signalr_bp.complete_invocation('chat', 'inv-1', 'c3 says yes');
SELECT signalr_bp.complete_invocation('chat', 'inv-1', 'again');
SELECT received('chat', 'srv-1', 9);
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'missing', 'inv-2', 'x');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c3', 'inv-3', 'ask again');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-2', 'c1', 'inv-3', 'same id');
SELECT signalr_bp.cancel_invocation('chat', 'inv-3');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c3', 'inv-4', 'ask before disconnect');
-- the connection leaves: its groups go, its pending invocation fails at once
SELECT signalr_bp.disconnect('chat', 'c3');
SELECT signalr_bp.disconnect('chat', 'c3');
SELECT signalr_bp.group_connections('chat', 'Chat', 'room');
SELECT received('chat', 'srv-1', 10);
SELECT received('chat', 'srv-2', 11);

-- a server that stops heartbeating is reaped with all it held; invocations
-- waiting on it fail on the invoking server instead of hanging
SELECT signalr_bp.heartbeat('chat', 'srv-2');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c2', 'inv-5', 'ask c2');
UPDATE signalr_bp.server SET heartbeat_at = now() - interval '11 seconds' WHERE name = 'srv-2';
SELECT signalr_bp.reap();
SELECT received('chat', 'srv-1', 11);
SELECT server FROM signalr_bp.servers('chat');
SELECT signalr_bp.connection_count('chat'), signalr_bp.group_connections('chat', 'Chat', 'other');
SELECT count(*) FROM signalr_bp.streams WHERE name = 'chat/srv-2';
SELECT signalr_bp.heartbeat('chat', 'srv-2');
SELECT signalr_bp.connect('chat', 'srv-2', 'Chat', 'c9');
-- it comes back by registering again
SELECT * FROM signalr_bp.register_server('chat', 'srv-2');
SELECT signalr_bp.connect_many('chat', 'srv-2', 'Chat', ARRAY['c5', 'c6'], ARRAY['dave', NULL]);
-- again (a rebuild after a lost registry): updated, not counted twice
SELECT signalr_bp.connect_many('chat', 'srv-2', 'Chat', ARRAY['c5', 'c6', 'c7']);
SELECT signalr_bp.connection_count('chat');
-- the counts presence reads agree with the registry, per server and hub
SELECT t.server, t.hub, sum(t.n) AS tallied,
	   (SELECT count(*) FROM signalr_bp.connection c
		 WHERE c.app_id = t.app_id AND c.server = t.server AND c.hub = t.hub) AS registered
  FROM signalr_bp.connection_tally t GROUP BY t.app_id, t.server, t.hub ORDER BY 1, 2;

-- a trigger pushes a row change to a group, as a SignalR JSON invocation
CREATE TABLE orders (id integer, status text);
CREATE FUNCTION orders_push() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM signalr_bp.send_group('chat', 'Chat', 'room',
		signalr_bp.json_invocation('orderChanged', jsonb_build_array(NEW.id, NEW.status)));
	RETURN NEW;
END $$;
CREATE TRIGGER orders_push AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_push();
INSERT INTO orders VALUES (42, 'shipped');
SELECT received('chat', 'srv-1', 12);

-- a change by another caller (a server, or SQL with no from_server) is told
-- to the holding server, which registers it again if the registry is lost;
-- the holder's own changes are not
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c6', 'remote');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c6', 'own', 'srv-2');
SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c6', 'own', 'srv-2');
-- batch forms: pairs (connection, group); unknown connections and repeats skipped
SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY['c1', 'c5', 'c6', 'gone', 'c1'],
								ARRAY['batch', 'batch', 'b2', 'batch', 'batch'], 'srv-2');
SELECT signalr_bp.group_connections('chat', 'Chat', 'batch');
SELECT signalr_bp.remove_from_groups('chat', 'Chat', ARRAY['c1', 'c5', 'c6', 'gone'],
									 ARRAY['batch', 'batch', 'b2', 'batch'], 'srv-2');
SELECT signalr_bp.group_connections('chat', 'Chat', 'batch');
SELECT r FROM received('chat', 'srv-2') r WHERE r ~ 'kind=[78] ';
SELECT r FROM received('chat', 'srv-1') r WHERE r ~ 'kind=[78] ';

-- bad input
SELECT try($$SELECT signalr_bp.connect('nope', 'srv-1', 'Chat', 'x')$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', '', 'x')$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', NULL)$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', repeat('x', 257))$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', E'a\nb')$$);
SELECT try($$SELECT signalr_bp.add_to_group('chat', 'Chat', 'c1', '')$$);
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', NULL)$$);
SELECT try($$SELECT signalr_bp.register_server('chat', repeat('s', 151))$$);
SELECT try($$SELECT signalr_bp.create_application('chat')$$);
SELECT try($$SELECT signalr_bp.create_application('x', server_ttl => '0 seconds')$$);
SELECT try($$SELECT signalr_bp.connect_many('chat', 'srv-1', 'Chat', ARRAY['a', 'b'], ARRAY['u'])$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY['c1'], ARRAY['g', 'h'])$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', NULL, ARRAY['g'])$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY[NULL], ARRAY['g'])$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY['c1', 'c5'], ARRAY['g', ''])$$);
SELECT try($$SELECT signalr_bp.remove_from_groups('chat', 'Chat', ARRAY['c1'], NULL)$$);
SELECT try($$SELECT signalr_bp.remove_from_groups('chat', 'Chat', ARRAY['c1'], ARRAY[repeat('g', 1025)])$$);

-- isolation: another application's role can neither see nor touch 'chat'
CREATE ROLE chat_owner NOLOGIN;
CREATE ROLE other_app LOGIN IN ROLE signalr_bp_hub;
SELECT signalr_bp.create_application('other', owner => 'other_app') > 0 AS created;
SET ROLE other_app;
SELECT * FROM signalr_bp.register_server('other', 'o-1');
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', 'intrusion')$$);
SELECT try($$SELECT signalr_bp.connection_count('chat')$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('chat/srv-1', 0)$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', 'spy')$$);
SELECT signalr_bp.send_all('other', 'Hub', 'mine');
RESET ROLE;
SELECT signalr_bp.connection_count('chat');

SELECT signalr_bp.drop_application('other');
SELECT signalr_bp.drop_application('chat');
SELECT count(*) FROM signalr_bp.streams WHERE application IN ('chat', 'other');
DROP ROLE chat_owner, other_app;
