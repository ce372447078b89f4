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
	-- lock_room() with nothing else in the lock table.  Any other process's
	-- lock (an autovacuum worker's on the table it vacuums, the signalr_bp
	-- worker's maintain(): the extension's object lock) takes an entry, and
	-- the room would read one less.  So: wait until no other process holds
	-- a lock outside the fast path and the worker is idle, measure, and keep
	-- the measure only if the worker started no maintain() meanwhile (its
	-- query_start moves at each) and nobody else took a lock; else again.
	-- The checks commit before the measure: their locks on shared catalogs
	-- (pg_database, pg_authid) are never fast-path.  Autovacuum is off
	-- meanwhile: the caller turns it off.
	CREATE PROCEDURE lock_room_alone(INOUT room integer DEFAULT NULL) LANGUAGE plpgsql AS $$
	DECLARE
		n integer;
		quiet boolean;
		worker_before text;
		worker_after text;
	BEGIN
		FOR attempt IN 1..600 LOOP
			SELECT a.state || ' ' || a.query_start INTO worker_before FROM pg_stat_activity a
			 WHERE a.backend_type = 'signalr_bp worker';
			quiet := worker_before LIKE 'idle %'
				AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.backend_type = 'autovacuum worker')
				AND NOT EXISTS (SELECT FROM pg_locks l
								 WHERE l.pid IS DISTINCT FROM pg_backend_pid() AND NOT l.fastpath);
			COMMIT;
			IF quiet THEN
				n := lock_room();
				COMMIT;
				SELECT a.state || ' ' || a.query_start INTO worker_after FROM pg_stat_activity a
				 WHERE a.backend_type = 'signalr_bp worker';
				quiet := worker_after = worker_before
					AND NOT EXISTS (SELECT FROM pg_locks l
									 WHERE l.pid IS DISTINCT FROM pg_backend_pid() AND NOT l.fastpath);
				COMMIT;
				IF quiet THEN
					room := n;
					RETURN;
				END IF;
			END IF;
			PERFORM pg_sleep(0.1);
			COMMIT;
		END LOOP;
		RAISE EXCEPTION 'other processes kept holding locks for a minute';
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
# Lock-table room, measured alone (see lock_room_alone): autovacuum is off
# while it runs.  Each measure fills the lock table and so takes the free
# shared memory the lock table can grow into: measure after free memory.
sub lock_room_alone
{
	$node->safe_psql('postgres', 'ALTER SYSTEM SET autovacuum = off; SELECT pg_reload_conf()');
	my $n = $node->safe_psql('postgres', 'CALL lock_room_alone()');
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET autovacuum; SELECT pg_reload_conf()');
	return $n;
}

# baseline lock room on fresh shared memory, then fresh shared memory again
$node->restart;
my $locks_before = lock_room_alone();
# why alone: one lock held elsewhere (as an autovacuum worker holds one on
# the table it vacuums) reads as one less
my ($holder_in, $holder_out) = ('', '');
my $holder = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('postgres') ],
	'<', \$holder_in, '>', \$holder_out, '2>', \$holder_out);
$holder_in .= "BEGIN; LOCK signalr_bp.stream IN SHARE UPDATE EXCLUSIVE MODE; SELECT 'locked';\n";
$holder->pump until $holder_out =~ /locked/;
is($node->safe_psql('postgres', 'SELECT lock_room()'), $locks_before - 1,
	'a lock held by another process takes exactly one from the measured room');
$holder_in .= "COMMIT;\n\\q\n";
$holder->finish;
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
is(lock_room_alone(), $locks_before,
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
