# Without shared_preload_libraries there are no inflight slots to hold
# readers back until a commit is durable, so a transaction that publishes to
# a durable stream commits synchronously whatever synchronous_commit says:
# when COMMIT returns, its WAL is flushed, and a crash right after keeps the
# message.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app', 'postgres');
	SELECT signalr_bp.create_stream('app/d');
	CREATE TABLE plain (v text);
});
is($node->safe_psql('postgres', "SHOW shared_preload_libraries"), '', 'the module is not preloaded');

# Nothing else may flush the WAL meanwhile: pause the WAL writer (this
# test's own server) for the checks.
my $walwriter = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'");
ok(kill('STOP', $walwriter), 'WAL writer paused');

# the session's commit LSN cannot be asked for directly: compare the flush
# position after COMMIT with the insert position before the transaction
for my $i (1 .. 5)
{
	my ($flushed_past) = reverse split /\n/, $node->safe_psql('postgres', qq{
		SET synchronous_commit = off;
		SELECT pg_current_wal_insert_lsn() AS before \\gset
		BEGIN;
		SELECT signalr_bp.publish('app/d', 'm$i');
		COMMIT;
		SELECT pg_current_wal_flush_lsn() > :'before'::pg_lsn;
	});
	is($flushed_past, 't', "publish $i with synchronous_commit off: durable when COMMIT returns");
}

# the same check tells an ordinary asynchronous commit apart
my $plain = $node->safe_psql('postgres', q{
	SET synchronous_commit = off;
	SELECT pg_current_wal_insert_lsn() AS before \gset
	INSERT INTO plain VALUES ('x');
	SELECT pg_current_wal_flush_lsn() > :'before'::pg_lsn;
});
is($plain, 'f', 'an ordinary asynchronous commit is not flushed at once (so the check above means something)');

# the setting is back to off after such a commit
is((reverse split /\n/, $node->safe_psql('postgres', q{
	SET synchronous_commit = off;
	BEGIN;
	SELECT signalr_bp.publish('app/d', 'x');
	COMMIT;
	SHOW synchronous_commit;
}))[0], 'off', 'synchronous_commit is changed for that commit only');

ok(kill('CONT', $walwriter), 'WAL writer resumed');

# and a crash keeps them
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres',
		"SELECT string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('app/d', 0)"),
	'm1,m2,m3,m4,m5,x', 'after a crash every published message is there');

$node->stop;
done_testing();
