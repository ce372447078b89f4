# Applications are sealed from each other.  Two applications (owner roles
# owner_a, owner_b; hub login roles hub_a, hub_b), a plain login role outside
# signalr_bp_hub, and a hub role that plants look-alike objects early in its
# search_path.  Every rule of the trust boundary (docs/architecture.md):
# another application's names cannot be created, adopted, read, published
# to, dropped, listened to or probed for; names cannot collide; caches do
# not outlive an owner change in a long-lived session.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sealed');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'signalr_bp'
signalr_bp.notify_interval = 0
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION signalr_bp;
	CREATE ROLE owner_a NOLOGIN;
	CREATE ROLE hub_a LOGIN IN ROLE signalr_bp_hub, owner_a;
	CREATE ROLE owner_b NOLOGIN;
	CREATE ROLE hub_b LOGIN IN ROLE signalr_bp_hub, owner_b;
	CREATE ROLE plain LOGIN;
	-- the hijacker may create schemas (to plant look-alikes in)
	GRANT CREATE ON DATABASE postgres TO hub_b;
	SELECT signalr_bp.create_application('a', owner => 'owner_a');
	SELECT signalr_bp.create_application('b', owner => 'owner_b');
});

# run SQL as a role; returns (stdout, stderr) with verbose errors (SQLSTATE,
# hint and source location) and no "psql:<stdin>:N:" prefixes
sub run_as
{
	my ($role, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $sql,
		extra_params => ['-U', $role, '-v', 'VERBOSITY=verbose']);
	$err =~ s/^psql:<stdin>:\d+: //mg;
	return ($out, $err);
}

sub ok_as
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => ['-U', $role]);
}

ok_as('hub_b', q{
	SELECT signalr_bp.create_stream('b/secret');
	SELECT signalr_bp.publish('b/secret', 'b-private');
	SELECT * FROM signalr_bp.register_server('b', 'srv-b');
	SELECT signalr_bp.connect('b', 'srv-b', 'Hub', 'conn-b', 'user-b');
	SELECT signalr_bp.add_to_group('b', 'Hub', 'conn-b', 'room-b');
});
ok_as('hub_a', q{SELECT signalr_bp.create_stream('a/mine')});
my $b_state = q{
	SELECT signalr_bp.head('b/secret'), signalr_bp.connection_count('b'),
		   (SELECT string_agg(s, ',') FROM signalr_bp.group_connections('b', 'Hub', 'room-b') s),
		   (SELECT string_agg(server, ',') FROM signalr_bp.servers('b'))};
my $b_before = ok_as('hub_b', $b_state);
my $b_streams = q{SELECT string_agg(name, ',' ORDER BY name) FROM signalr_bp.streams WHERE application = 'b'};
my $b_streams_before = ok_as('hub_b', $b_streams);

# --- existence is not revealed: another application's stream, a missing
# stream of that application and a missing application answer the same,
# SQLSTATE, hint and source location included
my @stream_calls = (
	q{SELECT signalr_bp.head('%s')},
	q{SELECT signalr_bp.channel('%s')},
	q{SELECT * FROM signalr_bp.fetch('%s', 0)},
	q{SELECT * FROM signalr_bp.fetch('%s', 0, 10, 50)},
	q{SELECT * FROM signalr_bp.fetch_packed('%s', 0)},
	q{SELECT signalr_bp.publish('%s', 'from a')},
	q{SELECT signalr_bp.publish(ARRAY['a/mine', '%s'], 'from a')},
	q{SELECT signalr_bp.publish_batch('%s', ARRAY['from a']::bytea[])},
	q{SELECT signalr_bp.drop_stream('%s')},
	q{SELECT signalr_bp.drop_stream('%s', if_exists => true)},
	q{SELECT signalr_bp.create_stream('%s')},
	q{SELECT signalr_bp.create_stream('%s', false, if_not_exists => true)},
	q{SELECT * FROM signalr_bp._stream_stats('%s')},
	q{SELECT count(*) FROM signalr_bp.streams WHERE name = '%s'},
);
for my $tmpl (@stream_calls)
{
	# B's reserved stream and a missing application's: the same answer too
	for my $group ([['b', 'secret'], ['b', 'nosuch'], ['zz', 'secret']], [['b', '$signalr'], ['zz', '$signalr']])
	{
		my %seen;
		for my $target (@$group)
		{
			my ($app, $local) = @$target;
			my ($out, $err) = run_as('hub_a', sprintf($tmpl, "$app/$local"));
			my $seen = "$out|$err";
			$seen =~ s/\Q$app\/$local\E/STREAM/g;
			$seen =~ s/"\Q$app\E"/"APP"/g;
			$seen{$seen}++;
		}
		my ($answer) = keys %seen;
		my $what = join(', ', map { "$_->[0]/$_->[1]" } @$group);
		is(scalar(keys %seen), 1, "same answer for $what: $tmpl")
		  or diag(explain(\%seen));
		like($answer, qr/^\|$|42704|42939|^f\||^0\|/, "  ... \"does not exist\", reserved, or nothing: $tmpl");
	}
}

