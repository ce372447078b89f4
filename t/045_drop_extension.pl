# DROP EXTENSION under load: publishers, long-polling consumers and the
# worker (running maintain() every 10 ms) are busy when the extension is
# dropped.  The drop succeeds; every client either finishes or fails with a
# clean SQLSTATE (never XX000, never "could not open relation with OID");
# the worker and the launcher log no error.  Twice, re-creating it between.
# And: a signalr_bp.database that does not exist is logged once, then looked
# for quietly until it is created.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('drop');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'signalr_bp'
signalr_bp.maintenance_interval = 10ms
log_error_verbosity = verbose
log_line_prefix = '%m [%p] %b '
});
$node->start;

my $setup = q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app', 'postgres');
	SELECT signalr_bp.create_stream('app/s' || i) FROM generate_series(1, 4) i;
};

sub client
{
	my ($sql) = @_;
	my %io = (out => '', err => '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'), '-c', $sql ],
		'>', \$io{out}, '2>', \$io{err}, IPC::Run::timeout(300));
	return [ $h, \%io ];
}

for my $round (1, 2)
{
	$node->safe_psql('postgres', $setup);
	my @clients;
	for my $s (1, 2)
	{
		# publishers: one message per transaction, until the functions are gone
		push @clients, client(qq{
DO \$\$ BEGIN
	FOR i IN 1..1000000 LOOP
		PERFORM signalr_bp.publish('app/s$s', convert_to(i::text, 'UTF8'));
		PERFORM signalr_bp.publish_batch('app/s' || (2 + $s), ARRAY['a', 'b']::bytea[]);
		COMMIT;
	END LOOP;
END \$\$});
		# consumers: long polls from the head, one after the other
		push @clients, client(qq{
DO \$\$ DECLARE next bigint := 0; BEGIN
	FOR i IN 1..1000000 LOOP
		SELECT f.next_offset INTO next FROM signalr_bp.fetch_packed('app/s$s', next, 65536, 5000) f;
		COMMIT;
	END LOOP;
END \$\$});
	}
	# a consumer of a stream nobody publishes to: in a long poll when the drop comes
	$node->safe_psql('postgres', "SELECT signalr_bp.create_stream('app/idle')");
	push @clients, client("SELECT * FROM signalr_bp.fetch_packed('app/idle', 0, 1000, 60000)");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%fetch_packed(''app/idle''%' AND wait_event_type = 'Extension'")
	  or die 'the idle long poll never started waiting';
	sleep 2;

	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nDROP EXTENSION signalr_bp",
		timeout => 120);
	is($rc, 0, "round $round: DROP EXTENSION under load succeeds") or diag($err);

	my $t0 = time;
	my $i = 0;
	for my $c (@clients)
	{
		$c->[0]->finish;
		my $e = $c->[1]{err};
		$i++;
		unlike($e, qr/XX000|could not open relation with OID|cache lookup failed|deadlock detected/,
			"round $round: client $i ended cleanly") or diag($e);
		like($e, qr/ERROR:  [0-9A-Z]{5}:/, "round $round: client $i got an error with its SQLSTATE")
		  if $e ne '';
	}
	ok(time - $t0 < 60, "round $round: every client, the idle long poll too, ended within a minute");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'signalr_bp'"),
		'0', "round $round: the extension is gone");
	# the worker keeps running maintain() on a database without the extension
	sleep 1;
}

my $log = slurp_file($node->logfile);
my @worker_errors = grep { /signalr_bp (worker|launcher) (ERROR|FATAL|WARNING)/ } split /\n/, $log;
is(scalar(@worker_errors), 0, 'the worker and the launcher logged no error while the extension was dropped')
  or diag(join("\n", @worker_errors[ 0 .. ($#worker_errors < 4 ? $#worker_errors : 4) ]));
unlike($log, qr/ERROR:  XX000|could not open relation with OID|terminated by signal/,
	'the server log has no internal error and no crash');
$node->stop;

# --- a missing signalr_bp.database -----------------------------------------
my $nodb = PostgreSQL::Test::Cluster->new('nodb');
$nodb->init;
$nodb->append_conf('postgresql.conf', q{
shared_preload_libraries = 'signalr_bp'
signalr_bp.database = 'appdb'
log_line_prefix = '%m [%p] %b '
});
$nodb->start;
sleep 4;
$log = slurp_file($nodb->logfile);
my $missing = () = $log =~ /database "appdb" does not exist or does not accept connections/g;
is($missing, 1, 'a missing signalr_bp.database is logged once in 4 s');
unlike($log, qr/signalr_bp (worker|launcher) FATAL/, 'no FATAL from a worker trying to connect to it');
$nodb->safe_psql('postgres', 'CREATE DATABASE appdb');
ok($nodb->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'signalr_bp worker' AND datname = 'appdb'"),
	'once it is created, the worker starts in it');
$nodb->safe_psql('appdb', "CREATE EXTENSION signalr_bp; SELECT signalr_bp.maintain()");
$nodb->stop;
done_testing();
