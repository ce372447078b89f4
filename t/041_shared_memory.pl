# Shared memory is bounded and reused: signalr_bp.max_streams is a hard cap
# with a clear error; a dropped stream gives its entry back once nobody
# holds it (a long poll waiting on it is woken and fails cleanly first);
# 100,000 create/read/drop cycles leave free shared memory and lock-table
# room exactly as they were.  Also: publishing to a stream and dropping it in
# the same transaction commits cleanly.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $cycles = $ENV{SBP_CHURN_CYCLES} // 100000;
my $max_streams = 16;

my $node = PostgreSQL::Test::Cluster->new('shmem');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'signalr_bp'
signalr_bp.max_streams = $max_streams
# churn leaves a dead stream row per cycle: vacuum it away as it goes
autovacuum_naptime = 1s
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app', 'postgres');
	ALTER TABLE signalr_bp.stream SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
	ALTER ROLE postgres SET synchronous_commit = off;
	-- how many locks one transaction can take before the lock table is full
	CREATE FUNCTION lock_room() RETURNS integer LANGUAGE plpgsql AS $$
	DECLARE n integer := 0;
	BEGIN
		BEGIN
			LOOP
				PERFORM pg_advisory_xact_lock(n);
				n := n + 1;
			END LOOP;
		EXCEPTION WHEN out_of_memory THEN
			RETURN n;
		END;
	END $$;
	CREATE VIEW shmem_free AS
	SELECT (SELECT size FROM pg_shmem_allocations WHERE name IS NULL) AS free,
		   (SELECT allocated_size FROM pg_shmem_allocations WHERE name = '<anonymous>') AS anonymous;
});

# the application's own stream ($signalr) holds one entry
my $room = $max_streams - 1;

# --- the cap -----------------------------------------------------------------
my $created = 0;
my $cap_err = '';
for my $i (1 .. $max_streams + 4)
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT signalr_bp.create_stream('app/cap$i')");
	if ($rc != 0) { $cap_err = $err; last; }
	$created++;
}
is($created, $room, "exactly max_streams entries: $room streams besides the application's");
like($cap_err, qr/ERROR:  54000: too many streams with shared state/, 'the next one fails with 54000');
like($cap_err, qr/HINT:  .*signalr_bp\.max_streams/, 'the hint names signalr_bp.max_streams');
is($node->safe_psql('postgres', "SELECT count(*) FROM signalr_bp.stream WHERE local_name LIKE 'cap%'"),
	$room, 'the failed creation left no row behind');

$node->safe_psql('postgres', "SELECT signalr_bp.drop_stream('app/cap1')");
is($node->psql('postgres', "SELECT signalr_bp.create_stream('app/again')"), 0,
	'a dropped stream gives its entry back');

# a long poll holds the entry of a stream being dropped: woken, it fails cleanly
my ($poll_out, $poll_err) = ('', '');
my $poll = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c',
	  "SELECT * FROM signalr_bp.fetch_packed('app/cap2', 0, 1000, 60000)" ],
	'>', \$poll_out, '2>', \$poll_err);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%fetch_packed(''app/cap2''%' AND wait_event_type = 'Extension'")
  or die 'the long poll never started waiting';
my $t0 = time;
$node->safe_psql('postgres', "SELECT signalr_bp.drop_stream('app/cap2')");
$poll->finish;
ok(time - $t0 < 30, 'the waiting long poll was woken by the drop');
like($poll_err, qr/stream "app\/cap2" was dropped by a concurrent transaction|stream "app\/cap2" does not exist/,
	'and failed cleanly');
is($node->psql('postgres', "SELECT signalr_bp.create_stream('app/again2')"), 0,
	'once it left, the entry was reused');

# drop everything the cap test made
$node->safe_psql('postgres', q{
	SELECT signalr_bp.drop_stream('app/' || local_name) FROM signalr_bp.stream WHERE local_name NOT LIKE '$%'});

# --- publish then drop in one transaction ------------------------------------
$node->safe_psql('postgres', "SELECT signalr_bp.create_stream('app/t'); SELECT signalr_bp.create_stream('app/t2')");
my ($rc, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	SELECT signalr_bp.publish('app/t', 'gone with the stream');
	SELECT signalr_bp.drop_stream('app/t');
	COMMIT;});
is($rc, 0, 'publish then drop_stream of the same stream in one transaction: COMMIT succeeds');
unlike($err, qr/ERROR/, '... without an error') or diag($err);
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT signalr_bp.publish('app/t2', 'kept');
	SAVEPOINT s;
	SELECT signalr_bp.drop_stream('app/t2');
	ROLLBACK TO SAVEPOINT s;
	COMMIT;});
is($node->safe_psql('postgres', "SELECT convert_from(payload, 'UTF8') FROM signalr_bp.fetch('app/t2', 0)"),
	'kept', 'a drop rolled back to a savepoint keeps what was published');
$node->safe_psql('postgres', "SELECT signalr_bp.drop_stream('app/t2')");

# --- churn ---------------------------------------------------------------------
# baseline lock room on fresh shared memory, then fresh shared memory again
$node->restart;
my $locks_before = $node->safe_psql('postgres', 'SELECT lock_room()');
$node->restart;
my $free_before = $node->safe_psql('postgres', 'SELECT free, anonymous FROM shmem_free');

# two sessions, each create/read/drop in its own transactions; every tenth
# cycle also publishes (asynchronously, so its slot may still wait for the
# WAL flush when the stream is dropped)
my @sessions;
for my $s (1, 2)
{
	my $n = int($cycles / 2);
	my %io = (out => '', err => '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', qq{
DO \$\$ BEGIN
	FOR i IN 1..$n LOOP
		PERFORM signalr_bp.create_stream('app/churn${s}_' || i);
		IF i % 10 = 0 THEN PERFORM signalr_bp.publish('app/churn${s}_' || i, 'x'); END IF;
		COMMIT;
		PERFORM * FROM signalr_bp.fetch('app/churn${s}_' || i, 0);
		PERFORM signalr_bp.drop_stream('app/churn${s}_' || i);
		COMMIT;
	END LOOP;
END \$\$} ],
		'>', \$io{out}, '2>', \$io{err}, IPC::Run::timeout(1800));
	push @sessions, [ $h, \%io ];
}
my $t1 = time;
for my $s (@sessions)
{
	ok($s->[0]->finish, 'churn session finished') or diag($s->[1]{err});
}
note sprintf('%d create/read/drop cycles in %d s', $cycles, time - $t1);

is($node->safe_psql('postgres', 'SELECT free, anonymous FROM shmem_free'), $free_before,
	"free shared memory is unchanged after $cycles cycles");
is($node->safe_psql('postgres', 'SELECT lock_room()'), $locks_before,
	"lock-table room is unchanged ($locks_before locks in one transaction)");
my $again = 0;
for my $i (1 .. $room)
{
	$again++ if $node->psql('postgres', "SELECT signalr_bp.create_stream('app/after$i')") == 0;
}
is($again, $room, 'every entry is free again: max_streams streams can be created');

unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no process crashed');
$node->stop;
done_testing();
