# Readers see only durable messages: a producer commits asynchronously
# (synchronous_commit = off) while a consumer long-polls; the server is
# stopped with -m immediate.  After the restart every message the consumer
# received is still there at the same offset (none was lost, no offset was
# reused), and the consumer resumes from its offset without an error.
# wal_writer_delay is long, so that without the engine's own flush the tail
# of the WAL would still be in memory at the crash.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'signalr_bp'
wal_writer_delay = 10s
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app', 'postgres');
	SELECT signalr_bp.create_stream('app/d');
});

my %seen;		# offset -> payload, as the consumer received them
my $next = 0;
my $seq = 0;

# one consumer read: a long poll from its offset
sub consume
{
	my ($wait_ms) = @_;
	my $rows = $node->safe_psql('postgres',
		"SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('app/d', $next, 10000, $wait_ms)");
	for my $row (split /\n/, $rows)
	{
		my ($offset, $payload) = split /\|/, $row;
		die "offset $offset out of order (expected $next)" if $offset != $next;
		$seen{$offset} = $payload;
		$next = $offset + 1;
	}
}

for my $round (1, 2)
{
	# a producer committing one message every few milliseconds, asynchronously
	my $from = $seq + 1;
	my $producer = IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', qq{
DO \$\$ BEGIN
	PERFORM set_config('synchronous_commit', 'off', false);
	FOR i IN $from..$from + 100000 LOOP
		PERFORM signalr_bp.publish('app/d', convert_to('r$round-' || i, 'UTF8'));
		COMMIT;
		PERFORM pg_sleep(0.003);
	END LOOP;
END \$\$} ],
		'>', \my $pout, '2>', \my $perr);
	my $start = $next;
	consume(2000) for 1 .. 15;
	ok($next > $start, "round $round: the consumer received messages while they were produced ($start..$next)");

	# crash right after a read, while commits are in flight
	consume(0);
	my $seen_next = $next;
	$node->stop('immediate');
	$producer->finish;
	$node->start;

	my $head = $node->safe_psql('postgres', "SELECT signalr_bp.head('app/d')");
	cmp_ok($head, '>=', $seen_next, "round $round: after the crash the head ($head) is not below what the consumer received ($seen_next)");
	my ($rc, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM signalr_bp.fetch('app/d', $seen_next)");
	is($rc, 0, "round $round: the consumer resumes from its offset without an error") or diag($err);

	# new messages take the next offsets: none may replace a message already seen
	$node->safe_psql('postgres', "SELECT signalr_bp.publish_batch('app/d', array_agg(convert_to('after$round-' || i, 'UTF8'))) FROM generate_series(1, 200) i");
	my %now = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
		"SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('app/d', 0, 1000000)");
	my @changed = grep { !defined $now{$_} || $now{$_} ne $seen{$_} } sort { $a <=> $b } keys %seen;
	is(scalar(@changed), 0, "round $round: every message the consumer received is still there, at its offset")
	  or diag('lost or replaced at offsets: ' . join(',', @changed[ 0 .. ($#changed < 9 ? $#changed : 9) ]));

	# the consumer goes on from where it was
	$seq += 100000;
	consume(0);
}

unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no backend crashed (only the server was stopped)');
$node->stop;
done_testing();