# the same for every SignalR function that takes an application, generated
# from the catalog with plausible arguments
my @app_calls = split /\n/, $node->safe_psql('postgres', q{
	SELECT format('SELECT %s(%s)', p.oid::regproc,
				  string_agg(CASE WHEN a.n = 1 THEN '''%s'''
								  WHEN a.t IN (SELECT oid FROM pg_type WHERE typname IN
											   ('text', 'hub_name', 'connection_id', 'group_name', 'user_id'))
									   THEN '''x'''
								  WHEN a.t = 'text[]'::regtype THEN '''{x}'''
								  WHEN a.t = 'bytea'::regtype THEN '''x'''
								  WHEN a.t = 'bytea[]'::regtype THEN '''{x}'''
								  WHEN a.t = 'integer'::regtype THEN '1'
								  WHEN a.t = 'boolean'::regtype THEN 'false'
								  WHEN a.t = 'signalr_bp.audience'::regtype THEN '''all'''
								  WHEN a.t = 'signalr_bp.audience[]'::regtype THEN 'ARRAY[''all''::signalr_bp.audience]'
								  ELSE 'NULL' END || '::' || format_type(a.t, NULL), ', ' ORDER BY a.n))
	  FROM pg_proc p, unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, n)
	 WHERE p.pronamespace = 'signalr_bp'::regnamespace
	   AND p.proargnames[1] = 'app'
	   AND has_function_privilege('signalr_bp_hub', p.oid, 'EXECUTE')
	 GROUP BY p.oid ORDER BY 1});
ok(@app_calls >= 20, scalar(@app_calls) . ' SignalR functions take an application');
for my $tmpl (@app_calls)
{
	my %seen;
	for my $app ('b', 'zz')
	{
		my ($out, $err) = run_as('hub_a', sprintf($tmpl, $app));
		my $seen = "$out|$err";
		$seen =~ s/"\Q$app\E"/"APP"/g;
		$seen =~ s/'\Q$app\E'/'APP'/g;
		$seen{$seen}++;
	}
	my ($answer) = keys %seen;
	is(scalar(keys %seen), 1, "same answer for application B and a missing one: $tmpl")
	  or diag(explain(\%seen));
	like($answer, qr/42704: application "APP" does not exist/, "  ... \"does not exist\": $tmpl");
}

# --- nothing was created, read, published, dropped or changed in B
is(ok_as('hub_b', $b_state), $b_before, "B's streams, connections, groups and servers are untouched");
is(ok_as('hub_b', q{SELECT string_agg(convert_from(payload, 'UTF8'), ',') FROM signalr_bp.fetch('b/secret', 0)}),
   'b-private', "B's stream holds only B's message");
is(ok_as('hub_b', $b_streams), $b_streams_before, 'B still has exactly its streams');
is(ok_as('hub_a', q{SELECT string_agg(name, ',' ORDER BY name) FROM signalr_bp.streams}), 'a/$signalr,a/mine',
   "A's streams view shows A's streams only");

# --- adoption: A prepares names B will use later; B never gets A's
ok_as('hub_a', q{
	SELECT signalr_bp.create_stream('a/b2');
	SELECT signalr_bp.publish('a/b2', 'planted by a');
	SELECT signalr_bp.create_stream('a/b3', false);
});
my ($stream_b2) = split /\|/, ok_as('hub_b', q{SELECT * FROM signalr_bp.register_server('b', 'b2')});
my ($stream_b3) = split /\|/, ok_as('hub_b', q{SELECT * FROM signalr_bp.register_server('b', 'b3')});
like($stream_b2, qr{^b/}, "B's server consumes a stream of B ($stream_b2)");
is(ok_as('hub_b', "SELECT count(*) FROM signalr_bp.fetch('$stream_b2', 0) WHERE position('planted'::bytea IN payload) > 0"),
   '0', 'nothing A published is in it');
is(ok_as('hub_b', "SELECT owner FROM signalr_bp.streams WHERE name = '$stream_b3'"), 'owner_b',
   "a name A prepared did not make B's registration fail or change its owner");
