-- The SignalR layer with two hub servers: registry, groups, every send
-- kind, batch keys, client results, presence, reaping, and bad input.
-- Every message is an envelope in the application stream (public.received,
-- in setup.sql, decodes them).
\set SHOW_CONTEXT never

SELECT signalr_bp.create_application('chat', server_ttl => '1 hour') > 0 AS created;
-- both servers consume the application stream
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
-- (from_server: the caller; here each holder adds its own connections,
-- which appends nothing)
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c1', 'room', 'srv-1');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c3', 'room', 'srv-2');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c3', 'room', 'srv-2');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c4', 'other', 'srv-2');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c1', 'room', 'srv-1');
SELECT signalr_bp.add_to_group('chat', 'Other', 'c1', 'room');
SELECT signalr_bp.group_connections('chat', 'Chat', 'room');
SELECT signalr_bp.connection_groups('chat', 'c3');
SELECT signalr_bp.head('chat/$signalr') AS nothing_appended_yet;

-- every send kind is one envelope in the application stream, whatever the
-- number of servers; the receivers filter (sends return nothing)
SELECT signalr_bp.send_all('chat', 'Chat', 'to all');
SELECT signalr_bp.send_all('chat', 'Chat', 'all but c1, c2', ARRAY['c2', 'c1', 'c2']);
SELECT signalr_bp.send_connection('chat', 'Chat', 'c3', 'to c3');
SELECT signalr_bp.send_connections('chat', 'Chat', ARRAY['c3', 'c1', 'gone'], 'to c1 c3');
SELECT signalr_bp.send_group('chat', 'Chat', 'room', 'to room');
SELECT signalr_bp.send_group('chat', 'Chat', 'room', 'to room but c3', ARRAY['c3']);
SELECT signalr_bp.send_groups('chat', 'Chat', ARRAY['room', 'other'], 'to room and other');
SELECT signalr_bp.send_user('chat', 'Chat', 'alice', 'to alice');
SELECT signalr_bp.send_users('chat', 'Chat', ARRAY['bob', 'carol'], 'to bob and carol');
-- reaching nobody is the receivers' business: still one envelope
SELECT signalr_bp.send_group('chat', 'Chat', 'empty', 'to nobody');
SELECT received('chat');

-- batch forms: several sends of any kind in one call; returns how many it appended
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['group', 'user', 'connection', 'all'],
							 ARRAY['other', 'alice', 'c1', NULL], ARRAY['b1', 'b2', 'b3', 'b4']::bytea[]);
SELECT received('chat', 10);
-- with a batch key: applied once, the key in the batch's last envelope
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all', 'groups {room}']::signalr_bp.audience[],
							 ARRAY['k1', 'k2']::bytea[], '5e2b7a3c-0000-4000-8000-000000000001');
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all', 'groups {room}']::signalr_bp.audience[],
							 ARRAY['k1', 'k2']::bytea[], '5e2b7a3c-0000-4000-8000-000000000001');
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['user'], ARRAY['bob'], ARRAY['k3']::bytea[],
							 '5e2b7a3c-0000-4000-8000-000000000001');
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['user'], ARRAY['bob'], ARRAY['k3']::bytea[],
							 '5e2b7a3c-0000-4000-8000-000000000002');
SELECT received('chat', 14);
-- a key is per application; a rolled back batch leaves no key behind
BEGIN;
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all']::signalr_bp.audience[], ARRAY['lost']::bytea[],
							 '5e2b7a3c-0000-4000-8000-000000000003');
ROLLBACK;
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all']::signalr_bp.audience[], ARRAY['k4']::bytea[],
							 '5e2b7a3c-0000-4000-8000-000000000003');
-- the same key twice in one transaction: the second call appends nothing
BEGIN;
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all']::signalr_bp.audience[], ARRAY['k5']::bytea[],
							 '5e2b7a3c-0000-4000-8000-000000000004');
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all']::signalr_bp.audience[], ARRAY['k5']::bytea[],
							 '5e2b7a3c-0000-4000-8000-000000000004');
