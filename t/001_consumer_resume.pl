# A consumer killed mid-stream resumes from its last offset and receives
# every committed message exactly once, in order; rolled-back transactions
# and savepoints deliver nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('resume');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'signalr_bp'");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION signalr_bp; SELECT signalr_bp.create_application('app'); SELECT signalr_bp.create_stream('app/s')");

# producer: 3000 numbered messages, one transaction each; every 7th rolls
# back, every 5th also publishes a savepoint-rolled-back extra
my $producer = $node->background_psql('postgres');
$producer->query_until(qr/started/, q{
	\echo started
	DO $$
	BEGIN
		FOR i IN 1..3000 LOOP
			PERFORM signalr_bp.publish('app/s', convert_to(i::text, 'UTF8'));
			IF i % 5 = 0 THEN
				BEGIN
					PERFORM signalr_bp.publish('app/s', convert_to('x' || i, 'UTF8'));
					RAISE EXCEPTION 'roll back the savepoint';
				EXCEPTION WHEN raise_exception THEN NULL;
				END;
			END IF;
			IF i % 7 = 0 THEN ROLLBACK; ELSE COMMIT; END IF;
		END LOOP;
	END $$;
	\echo finished
});

my @got;
my $next = 0;
my $killed = 0;
my $rounds = 0;
while (@got < 3000 - int(3000 / 7) && $rounds++ < 2000)
{
	# each fetch is a new connection, as a consumer reconnecting would be
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT msg_offset, convert_from(payload, 'UTF8') FROM signalr_bp.fetch('app/s', $next, 100, 200)",
		extra_params => ['-A', '-F', ' ']);
	if ($rc != 0) { next; }
	for my $line (split /\n/, $out)
	{
		my ($off, $msg) = split / /, $line;
		is($off, $next, "offset $off follows $next") unless $off == $next;
		push @got, $msg;
		$next = $off + 1;
	}
	if (!$killed && @got > 800)
	{
		# kill a consumer waiting in a long poll: the client just reconnects
		my $bg = $node->background_psql('postgres', on_error_stop => 0);
		$bg->query_until(qr/polling/, "\\echo polling\nSELECT count(*) FROM signalr_bp.fetch('app/s', 100000000, 10, 30000);\n");
		$node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE '%100000000%' AND pid <> pg_backend_pid()");
		$node->safe_psql('postgres',
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%100000000%' AND pid <> pg_backend_pid()");
		$bg->quit;
		$killed = 1;
	}
}
$producer->quit;

my @expected = grep { $_ % 7 != 0 } 1 .. 3000;
is(scalar(@got), scalar(@expected), 'every committed message arrived once (' . scalar(@expected) . ')');
is_deeply(\@got, \@expected, 'in commit order, nothing rolled back, no savepoint extras');
ok($killed, 'a waiting consumer was terminated mid-stream');
is($node->safe_psql('postgres', "SELECT signalr_bp.head('app/s')"), scalar(@expected), 'offsets are dense: head equals the message count');

$node->stop;
done_testing();