my (undef, $err) = run_as('hub_a', "SELECT * FROM signalr_bp.fetch('$stream_b2', 0)");
like($err, qr/42704/, "A cannot read the stream B's server consumes");

# --- reserved names: even an application's own hub role cannot make or
# write <application>/$... streams; it reads its own
for my $sql (q{SELECT signalr_bp.create_stream('a/$signalr')}, q{SELECT signalr_bp.create_stream('a/$other')},
			 q{SELECT signalr_bp.drop_stream('a/$signalr')}, q{SELECT signalr_bp.publish('a/$signalr', 'forged')},
			 q{SELECT signalr_bp.publish_batch('a/$signalr', ARRAY['forged']::bytea[])})
{
	(undef, $err) = run_as('hub_a', $sql);
	like($err, qr/42939: stream name "a\/\$\w+" is reserved/, "reserved: $sql");
}
is(ok_as('hub_a', q{SELECT signalr_bp.head('a/$signalr')}), '0', 'a hub role reads its application\'s $signalr stream');

# --- DBA functions are not the hub roles'
for my $sql (q{SELECT signalr_bp.create_application('c')}, q{SELECT signalr_bp.drop_application('b')},
			 q{SELECT signalr_bp.alter_application('b', owner => 'owner_a')},
			 q{SELECT signalr_bp._create_stream(2, 'x', true)}, q{SELECT signalr_bp._drop_streams(2)},
			 q{SELECT signalr_bp.maintain()}, q{SELECT signalr_bp._app_id('b')},
			 q{SELECT count(*) FROM signalr_bp.stream}, q{SELECT count(*) FROM signalr_bp.application},
			 q{UPDATE signalr_bp.application SET owner = 'owner_a'})
{
	(undef, $err) = run_as('hub_a', $sql);
	like($err, qr/42501: permission denied/, "DBA only: $sql");
}

# --- wake-ups: the channel is unguessable; A listening on what it could
# guess (the old signalr_bp_<id>) hears nothing, B on its channel hears it
my $b_id = $node->safe_psql('postgres', q{SELECT s.id FROM signalr_bp.stream s JOIN signalr_bp.application a
	ON a.id = s.app_id WHERE a.name = 'b' AND s.local_name = 'secret'});
