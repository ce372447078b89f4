# A transaction that took offsets and released the stream's commit lock, but
# whose commit is not yet visible (here: waiting for a synchronous standby
# that is not there), must hold back delivery of later offsets that other
# transactions already committed; once it commits, everything is delivered in
# offset order.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('horizon');
$node->init(allows_streaming => 1);	# else commits never wait for a standby
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'signalr_bp'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app');
	SELECT signalr_bp.create_stream('app/h');
	SELECT signalr_bp.publish('app/h', 'before');
});

# commits now wait for a standby that never comes
$node->safe_psql('postgres', "ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
$node->reload;

my $stuck = $node->background_psql('postgres', on_error_stop => 0);
$stuck->query_until(qr/waiting/, q{
	\echo waiting
	SELECT signalr_bp.publish('app/h', 'stuck');
});
# wait until its commit is parked in the synchronous-replication wait
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE '%''stuck''%'")
  or die "the publishing commit never reached the sync-rep wait";

# a later transaction commits without waiting
$node->safe_psql('postgres', q{
	SET synchronous_commit = local;
	SELECT signalr_bp.publish('app/h', 'later');
});
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT first_offset FROM signalr_bp.seg_d0
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d1
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d2
		UNION ALL SELECT first_offset FROM signalr_bp.seg_d3) c WHERE first_offset = 2}),
	'1', 'the later transaction is committed and visible (its chunk is there)');
is($node->safe_psql('postgres', "SELECT signalr_bp.head('app/h')"), '1',
	'head() is the durable horizon: it stops below the commit still in flight');
is($node->safe_psql('postgres',
		"SELECT string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('app/h', 0)"),
	'before', 'offset 2 is held back while offset 1 is still committing');
is($node->safe_psql('postgres', "SELECT count(*) FROM signalr_bp.fetch('app/h', 1, 10, 200)"),
	'0', 'a long poll from offset 1 waits instead of skipping to 2');

# release the stuck commit: cancelling the wait leaves it committed locally
$node->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
$node->safe_psql('postgres', "ALTER SYSTEM RESET synchronous_standby_names");
$node->reload;
$stuck->quit;

is($node->safe_psql('postgres',
		"SELECT string_agg(msg_offset || ':' || convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('app/h', 0, 10, 2000)"),
	'0:before,1:stuck,2:later', 'once it commits, all are delivered in offset order');

$node->stop;
done_testing();
