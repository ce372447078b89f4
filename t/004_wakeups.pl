# Batched wake-ups: a LISTENing consumer is woken by the worker's NOTIFY
# (payload: the head), and many quick commits produce far fewer NOTIFYs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('wakeups');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'signalr_bp'
signalr_bp.notify_interval = 20ms
});
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION signalr_bp; SELECT signalr_bp.create_application('app'); SELECT signalr_bp.create_stream('app/w')");
my $channel = $node->safe_psql('postgres', "SELECT signalr_bp.channel('app/w')");

my $listener = $node->background_psql('postgres');
$listener->query_safe("LISTEN $channel");

# 200 commits as fast as one session can make them
$node->safe_psql('postgres', q{
	DO $$ BEGIN
		FOR i IN 1..200 LOOP
			PERFORM signalr_bp.publish('app/w', '\x00');
			COMMIT;
		END LOOP;
	END $$});
sleep(1);
# psql prints the notifications it received when it next talks to the server
my $out = $listener->query_safe("SELECT 1");
my $stderr = $listener->{stderr} // '';
my @notes = ($out . $stderr) =~ /Asynchronous notification "\Q$channel\E" with payload "(\d+)"/g;
ok(@notes >= 1, 'the LISTENing session was woken (' . scalar(@notes) . ' notifications)');
ok(@notes < 200, 'batched: fewer notifications than commits');
is($notes[-1], '200', 'the last notification carries the head');
$listener->quit;

my ($wakeups, $commits) = split /\|/, $node->safe_psql('postgres',
	"SELECT wakeups, commits FROM signalr_bp.streams WHERE name = 'app/w'");
ok($wakeups > 0 && $wakeups < $commits, "streams view: $wakeups wake-ups for $commits commits");

$node->stop;
done_testing();