COMMIT;
-- async_commit: the transaction commits as with SET LOCAL synchronous_commit = off
BEGIN;
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all']::signalr_bp.audience[], ARRAY['a1']::bytea[],
							 async_commit => true);
SHOW synchronous_commit;
ROLLBACK;
BEGIN;
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all'], ARRAY[NULL], ARRAY['a2']::bytea[], NULL, false);
SHOW synchronous_commit;
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all'], ARRAY[NULL], ARRAY['a3']::bytea[], NULL, true);
SHOW synchronous_commit;
ROLLBACK;
SHOW synchronous_commit;
SELECT count(*) AS keys FROM signalr_bp.sent_batch;
-- maintain() forgets keys older than signalr_bp.batch_key_retention
UPDATE signalr_bp.sent_batch SET sent_at = now() - interval '16 minutes'
 WHERE batch_key = '5e2b7a3c-0000-4000-8000-000000000001';
SELECT signalr_bp.maintain() >= 0 AS maintained;
SELECT batch_key FROM signalr_bp.sent_batch ORDER BY 1;
-- a forgotten key is a new key
SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all']::signalr_bp.audience[], ARRAY['k6']::bytea[],
							 '5e2b7a3c-0000-4000-8000-000000000001');
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['bogus'], ARRAY['x'], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all'], ARRAY[NULL, NULL], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['group'], ARRAY[NULL], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY[NULL], ARRAY['x'], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['user'], ARRAY['x'], ARRAY[NULL]::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['user'], ARRAY[E'x\ty'], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY[['all']], ARRAY[['x']], ARRAY[['p']]::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', NULL::text[], ARRAY['x'], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY[NULL]::signalr_bp.audience[], ARRAY['p']::bytea[])$$);
-- presence
SELECT signalr_bp.connection_count('chat'), signalr_bp.connection_count('chat', 'Chat'),
	   signalr_bp.connection_count('chat', 'Other');
SELECT * FROM signalr_bp.online_users('chat', 'Chat');
SELECT signalr_bp.user_connections('chat', 'Chat', 'alice');
SELECT server, connections, heartbeat_age < '1 minute' AS alive FROM signalr_bp.servers('chat');

-- client results: srv-1 invokes a method on c3 (held by srv-2)
SELECT signalr_bp.head('chat/$signalr') AS next \gset
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c3', 'inv-1', 'ask c3');
SELECT signalr_bp.complete_invocation('chat', 'inv-1', 'c3 says yes');
-- a late or repeated result is appended too; the invoker ignores what it no longer waits for
SELECT signalr_bp.complete_invocation('chat', 'inv-1', 'again');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'missing', 'inv-2', 'x');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c3', 'inv-3', 'ask again');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-2', 'c1', 'inv-3', 'same id');
SELECT signalr_bp.cancel_invocation('chat', 'inv-3');
-- no longer pending: the connection named by the caller is told
SELECT signalr_bp.cancel_invocation('chat', 'inv-3', 'c3');
SELECT signalr_bp.cancel_invocation('chat', 'inv-9');
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c3', 'inv-4', 'ask before disconnect');
-- the connection leaves: its groups go, its pending invocation fails at once
SELECT signalr_bp.disconnect('chat', 'c3');
SELECT signalr_bp.disconnect('chat', 'c3');
SELECT signalr_bp.group_connections('chat', 'Chat', 'room');
SELECT received('chat', :next);

-- a server that stops heartbeating is reaped with all it held; invocations
-- waiting on it fail on the invoking server instead of hanging
SELECT signalr_bp.heartbeat('chat', 'srv-2');
SELECT signalr_bp.head('chat/$signalr') AS next \gset
SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c2', 'inv-5', 'ask c2');
UPDATE signalr_bp.server SET heartbeat_at = now() - interval '61 minutes' WHERE name = 'srv-2';
SELECT signalr_bp.reap();
SELECT received('chat', :next);
SELECT server FROM signalr_bp.servers('chat');
SELECT signalr_bp.connection_count('chat'),
	   (SELECT count(*) FROM signalr_bp.group_connections('chat', 'Chat', 'other')) AS other_members;
