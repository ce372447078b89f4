# pg_dump / pg_restore: applications and streams (not their messages) move
# to a fresh cluster that has the same role names (with other OIDs); owners
# resolve by name, id counters continue, and the engine and the SignalR layer
# work there at once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# the roles both clusters have; on the second, other roles come first so
# that the same names get other OIDs
my $roles = q{
	CREATE ROLE chat_owner NOLOGIN;
	CREATE ROLE chat_hub LOGIN IN ROLE signalr_bp_hub, chat_owner;
	CREATE ROLE news_owner NOLOGIN;
	CREATE ROLE news_hub LOGIN IN ROLE signalr_bp_hub, news_owner;
};

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'signalr_bp'
signalr_bp.database = 'app'
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE DATABASE app');
	return $node;
}

# as a hub role, the way a hub server logs in
sub as
{
	my ($node, $role, $sql) = @_;
	return $node->safe_psql('app', $sql, extra_params => ['-U', $role]);
}

my $src = new_node('source');
$src->safe_psql('app', 'CREATE EXTENSION signalr_bp');
$src->safe_psql('app', $roles);
$src->safe_psql('app', q{
	SELECT signalr_bp.create_application('chat', owner => 'chat_owner', max_streams => 10);
	SELECT signalr_bp.create_application('news', owner => 'news_owner', durable => false);
	SELECT signalr_bp.create_application('gone');
	SELECT signalr_bp.drop_application('gone');
});
as($src, 'chat_hub', q{
	SELECT signalr_bp.create_stream('chat/orders');
	SELECT signalr_bp.create_stream('chat/tmp-' || i) FROM generate_series(1, 3) i;
	SELECT signalr_bp.drop_stream('chat/tmp-' || i) FROM generate_series(1, 3) i;
	SELECT signalr_bp.create_stream('chat/fast', durable => false);
	SELECT signalr_bp.publish_batch('chat/orders', ARRAY['o1', 'o2', 'o3']::bytea[]);
	SELECT signalr_bp.publish('chat/fast', 'f1');
});
as($src, 'news_hub', q{SELECT signalr_bp.create_stream('news/headlines')});
is(as($src, 'chat_hub', q{SELECT signalr_bp.head('chat/orders')}), '3', 'source: chat/orders holds 3 messages');
my $channel = as($src, 'chat_hub', q{SELECT signalr_bp.channel('chat/orders')});
my $catalog = q{
	SELECT string_agg(format('%s %s %s %s %s', a.name, a.owner, a.durable, a.max_streams, s.local_name),
					  ', ' ORDER BY a.name, s.local_name)
	  FROM signalr_bp.application a LEFT JOIN signalr_bp.stream s ON s.app_id = a.id};
my $before = $src->safe_psql('app', $catalog);

my $dump = $src->basedir . '/app.dump';
command_ok(['pg_dump', '-Fc', '-d', $src->connstr('app'), '-f', $dump], 'pg_dump');

my $dst = new_node('restored');
$dst->safe_psql('app', 'CREATE ROLE shift_oids_1; CREATE ROLE shift_oids_2; CREATE ROLE signalr_bp_hub NOLOGIN');
$dst->safe_psql('app', $roles);
isnt($dst->safe_psql('app', q{SELECT 'chat_owner'::regrole::oid}),
	 $src->safe_psql('app', q{SELECT 'chat_owner'::regrole::oid}),
	 'the owner role has another OID in the fresh cluster');
command_ok(['pg_restore', '--exit-on-error', '-d', $dst->connstr('app'), $dump], 'pg_restore');

is($dst->safe_psql('app', $catalog), $before, 'applications, owners (by name) and streams restored');
is(as($dst, 'chat_hub', q{SELECT signalr_bp.channel('chat/orders')}), $channel,
   'a stream keeps its channel');
is($dst->safe_psql('app', q{
	SELECT count(*) FROM (SELECT stream_id FROM signalr_bp.seg_d0 UNION ALL SELECT stream_id FROM signalr_bp.seg_d1
		UNION ALL SELECT stream_id FROM signalr_bp.seg_d2 UNION ALL SELECT stream_id FROM signalr_bp.seg_d3
		UNION ALL SELECT stream_id FROM signalr_bp.seg_f0) c}), '0', 'messages are not dumped');

