-- The audience type and the name domains: text and binary round trips,
-- containment, sends to audiences across two hub servers, bad input.
\set SHOW_CONTEXT never
SET search_path = signalr_bp, public;

-- text form: canonical (names sorted, duplicates dropped), quoting as needed
SELECT a::audience AS canonical FROM (VALUES
	('all'), ('ALL'), ('all except {c2, c1, c1}'), ('connections {b,a,a}'),
	('connections {}'), ('groups {"room 1", g2, "a\"b", "x\\y", "{}"} except {c3}'),
	('users {alice} except {c9}'), ('  users{ bob }  ')) v(a);
-- round trip through text
SELECT a::audience::text::audience = a::audience AS same FROM (VALUES
	('groups {"room 1", "a,b"} except {"c 3"}'), ('users {u}')) v(a);
SELECT 'connections {a,b}'::audience = 'connections {b,a}'::audience AS eq,
       'connections {a}'::audience <> 'groups {a}'::audience AS ne;

-- binary round trip
CREATE TEMP TABLE aud (a audience);
INSERT INTO aud VALUES ('all'), ('all except {x}'), ('groups {"g 1",g2} except {c}'), ('users {u1,u2}');
COPY aud TO STDOUT WITH (FORMAT binary) \g /dev/null
SELECT a, audience_send(a) AS wire FROM aud;
SELECT a FROM aud WHERE a = 'users {u2,u1}';

-- constructors and accessors
SELECT audience_all(), audience_all('{c2,c1}'), audience_connections('{c1}'),
       audience_groups('{g1,g2}', '{c3}'), audience_users('{alice}');
SELECT audience_kind(a), audience_targets(a), audience_excluded(a) FROM aud;

-- containment: the truth table, exclusions win
WITH r(ref) AS (VALUES (ROW('c1', 'alice', '{room}')::connection_ref),
					   (ROW('c2', NULL, '{}')::connection_ref))
SELECT a, (ref).connection_id, a @> ref AS includes, ref <@ a AS commutes
  FROM r, (VALUES ('all'::audience), ('all except {c1}'), ('connections {c1}'),
				  ('groups {room}'), ('groups {room} except {c1}'), ('users {alice}'),
				  ('users {alice} except {c1}')) v(a)
 ORDER BY a::text, 2;

-- bad input
SELECT 'nobody'::audience;
SELECT 'all {c1}'::audience;
SELECT 'groups'::audience;
SELECT 'groups {a'::audience;
SELECT 'groups {"a}'::audience;
SELECT 'groups {a} trailing'::audience;
SELECT 'groups {a,}'::audience;
SELECT 'users {""}'::audience;
SELECT E'connections {"a\tb"}'::audience;
SELECT ('connections {' || repeat('c', 257) || '}')::audience;
SELECT ('groups {' || repeat('g', 1025) || '}')::audience;
SELECT audience_connections(NULL);
SELECT audience_groups('{g1,NULL}');
SELECT audience_all('{NULL}');

-- the name domains
SELECT 'Chat'::hub_name, 'c1'::connection_id, 'room'::group_name, NULL::user_id AS anonymous;
SELECT ''::hub_name;
SELECT repeat('h', 257)::hub_name;
SELECT repeat('c', 257)::connection_id;
SELECT repeat('g', 1025)::group_name;
SELECT E'a\nb'::user_id;

-- sends to audiences across two servers
SELECT create_application('aud', server_ttl => '10 seconds') > 0 AS created;
SELECT stream FROM register_server('aud', 'srv-1');
SELECT stream FROM register_server('aud', 'srv-2');
SELECT connect('aud', 'srv-1', 'Chat', 'c1', 'alice'), connect('aud', 'srv-2', 'Chat', 'c2', 'alice'),
	   connect('aud', 'srv-2', 'Chat', 'c3', 'bob');
SELECT add_to_group('aud', 'Chat', 'c1', 'room', 'srv-1'), add_to_group('aud', 'Chat', 'c3', 'room', 'srv-2');
SELECT lookup_connection('aud', 'c3'), lookup_connection('aud', 'gone');
SELECT 'groups {room}'::audience @> lookup_connection('aud', 'c3') AS c3_in_room;
-- one envelope each in the application stream: kind, targets, excluded
SELECT send('aud', 'Chat', 'all', 'msg-1');
SELECT send('aud', 'Chat', 'all except {c1}', 'msg-2');
SELECT send('aud', 'Chat', 'connections {c1,c3,gone} except {c3}', 'msg-3');
SELECT send('aud', 'Chat', 'groups {room} except {c1}', 'msg-4');
SELECT send('aud', 'Chat', 'users {alice} except {c2}', 'msg-5');
SELECT send('aud', 'Chat', 'users {nobody}', 'msg-6');
SELECT send_batch('aud', 'Chat', ARRAY['all', 'users {bob}']::audience[], ARRAY['msg-7', 'msg-8']::bytea[]);
SELECT received('aud');
SELECT send('aud', 'Chat', NULL, 'x');
SELECT send('aud', '', 'all', 'x');
SELECT send('aud', 'Chat', 'all', NULL);
SELECT send_batch('aud', 'Chat', ARRAY['all']::audience[], ARRAY[]::bytea[]);
SELECT drop_application('aud');