SELECT signalr_bp.heartbeat('chat', 'srv-2');
SELECT signalr_bp.connect('chat', 'srv-2', 'Chat', 'c9');
-- it comes back by registering again, to the same stream
SELECT * FROM signalr_bp.register_server('chat', 'srv-2');
SELECT signalr_bp.connect_many('chat', 'srv-2', 'Chat', ARRAY['c5', 'c6'], ARRAY['dave', NULL]);
-- again (a rebuild after a lost registry): updated, not counted twice;
-- an id given twice counts once
SELECT signalr_bp.connect_many('chat', 'srv-2', 'Chat', ARRAY['c5', 'c6', 'c7', 'c7']);
SELECT signalr_bp.connection_count('chat');
-- a connection held by another server (or hub) is refused, as connect() refuses it
SELECT signalr_bp.connect_many('chat', 'srv-2', 'Chat', ARRAY['c8', 'c1']);
SELECT signalr_bp.connect_many('chat', 'srv-2', 'Other', ARRAY['c5']);
-- the counts presence reads agree with the registry, per server and hub
SELECT t.server, t.hub, sum(t.n) AS tallied,
	   (SELECT count(*) FROM signalr_bp.connection c
		 WHERE c.app_id = t.app_id AND c.server = t.server AND c.hub = t.hub) AS registered
  FROM signalr_bp.connection_tally t GROUP BY t.app_id, t.server, t.hub ORDER BY 1, 2;

-- a trigger pushes a row change to a group, as a SignalR JSON invocation
SELECT signalr_bp.head('chat/$signalr') AS next \gset
CREATE TABLE orders (id integer, status text);
CREATE FUNCTION orders_push() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM signalr_bp.send_group('chat', 'Chat', 'room',
		signalr_bp.json_invocation('orderChanged', jsonb_build_array(NEW.id, NEW.status)));
	RETURN NEW;
END $$;
CREATE TRIGGER orders_push AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_push();
INSERT INTO orders VALUES (42, 'shipped');
SELECT received('chat', :next);

-- a change by another caller (a server, or SQL with no from_server) is told
-- to the holding server (joined/left); the holder's own changes are not.
-- A connection the registry does not know (it is being rebuilt) gets joined
-- flagged unregistered, and left, for whichever server holds it
SELECT signalr_bp.head('chat/$signalr') AS next \gset
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c6', 'remote');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c6', 'own', 'srv-2');
SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c5', 'remote', 'srv-1');
SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c6', 'own', 'srv-2');
SELECT signalr_bp.add_to_group('chat', 'Chat', 'c-rebuilding', 'room', 'srv-1');
SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c-rebuilding', 'room', 'srv-1');
-- batch forms: pairs (connection, group); repeats skipped
SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY['c1', 'c5', 'c6', 'c1'],
								ARRAY['batch', 'batch', 'b2', 'batch'], 'srv-2');
SELECT signalr_bp.group_connections('chat', 'Chat', 'batch');
SELECT signalr_bp.remove_from_groups('chat', 'Chat', ARRAY['c1', 'c5', 'c6'],
									 ARRAY['batch', 'batch', 'b2'], 'srv-2');
SELECT signalr_bp.group_connections('chat', 'Chat', 'batch');
SELECT received('chat', :next);
SELECT count(*) AS orphan_memberships FROM signalr_bp.group_member g
 WHERE NOT EXISTS (SELECT FROM signalr_bp.connection c WHERE c.app_id = g.app_id AND c.connection_id = g.connection_id);