# the engine, as the hub roles: streams start empty at their low offset,
# a consumer's old offset is reported, ids continue past the dumped ones
is(as($dst, 'chat_hub', q{SELECT signalr_bp.head('chat/orders')}), '0', 'a restored stream starts empty');
my ($rc, $out, $err) = $dst->psql('app', q{SELECT * FROM signalr_bp.fetch('chat/orders', 3)},
	extra_params => ['-U', 'chat_hub']);
like($err, qr/offset 3 is beyond the head of stream "chat\/orders"/,
	 'a consumer resuming at its old offset is told (SB002), not silently skipped');
as($dst, 'chat_hub', q{
	SELECT signalr_bp.create_stream('chat/new');
	SELECT signalr_bp.publish_batch('chat/orders', ARRAY['r1', 'r2']::bytea[]);
	SELECT signalr_bp.publish('chat/new', 'n1');
	SELECT signalr_bp.publish('chat/fast', 'f2');
});
is(as($dst, 'chat_hub', q{
	SELECT string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('chat/orders', 0)}),
   'r1,r2', 'publish and fetch on a restored stream');
is(as($dst, 'chat_hub', q{
	SELECT string_agg(convert_from(payload, 'UTF8'), ',') FROM signalr_bp.fetch('chat/new', 0)}),
   'n1', 'a new stream works beside the restored ones');
# a fast stream without its crash marker starts a new epoch, as after a crash
is(as($dst, 'chat_hub', q{
	SELECT string_agg(convert_from(payload, 'UTF8'), ',') FROM signalr_bp.fetch('chat/fast',
		(SELECT low_offset FROM signalr_bp.streams WHERE name = 'chat/fast'))}),
   'f2', 'a restored fast stream works, from its new epoch');
is($dst->safe_psql('app', q{
	SELECT count(*) = count(DISTINCT id) AND min(id) > 0 FROM signalr_bp.stream}), 't', 'stream ids stay unique');
ok($dst->safe_psql('app', q{SELECT max(id) FROM signalr_bp.stream WHERE local_name = 'new'})
   > $src->safe_psql('app', q{SELECT max(id) FROM signalr_bp.stream}),
   'the stream id counter continues where the source left it');
ok($dst->safe_psql('app', q{SELECT signalr_bp.create_application('later')})
   > $src->safe_psql('app', q{SELECT max(id) FROM signalr_bp.application}),
   'the application id counter continues too (no false "already exists")');

# owners still separate the applications
($rc, $out, $err) = $dst->psql('app', q{SELECT signalr_bp.head('chat/orders')},
	extra_params => ['-U', 'news_hub']);
like($err, qr/stream "chat\/orders" does not exist/, 'another application\'s role still cannot use the stream');
is(as($dst, 'news_hub', q{SELECT string_agg(name, ',' ORDER BY name) FROM signalr_bp.streams}),
   'news/$signalr,news/headlines', 'the streams view shows the role its own application');
is(as($dst, 'news_hub', q{SELECT durable FROM signalr_bp.streams WHERE name = 'news/$signalr'}),
   'f', 'the application stream kept its durability');

# the SignalR layer: a hub server registers, a client connects, a send
# reaches the stream the server consumes
my ($stream, $epoch) = split /\|/, as($dst, 'chat_hub', q{SELECT * FROM signalr_bp.register_server('chat', 'srv-1')});
ok($stream =~ m{^chat/}, "register_server answers the stream to consume ($stream)");
my $from = as($dst, 'chat_hub', "SELECT signalr_bp.head('$stream')");
as($dst, 'chat_hub', q{
	SELECT signalr_bp.connect('chat', 'srv-1', 'Chat', 'conn-1', 'alice');
	SELECT 1 FROM (SELECT signalr_bp.send_connection('chat', 'Chat', 'conn-1', 'hello-after-restore')) s;
});
is(as($dst, 'chat_hub', "SELECT count(*) FROM signalr_bp.fetch('$stream', $from)
	WHERE position('hello-after-restore'::bytea IN payload) > 0"),
   '1', 'a send to a connection reaches the server\'s stream');
is(as($dst, 'chat_hub', q{SELECT signalr_bp.connection_count('chat')}), '1', 'presence works');
as($dst, 'chat_hub', q{SELECT signalr_bp.deregister_server('chat', 'srv-1')});
$dst->safe_psql('app', q{SELECT signalr_bp.drop_application('chat')});
is($dst->safe_psql('app', q{SELECT count(*) FROM signalr_bp.stream s JOIN signalr_bp.application a ON a.id = s.app_id
	WHERE a.name = 'chat'}), '0', 'a restored application drops with its streams');

$src->stop;
$dst->stop;
done_testing();
