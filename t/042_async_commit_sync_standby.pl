# Readers see only durable messages: with a synchronous standby that is
# stopped, a transaction that publishes with synchronous_commit off (or
# local) commits at once, but no long-polling consumer receives its message,
# and head() does not count it, until the standby is back and has it.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'signalr_bp'");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app', 'postgres');
	SELECT signalr_bp.create_stream('app/d');
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby1');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby1'");
$primary->reload;
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'")
  or die 'standby never became synchronous';

$primary->safe_psql('postgres', "SELECT signalr_bp.publish('app/d', 'before')");
is($primary->safe_psql('postgres',
		"SELECT string_agg(convert_from(payload, 'UTF8'), ',') FROM signalr_bp.fetch('app/d', 0)"),
	'before', 'with the standby up, a synchronous commit is delivered');

$standby->stop;

# asynchronous and local commits return without the standby
my $t0 = time;
$primary->safe_psql('postgres', q{
	SET synchronous_commit = off;
	SELECT signalr_bp.publish('app/d', 'async');
});
$primary->safe_psql('postgres', q{
	SET synchronous_commit = local;
	SELECT signalr_bp.publish('app/d', 'local');
});
ok(time - $t0 < 20, 'asynchronous and local commits return while the standby is down');
is($primary->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT first_offset FROM signalr_bp.seg_d0
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d1
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d2
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d3) c}),
	'3', 'both are committed and visible in the segments');

is($primary->safe_psql('postgres', "SELECT count(*) FROM signalr_bp.fetch('app/d', 1, 10, 2000)"),
	'0', 'a long poll of 2 s receives neither');
is($primary->safe_psql('postgres', "SELECT next_offset, message_count FROM signalr_bp.fetch_packed('app/d', 1, 1000, 500)"),
	'1|0', 'fetch_packed neither');
is($primary->safe_psql('postgres', "SELECT signalr_bp.head('app/d')"), '1',
	'head() stays below them: it is the durable horizon');

# a consumer waits for them while the standby comes back
my ($out, $err) = ('', '');
my $poll = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-d', $primary->connstr('postgres'), '-c',
	  "SELECT string_agg(msg_offset || ':' || convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('app/d', 1, 10, 120000)" ],
	'>', \$out, '2>', \$err);
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%fetch(''app/d'', 1, 10, 120000)%' AND wait_event_type = 'Extension'")
  or die 'the long poll never started waiting';
ok($poll->pumpable, 'the long poll is still waiting');

$standby->start;
my $t1 = time;
$poll->finish;
chomp $out;
like($out, qr/^1:async(,2:local)?$/, 'once the standby has them, the waiting consumer receives them, in order');
$out .= ',' . $primary->safe_psql('postgres',
	"SELECT string_agg(msg_offset || ':' || convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('app/d', 2, 10, 60000)")
  if $out eq '1:async';
is($out, '1:async,2:local', 'both');
ok(time - $t1 < 60, 'promptly (' . (time - $t1) . ' s after the standby was started)');
is($primary->safe_psql('postgres', "SELECT signalr_bp.head('app/d')"), '3', 'head() counts them now');

# on the standby they are there too
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT first_offset FROM signalr_bp.seg_d0
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d1
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d2
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d3) c}),
	'3', 'the standby holds every delivered message');

$standby->stop;
$primary->stop;
done_testing();