-- sends never read the registry: with no server registered at all (after a
-- crash or failover emptied it) a send is still appended for every server
-- that consumes the stream
SELECT signalr_bp.deregister_server('chat', 'srv-1'), signalr_bp.deregister_server('chat', 'srv-2');
SELECT signalr_bp.head('chat/$signalr') AS next \gset
SELECT signalr_bp.send_all('chat', 'Chat', 'while the registry is empty');
SELECT signalr_bp.send_group('chat', 'Chat', 'room', 'to room while the registry is empty');
SELECT received('chat', :next);

-- bad input: a clean error, nothing appended
SELECT signalr_bp.head('chat/$signalr') AS next \gset
SELECT try($$SELECT signalr_bp.connect('nope', 'srv-1', 'Chat', 'x')$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', '', 'x')$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', NULL)$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', repeat('x', 257))$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', E'a\nb')$$);
SELECT try($$SELECT signalr_bp.add_to_group('chat', 'Chat', 'c1', '')$$);
SELECT try($$SELECT signalr_bp.add_to_group('chat', 'Chat', NULL, 'g')$$);
SELECT try($$SELECT signalr_bp.add_to_group('chat', E'Ch\x7fat', 'c1', 'g')$$);
SELECT try($$SELECT signalr_bp.remove_from_group('chat', 'Chat', repeat('c', 257), 'g')$$);
SELECT try($$SELECT signalr_bp.register_server('chat', repeat('s', 151))$$);
SELECT try($$SELECT signalr_bp.create_application('chat')$$);
SELECT try($$SELECT signalr_bp.create_application('x', server_ttl => '0 seconds')$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY['c1'], ARRAY['g', 'h'])$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', NULL, ARRAY['g'])$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY[NULL], ARRAY['g'])$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY['c1', 'c5'], ARRAY['g', ''])$$);
SELECT try($$SELECT signalr_bp.remove_from_groups('chat', 'Chat', ARRAY['c1'], NULL)$$);
SELECT try($$SELECT signalr_bp.remove_from_groups('chat', 'Chat', ARRAY['c1'], ARRAY[repeat('g', 1025)])$$);
-- sends: hub names and excluded ids follow the name rules
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', NULL)$$);
SELECT try($$SELECT signalr_bp.send_all('chat', NULL, 'x')$$);
SELECT try($$SELECT signalr_bp.send_all('chat', '', 'x')$$);
SELECT try($$SELECT signalr_bp.send_all('chat', repeat('h', 5000), 'x')$$);
SELECT try($$SELECT signalr_bp.send_all('chat', E'Chat\x01', 'x')$$);
SELECT try($$SELECT signalr_bp.send_all('chat', E'Chat\u0085', 'x')$$);
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', 'x', ARRAY[''])$$);
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', 'x', ARRAY[repeat('c', 257)])$$);
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', 'x', ARRAY[E'c\n1'])$$);
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', 'x', ARRAY[NULL])$$);
SELECT try($$SELECT signalr_bp.send_connection('chat', 'Chat', NULL, 'x')$$);
SELECT try($$SELECT signalr_bp.send_groups('chat', 'Chat', NULL, 'x')$$);
SELECT try($$SELECT signalr_bp.send_user('chat', 'Chat', repeat('u', 1025), 'x')$$);
SELECT try($$SELECT signalr_bp.send('chat', 'Chat', NULL, 'x')$$);
SELECT try(format('SELECT signalr_bp.send_all(%L, %L, %L)', 'chat', 'Chat',
				  repeat('x', pg_size_bytes(current_setting('signalr_bp.max_message_size'))::integer + 1)));
