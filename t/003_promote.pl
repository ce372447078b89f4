# Failover to a synchronous standby mid-stream: the standby refuses to
# publish, the worker starts after promotion, and a consumer resuming on the
# new primary from its offset loses nothing and receives nothing twice.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'signalr_bp'
});
$primary->start;
$primary->safe_psql('postgres', "CREATE EXTENSION signalr_bp; SELECT signalr_bp.create_application('app'); SELECT signalr_bp.create_stream('app/s')");
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "cluster_name = 'standby'");
$standby->start;
# synchronous only once the standby exists, or the setup above would wait for it
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'");
$primary->reload;
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'")
  or die 'standby never became synchronous';

$primary->safe_psql('postgres', q{
	DO $$ BEGIN
		FOR i IN 1..500 LOOP
			PERFORM signalr_bp.publish('app/s', convert_to(i::text, 'UTF8'));
			COMMIT;
		END LOOP;
	END $$});
# the consumer has read the first 250 on the old primary
my $seen = $primary->safe_psql('postgres',
	"SELECT string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('app/s', 0, 250)");
is($seen, join(',', 1 .. 250), 'consumer read offsets 0..249 on the primary');

my ($rc, $out, $err) = $standby->psql('postgres', "SELECT signalr_bp.publish('app/s', 'x')");
like($err, qr/signalr_bp requires a primary server/, 'a standby refuses to publish, saying a primary is required');

$primary->stop('immediate');
$standby->promote;
$standby->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'signalr_bp worker'")
  or die 'worker did not start after promotion';
pass('the background worker started on the promoted standby');

$standby->safe_psql('postgres', q{
	DO $$ BEGIN
		FOR i IN 501..600 LOOP
			PERFORM signalr_bp.publish('app/s', convert_to(i::text, 'UTF8'));
			COMMIT;
		END LOOP;
	END $$});
my $rest = $standby->safe_psql('postgres',
	"SELECT string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('app/s', 250, 100000)");
is($rest, join(',', 251 .. 600), 'resumed on the new primary at offset 250: nothing lost, nothing twice');
is($standby->safe_psql('postgres', "SELECT signalr_bp.head('app/s')"), '600', 'offsets continue densely after failover');

$standby->stop;
done_testing();
