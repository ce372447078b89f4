# Limits are clamped or refused cleanly, never "out of memory": fetch_packed
# and fetch with the largest arguments return in parts; one transaction that
# publishes more than 10,000,000 messages to one stream gets 54000; a
# SignalR send's payload may be exactly signalr_bp.max_message_size, however
# long the envelope's lists are.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('limits');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'signalr_bp'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	SELECT signalr_bp.create_application('app', 'postgres');
	SELECT signalr_bp.create_stream('app/big');
	-- 80 MB of messages: more than one fetch_packed returns
	SELECT signalr_bp.publish_batch('app/big', array_agg(convert_to(repeat('x', 1000000), 'UTF8')))
	  FROM generate_series(1, 80);
});

my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT next_offset, message_count, length(messages) FROM signalr_bp.fetch_packed('app/big', 0, 2147483647)");
is($rc, 0, 'fetch_packed(max_bytes => 2^31-1) succeeds') or diag($err);
my ($next, $count, $len) = split /\|/, $out;
ok($count > 0 && $count < 80 && $len <= 64 * 1024 * 1024,
	"it returns a part: $count messages, $len bytes (clamped to 64 MB)");
is($node->safe_psql('postgres', "SELECT message_count FROM signalr_bp.fetch_packed('app/big', $next, 2147483647)"),
	80 - $count, 'the next call returns the rest');
is($node->safe_psql('postgres', "SELECT count(*) FROM signalr_bp.fetch('app/big', 0, 2147483647)"),
	'80', 'fetch(max_messages => 2^31-1) succeeds');

# more messages than one transaction may publish to one stream
($rc, $out, $err) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	SELECT signalr_bp.publish_batch('app/big', array_fill(''::bytea, ARRAY[10000001]))});
like($err, qr/ERROR:  54000: too much published to stream "app\/big" in one transaction/,
	'10,000,001 messages in one transaction: 54000, not out of memory');
is($node->safe_psql('postgres', "SELECT signalr_bp.head('app/big')"), '80', 'and nothing was appended');

# a SignalR send carries a payload of exactly max_message_size
($rc, $out, $err) = $node->psql('postgres', q{
	SET signalr_bp.max_message_size = 1000;
	SELECT signalr_bp.send_all('app', 'Hub', convert_to(repeat('p', 1000), 'UTF8'));
	SELECT signalr_bp.send_connections('app', 'Hub',
		ARRAY(SELECT 'connection-' || i FROM generate_series(1, 200) i),
		convert_to(repeat('p', 1000), 'UTF8'));});
is($rc, 0, 'a send with a payload of max_message_size succeeds, whatever the envelope adds') or diag($err);
($rc, $out, $err) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	SET signalr_bp.max_message_size = 1000;
	SELECT signalr_bp.send_all('app', 'Hub', convert_to(repeat('p', 1001), 'UTF8'));});
like($err, qr/ERROR:  54000: message payload is too large/, 'one byte more: 54000');

unlike(slurp_file($node->logfile), qr/out of memory|terminated by signal/, 'no out-of-memory, no crash');
$node->stop;
done_testing();