-- connect_many: user ids follow the name rules too
SELECT try($$SELECT signalr_bp.connect_many('chat', 'srv-1', 'Chat', ARRAY['a', 'b'], ARRAY['u'])$$);
SELECT try($$SELECT signalr_bp.connect_many('chat', 'srv-1', 'Chat', NULL)$$);
SELECT try($$SELECT signalr_bp.connect_many('chat', 'srv-1', 'Chat', ARRAY['a'], ARRAY[''])$$);
SELECT try($$SELECT signalr_bp.connect_many('chat', 'srv-1', 'Chat', ARRAY['a'], ARRAY[repeat('u', 1025)])$$);
SELECT try($$SELECT signalr_bp.connect_many('chat', 'srv-1', 'Chat', ARRAY['a'], ARRAY[E'u\r'])$$);
-- client results
SELECT try($$SELECT signalr_bp.complete_invocation('chat', 'inv-1', NULL)$$);
SELECT try($$SELECT signalr_bp.complete_invocation('chat', NULL, 'x')$$);
SELECT try($$SELECT signalr_bp.invoke('chat', 'Chat', 'srv-1', 'c1', '', 'x')$$);
SELECT try($$SELECT signalr_bp.cancel_invocation('chat', 'inv-1', E'c\t1')$$);
SELECT try($$SELECT signalr_bp.disconnect('chat', NULL)$$);
SELECT try($$SELECT signalr_bp.maintain(NULL)$$);
-- server names, and the names presence asks about
SELECT try($$SELECT signalr_bp.heartbeat('chat', NULL)$$);
SELECT try($$SELECT signalr_bp.deregister_server('chat', NULL)$$);
SELECT try($$SELECT signalr_bp.connect('chat', NULL, 'Chat', 'c')$$);
SELECT try($$SELECT signalr_bp.invoke('chat', 'Chat', NULL, 'c1', 'i', 'x')$$);
SELECT try($$SELECT signalr_bp.group_connections('chat', 'Chat', NULL)$$);
SELECT try($$SELECT signalr_bp.group_connections('chat', '', 'g')$$);
SELECT try($$SELECT signalr_bp.user_connections('chat', 'Chat', E'u\n')$$);
SELECT try($$SELECT signalr_bp.connection_groups('chat', NULL)$$);
SELECT try($$SELECT signalr_bp.online_users('chat', NULL)$$);
-- optional names, when given, follow the rules too
SELECT try($$SELECT signalr_bp.add_to_group('chat', 'Chat', 'c1', 'g', from_server => '')$$);
SELECT try($$SELECT signalr_bp.remove_from_group('chat', 'Chat', 'c1', 'g', from_server => repeat('s', 151))$$);
SELECT try($$SELECT signalr_bp.add_to_groups('chat', 'Chat', ARRAY['c1'], ARRAY['g'], from_server => E's\x01')$$);
SELECT try($$SELECT signalr_bp.remove_from_groups('chat', 'Chat', ARRAY['c1'], ARRAY['g'], from_server => 's' || chr(133))$$);
SELECT try($$SELECT signalr_bp.connection_count('chat', '')$$);
SELECT try($$SELECT signalr_bp.connection_count('chat', repeat('h', 257))$$);
SELECT try($$SELECT signalr_bp.disconnect('chat', '')$$);
SELECT try($$SELECT signalr_bp.disconnect('chat', E'c\n1')$$);
SELECT try($$SELECT signalr_bp.json_invocation(NULL, '[1]')$$);
SELECT try($$SELECT signalr_bp.json_invocation('m', NULL)$$);
-- a NULL application is an error everywhere, never an empty answer
SELECT try($$SELECT signalr_bp.register_server(NULL, 's')$$);
SELECT try($$SELECT signalr_bp.heartbeat(NULL, 's')$$);
SELECT try($$SELECT signalr_bp.deregister_server(NULL, 's')$$);
SELECT try($$SELECT signalr_bp.connect(NULL, 's', 'Chat', 'c')$$);
SELECT try($$SELECT signalr_bp.connect_many(NULL, 's', 'Chat', ARRAY['c'])$$);
SELECT try($$SELECT signalr_bp.disconnect(NULL, 'c')$$);
SELECT try($$SELECT signalr_bp.add_to_group(NULL, 'Chat', 'c', 'g')$$);
SELECT try($$SELECT signalr_bp.remove_from_group(NULL, 'Chat', 'c', 'g')$$);
SELECT try($$SELECT signalr_bp.add_to_groups(NULL, 'Chat', ARRAY['c'], ARRAY['g'])$$);
SELECT try($$SELECT signalr_bp.remove_from_groups(NULL, 'Chat', ARRAY['c'], ARRAY['g'])$$);
SELECT try($$SELECT signalr_bp.send_all(NULL, 'Chat', 'x')$$);
SELECT try($$SELECT signalr_bp.send_connection(NULL, 'Chat', 'c', 'x')$$);
SELECT try($$SELECT signalr_bp.send_connections(NULL, 'Chat', ARRAY['c'], 'x')$$);
SELECT try($$SELECT signalr_bp.send_group(NULL, 'Chat', 'g', 'x')$$);
SELECT try($$SELECT signalr_bp.send_groups(NULL, 'Chat', ARRAY['g'], 'x')$$);
SELECT try($$SELECT signalr_bp.send_user(NULL, 'Chat', 'u', 'x')$$);
SELECT try($$SELECT signalr_bp.send_users(NULL, 'Chat', ARRAY['u'], 'x')$$);
SELECT try($$SELECT signalr_bp.send(NULL, 'Chat', 'all', 'x')$$);
SELECT try($$SELECT signalr_bp.send_batch(NULL, 'Chat', ARRAY['all'], ARRAY['x'], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.send_batch(NULL, 'Chat', ARRAY['all']::signalr_bp.audience[], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.invoke(NULL, 'Chat', 's', 'c', 'i', 'x')$$);
SELECT try($$SELECT signalr_bp.complete_invocation(NULL, 'i', 'x')$$);
SELECT try($$SELECT signalr_bp.cancel_invocation(NULL, 'i')$$);
SELECT try($$SELECT signalr_bp.connection_count(NULL)$$);
SELECT try($$SELECT signalr_bp.group_connections(NULL, 'Chat', 'g')$$);
SELECT try($$SELECT signalr_bp.connection_groups(NULL, 'c')$$);
SELECT try($$SELECT signalr_bp.user_connections(NULL, 'Chat', 'u')$$);
SELECT try($$SELECT signalr_bp.online_users(NULL, 'Chat')$$);
SELECT try($$SELECT signalr_bp.servers(NULL)$$);
SELECT try($$SELECT signalr_bp.lookup_connection(NULL, 'c')$$);
SELECT signalr_bp.head('chat/$signalr') = :next AS nothing_appended;

-- isolation: another application's role can neither see nor touch 'chat',
-- and cannot tell it from an application that does not exist
CREATE ROLE chat_owner NOLOGIN;
CREATE ROLE other_app LOGIN IN ROLE signalr_bp_hub;
SELECT signalr_bp.create_application('other', owner => 'other_app') > 0 AS created;
SET ROLE other_app;
SELECT * FROM signalr_bp.register_server('other', 'o-1');
SELECT try($$SELECT signalr_bp.send_all('chat', 'Chat', 'intrusion')$$);
SELECT try($$SELECT signalr_bp.send_batch('chat', 'Chat', ARRAY['all'], ARRAY['x'], ARRAY['p']::bytea[])$$);
SELECT try($$SELECT signalr_bp.connection_count('chat')$$);
SELECT try($$SELECT signalr_bp.connection_count('no-such-app')$$);
SELECT try($$SELECT * FROM signalr_bp.fetch('chat/$signalr', 0)$$);
SELECT try($$SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', 'spy')$$);
SELECT signalr_bp.send_all('other', 'Hub', 'mine');
SELECT received('other');
RESET ROLE;
SELECT signalr_bp.head('chat/$signalr') = :next AS nothing_appended;

SELECT signalr_bp.drop_application('other');
SELECT signalr_bp.drop_application('chat');
SELECT count(*) FROM signalr_bp.streams WHERE application IN ('chat', 'other');
SELECT count(*) AS keys_left FROM signalr_bp.sent_batch;
DROP ROLE chat_owner, other_app;