my $b_channel = ok_as('hub_b', q{SELECT signalr_bp.channel('b/secret')});
like($b_channel, qr/^signalr_bp_[0-9a-f]{32}$/, 'channels are signalr_bp_<32 hex digits>');
my $spy = $node->background_psql('postgres', extra_params => ['-U', 'hub_a']);
$spy->query_safe("LISTEN signalr_bp_$b_id");
my $owner = $node->background_psql('postgres', extra_params => ['-U', 'hub_b']);
$owner->query_safe("LISTEN $b_channel");
ok_as('hub_b', q{SELECT signalr_bp.publish('b/secret', 'wake')});
my $heard = '';
for (1 .. 50)
{
	$heard .= $owner->query('SELECT 1') . ($owner->{stderr} // '');
	last if $heard =~ /Asynchronous notification/;
	select(undef, undef, undef, 0.1);
}
like($heard, qr/Asynchronous notification "\Q$b_channel\E"/, "B's listener is woken on B's channel");
unlike($spy->query('SELECT 1') . ($spy->{stderr} // ''), qr/Asynchronous notification/,
	   'a listener on a guessed channel name hears nothing');
$spy->quit;
$owner->quit;

# --- the plain role (not in signalr_bp_hub) reaches nothing
for my $sql (q{SELECT signalr_bp.head('a/mine')}, q{SELECT * FROM signalr_bp.fetch('a/mine', 0)},
			 q{SELECT signalr_bp.channel('a/mine')}, q{SELECT count(*) FROM signalr_bp.streams},
			 q{SELECT signalr_bp.connection_count('a')}, q{SELECT signalr_bp._check_name('x', 'x', 1)})
{
	(undef, $err) = run_as('plain', $sql);
	like($err, qr/42501: permission denied for schema signalr_bp/, "plain role: $sql");
}

# --- names cannot collide: an application name never contains "/", so
# "tenant" and "tenant/x" cannot both be applications; "tenant/x/y" is a
# stream of "tenant"
$node->safe_psql('postgres', q{SELECT signalr_bp.create_application('tenant', owner => 'owner_a')});
my ($rc, $out, $err2) = $node->psql('postgres', q{SELECT signalr_bp.create_application('tenant/x', owner => 'owner_b')});
like($err2, qr/application name must not contain "\/"/, 'no application "tenant/x" next to "tenant"');
ok_as('hub_a', q{SELECT signalr_bp.create_stream('tenant/x/y')});
is(ok_as('hub_a', q{SELECT application FROM signalr_bp.streams WHERE name = 'tenant/x/y'}), 'tenant',
   '"tenant/x/y" is a stream of "tenant"');
(undef, $err) = run_as('hub_b', q{SELECT signalr_bp.head('tenant/x/y')});
like($err, qr/42704/, 'and only tenant\'s roles see it');
my ($tenant_stream) = split /\|/, ok_as('hub_a', q{SELECT * FROM signalr_bp.register_server('tenant', 'x/y')});
like($tenant_stream, qr{^tenant/}, "a server named \"x/y\" of \"tenant\" consumes a stream of tenant ($tenant_stream)");

# --- caches do not outlive an owner change: one long-lived session per role
my $sa = $node->background_psql('postgres', extra_params => ['-U', 'hub_a'], on_error_stop => 0);
my $sb = $node->background_psql('postgres', extra_params => ['-U', 'hub_b'], on_error_stop => 0);
sub session_try
{
	my ($s, $sql) = @_;
	$s->{stderr} = '';
	my $out = $s->query($sql);
	my $e = $s->{stderr};
	$s->{stderr} = '';
	return $e =~ /ERROR:\s+(.*)/ ? "error: $1" : $out;
}
session_try($sa, q{SELECT signalr_bp.publish('a/mine', 'warm')});
is(session_try($sa, q{SELECT signalr_bp.head('a/mine')}), '1', 'A uses its stream (the session caches it)');
is(session_try($sa, q{SELECT signalr_bp.connection_count('a')}), '0', 'A uses its application (cached)');
like(session_try($sb, q{SELECT signalr_bp.head('a/mine')}), qr/does not exist/, 'B cannot, yet');
$node->safe_psql('postgres', q{SELECT signalr_bp.alter_application('a', owner => 'owner_b')});
like(session_try($sa, q{SELECT signalr_bp.head('a/mine')}), qr/stream "a\/mine" does not exist/,
	 "after alter_application the same session of A has lost the stream");
like(session_try($sa, q{SELECT signalr_bp.publish('a/mine', 'late')}), qr/does not exist/,
	 '... cannot publish to it');
like(session_try($sa, q{SELECT signalr_bp.connection_count('a')}), qr/application "a" does not exist/,
	 '... nor use the application');
is(session_try($sb, q{SELECT signalr_bp.head('a/mine')}), '1', "and B's session, which was refused, now may");
# within one transaction too: the change commits while A's transaction is open
session_try($sa, 'BEGIN');
$node->safe_psql('postgres', q{SELECT signalr_bp.alter_application('a', owner => 'owner_a')});
is(session_try($sa, q{SELECT signalr_bp.head('a/mine')}), '1', 'given back: A may again, inside an open transaction');
like(session_try($sb, q{SELECT signalr_bp.head('a/mine')}), qr/does not exist/, '... and B may not');
session_try($sa, 'COMMIT');
# a stream dropped and created again under the same name is the new one
$node->safe_psql('postgres', q{SELECT signalr_bp.drop_stream('a/mine'); SELECT signalr_bp.create_stream('a/mine')});
is(session_try($sa, q{SELECT signalr_bp.head('a/mine')}), '0', 'a re-created stream is not the cached old one');
$sa->quit;
$sb->quit;

# --- search_path hijack: hub_b plants look-alikes of what the extension's
# queries use in a schema it puts before pg_catalog, plus temporary tables,
# and leaky functions for the view; none of them ever runs with the
# extension's rights, and B's calls still only reach B
ok_as('hub_b', q{
	CREATE SCHEMA evil;
	CREATE TABLE evil.calls (what text);
	GRANT INSERT ON evil.calls TO PUBLIC;
	CREATE FUNCTION evil.log(what text) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO evil.calls VALUES (what) $$;
	CREATE FUNCTION evil.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql
		AS $$ BEGIN PERFORM evil.log('text ='); RETURN true; END $$;
	CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
	CREATE FUNCTION evil.int4eq(a integer, b integer) RETURNS boolean LANGUAGE plpgsql
		AS $$ BEGIN PERFORM evil.log('int ='); RETURN true; END $$;
	CREATE OPERATOR evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.int4eq);
	CREATE FUNCTION evil.textcat(a text, b text) RETURNS text LANGUAGE plpgsql
		AS $$ BEGIN PERFORM evil.log('||'); RETURN 'a'; END $$;
	CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.textcat);
	CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql
		AS $$ BEGIN PERFORM evil.log('now'); RETURN 'epoch'; END $$;
	CREATE FUNCTION evil.pg_has_role(r oid, p text) RETURNS boolean LANGUAGE plpgsql
		AS $$ BEGIN PERFORM evil.log('pg_has_role'); RETURN true; END $$;
	CREATE FUNCTION evil.pg_get_userbyid(r oid) RETURNS name LANGUAGE plpgsql
		AS $$ BEGIN PERFORM evil.log('pg_get_userbyid'); RETURN 'owner_a'; END $$;
	CREATE FUNCTION evil.count(anyelement) RETURNS bigint LANGUAGE plpgsql
		AS $$ BEGIN PERFORM evil.log('count'); RETURN 0; END $$;
	CREATE FUNCTION evil.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
		AS $$ BEGIN RAISE NOTICE 'leaked: %', t; RETURN true; END $$;
	CREATE TABLE evil.stream (id integer, app_id integer, local_name text, durable boolean, token text);
	CREATE TABLE evil.application (id integer, name text, owner oid, max_streams integer);
});
my $hijack = q{
	SET search_path = evil, pg_catalog, signalr_bp, public;
	CREATE TEMP TABLE stream (id integer, app_id integer, local_name text, durable boolean, token text);
	CREATE TEMP TABLE application (id integer, name text, owner oid, max_streams integer);
	INSERT INTO pg_temp.application VALUES (1, 'a', 'hub_b'::regrole, 64);
};
# the trap works: an unqualified = in this session is the look-alike
ok_as('hub_b', $hijack . q{SELECT 'x'::text = 'y'::text});
is(ok_as('hub_b', q{SELECT string_agg(what, ',') FROM evil.calls; DELETE FROM evil.calls}), 'text =',
   'with the hijacked search_path an unqualified = runs the look-alike');
