# Restarts during a stream: a durable stream loses nothing across
# pg_ctl restart -m fast and -m immediate (crash); a fast stream loses
# nothing across -m fast, and after a crash its consumer is told (SB001 or
# SB002), never silently skipped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restart');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'signalr_bp'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app');
	SELECT signalr_bp.create_stream('app/d', true);
	SELECT signalr_bp.create_stream('app/f', false);
});

sub publish_range
{
	my ($from, $to) = @_;
	$node->safe_psql('postgres', qq{
		DO \$\$ BEGIN
			FOR i IN $from..$to LOOP
				PERFORM signalr_bp.publish(ARRAY['app/d', 'app/f'], convert_to(i::text, 'UTF8'));
				IF i % 10 = 0 THEN COMMIT; END IF;
			END LOOP;
		END \$\$});
}

sub fetch_all
{
	my ($stream, $from) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset) FROM signalr_bp.fetch('$stream', $from, 100000)");
	return ($rc, $out, $err);
}

publish_range(1, 1000);
my (undef, $fast_before) = fetch_all('app/f', 0);
is($fast_before, join(',', 1 .. 1000), 'fast stream: 1000 messages before any restart');

# a transaction in flight during the crash: it must never appear
my $inflight = $node->background_psql('postgres', on_error_stop => 0);
$inflight->query_until(qr/begun/, q{
	BEGIN;
	SELECT signalr_bp.publish(ARRAY['app/d', 'app/f'], convert_to('uncommitted', 'UTF8'));
	\echo begun
});

$node->restart(mode => 'fast');
eval { $inflight->quit };
my ($rc, $d1) = fetch_all('app/d', 0);
is($d1, join(',', 1 .. 1000), 'durable: nothing lost or duplicated across restart -m fast');
my ($rc2, $f1) = fetch_all('app/f', 0);
is($f1, join(',', 1 .. 1000), 'fast: nothing lost across restart -m fast');

publish_range(1001, 2000);
$node->stop('immediate');
$node->start;
my ($rc3, $d2) = fetch_all('app/d', 0);
is($d2, join(',', 1 .. 2000), 'durable: nothing lost or duplicated across a crash (-m immediate)');
is($node->safe_psql('postgres', "SELECT signalr_bp.head('app/d')"), '2000', 'durable: offsets stay dense');

# the fast stream lost its unlogged segments in the crash: the consumer that
# was at offset 1500 must be told
my ($rc4, $out4, $err4) = fetch_all('app/f', 1500);
ok($rc4 != 0 && $err4 =~ /(no longer available|beyond the head)/,
	'fast: resuming after the crash is an explicit error, not silence');
diag("fast stream after the crash: $err4");
publish_range(2001, 2010);
my $low = $node->safe_psql('postgres', "SELECT low_offset FROM signalr_bp.streams WHERE name = 'app/f'");
ok($low >= 2**40, "fast: a new epoch starts above every old offset (low_offset $low)");
my ($rc5, $out5, $err5) = fetch_all('app/f', 1500);
like($err5, qr/no longer available/, 'fast: once new messages arrive, the old offset is reported lost (SB001)');
my (undef, $f3) = fetch_all('app/f', $low);
is($f3, join(',', 2001 .. 2010), 'fast: after resynchronizing at low_offset, new messages flow');
note('fast mode lost what it held at the crash: messages 1..2000 (consumers are told; durable kept all)');

$node->stop;
done_testing();