my ($hout, $herr) = run_as('hub_b', $hijack . q{
	SELECT signalr_bp.create_stream('b/h1') > 0;
	SELECT signalr_bp.publish('b/h1', 'via hijacked path');
	SELECT signalr_bp.publish(ARRAY['b/h1', 'b/secret'], 'both');
	SELECT signalr_bp.publish_batch('b/h1', ARRAY['x', 'y']::bytea[]);
	SELECT count(*) FROM signalr_bp.fetch('b/h1', 0);
	SELECT next_offset FROM signalr_bp.fetch_packed('b/h1', 0);
	SELECT signalr_bp.head('b/h1');
	SELECT signalr_bp.channel('b/h1') ~ '^signalr_bp_';
	SELECT count(*) FROM signalr_bp.streams WHERE evil.leak(name);
	SELECT stream FROM signalr_bp.register_server('b', 'h-srv');
	SELECT signalr_bp.connect('b', 'h-srv', 'Hub', 'h-conn');
	SELECT signalr_bp.add_to_group('b', 'Hub', 'h-conn', 'g');
	SELECT 1 FROM (SELECT signalr_bp.send_group('b', 'Hub', 'g', 'hi')) s;
	SELECT signalr_bp.connection_count('b');
	SELECT signalr_bp.drop_stream('b/h1');
});
is($herr =~ /ERROR/ ? $herr : '', '', 'B works normally with look-alikes first in its search_path');
like($herr, qr/leaked: b\//, "a leaky WHERE clause on the streams view sees B's own names");
unlike($herr, qr/leaked: (?!b\/)/, "... and nothing of other applications");
for my $sql (q{SELECT signalr_bp.head('a/mine')}, q{SELECT * FROM signalr_bp.fetch('a/mine', 0)},
			 q{SELECT signalr_bp.publish('a/mine', 'x')}, q{SELECT signalr_bp.channel('a/mine')},
			 q{SELECT signalr_bp.create_stream('a/planted')}, q{SELECT signalr_bp.connection_count('a')},
			 q{SELECT signalr_bp.drop_stream('a/mine')})
{
	(undef, $err) = run_as('hub_b', $hijack . $sql);
	like($err, qr/42704/, "hijacked search_path still cannot reach A: $sql");
}
is(ok_as('hub_b', q{SELECT count(*) FROM evil.calls}), '0', 'no look-alike ever ran');
is(ok_as('hub_a', q{SELECT head FROM signalr_bp.streams WHERE name = 'a/mine'}), '0', "A's stream is untouched");

$node->stop;
done_testing();
