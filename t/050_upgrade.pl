# ALTER EXTENSION signalr_bp UPDATE from the released 0.1.0 on a live server.
#
# 0.1.0 is installed from its kept script and filled as 0.1.0 left it
# (applications, registered hub servers with their streams, connections,
# groups, a pending invocation, user streams inside and outside
# applications with unread messages, retention already past some).  The
# server runs today's library, as it does once the package is upgraded, so
# 0.1.0's C functions cannot run: what they wrote (stream rows, packed
# chunks) is written here in their format.  Then, with a long poll open in
# another database and a hub session connected:
#  (a) the catalog equals a fresh install of the current version: every
#      object of the extension and of its schema, definitions, privileges,
#      initial privileges, comments, config dumps.  A difference means that
#      sql/install changed without signalr_bp--0.1.0--0.2.0.sql: the failure
#      names each object that differs;
#  (b) nothing was lost: applications, owners, streams moved by the rules,
#      unread messages at their offsets; the SignalR layer works at once;
#  (c) streams that fit no application stop the update with their list, and
#      nothing changes until they are renamed or dropped as the hint says.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'signalr_bp'
signalr_bp.database = 'app'
signalr_bp.maintenance_interval = 100ms
log_line_prefix = '%m [%p] %b '
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app; CREATE DATABASE fresh; CREATE DATABASE blocked');
my $version = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'signalr_bp'});

# One line per property of every object of the extension and of its schema:
# "<object> | <property> | <value>" (newlines in values as \n).
my $catalog_sql = q{
WITH ext AS (
	SELECT e.oid, e.extnamespace AS nsp FROM pg_extension e WHERE e.extname = 'signalr_bp'
), objs AS (
	SELECT d.classid, d.objid FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
	UNION SELECT 'pg_class'::regclass, c.oid FROM pg_class c, ext WHERE c.relnamespace = ext.nsp
	UNION SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p, ext WHERE p.pronamespace = ext.nsp
	UNION SELECT 'pg_type'::regclass, t.oid FROM pg_type t, ext WHERE t.typnamespace = ext.nsp
	UNION SELECT 'pg_operator'::regclass, o.oid FROM pg_operator o, ext WHERE o.oprnamespace = ext.nsp
	UNION SELECT 'pg_constraint'::regclass, k.oid FROM pg_constraint k, ext WHERE k.connamespace = ext.nsp
), obj AS (
	SELECT o.classid, o.objid, pg_describe_object(o.classid, o.objid, 0) AS name FROM objs o
), props(object, property, value) AS (
	SELECT o.name, 'member of the extension',
		   EXISTS (SELECT FROM pg_depend d, ext WHERE d.classid = o.classid AND d.objid = o.objid
				   AND d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
				   AND d.deptype = 'e')::text
	  FROM obj o
	UNION ALL
	SELECT o.name, 'comment', obj_description(o.objid, o.classid::regclass::name) FROM obj o
	UNION ALL
	SELECT o.name, p.prop, p.val FROM obj o, pg_proc f,
		   LATERAL (VALUES ('definition', pg_get_functiondef(f.oid)),
						   ('owner', f.proowner::regrole::text),
						   ('acl', (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(f.proacl) x))) p(prop, val)
	 WHERE o.classid = 'pg_proc'::regclass AND f.oid = o.objid
	UNION ALL
	SELECT o.name, p.prop, p.val FROM obj o, pg_type t,
		   LATERAL (VALUES ('type', t.typtype::text),
						   ('base type', format_type(t.typbasetype, t.typtypmod)),
						   ('not null', t.typnotnull::text),
						   ('default', t.typdefault),
						   ('element', t.typelem::regtype::text),
						   ('array type', t.typarray::regtype::text),
						   ('functions', concat_ws(' ', t.typinput, t.typoutput, t.typreceive, t.typsend,
												   t.typmodin, t.typmodout, t.typanalyze, t.typsubscript)),
						   ('storage', concat_ws(' ', t.typlen, t.typbyval, t.typalign, t.typstorage,
												 t.typcategory, t.typispreferred, t.typdelim,
												 t.typcollation)),
						   ('owner', t.typowner::regrole::text),
						   ('acl', (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(t.typacl) x))) p(prop, val)
	 WHERE o.classid = 'pg_type'::regclass AND t.oid = o.objid
	UNION ALL
	SELECT o.name, 'definition',
		   concat_ws(' ', op.oprkind, op.oprleft::regtype, op.oprright::regtype, op.oprresult::regtype,
					 op.oprcode, op.oprcom::regoperator, op.oprnegate::regoperator, op.oprrest,
					 op.oprjoin, op.oprcanmerge, op.oprcanhash, op.oprowner::regrole)
	  FROM obj o, pg_operator op
	 WHERE o.classid = 'pg_operator'::regclass AND op.oid = o.objid
	UNION ALL
	SELECT o.name, 'definition',
		   concat_ws(' ', k.conrelid::regclass, k.contypid::regtype, pg_get_constraintdef(k.oid),
					 k.condeferrable, k.condeferred, k.convalidated)
	  FROM obj o, pg_constraint k
	 WHERE o.classid = 'pg_constraint'::regclass AND k.oid = o.objid
	UNION ALL
	SELECT o.name, p.prop, p.val FROM obj o, pg_class c,
		   LATERAL (VALUES ('kind', c.relkind::text),
						   ('persistence', c.relpersistence::text),
						   ('options', c.reloptions::text),
						   ('owner', c.relowner::regrole::text),
						   ('acl', (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(c.relacl) x)),
						   ('row security', concat_ws(' ', c.relrowsecurity, c.relforcerowsecurity)),
						   ('replica identity', c.relreplident::text),
						   ('access method', (SELECT a.amname::text FROM pg_am a WHERE a.oid = c.relam)),
						   ('view', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END),
						   ('index', (SELECT concat_ws(' ', pg_get_indexdef(i.indexrelid), i.indisprimary,
													   i.indisunique, i.indisclustered, i.indisreplident)
										FROM pg_index i WHERE i.indexrelid = c.oid))) p(prop, val)
	 WHERE o.classid = 'pg_class'::regclass AND c.oid = o.objid
	UNION ALL
	-- columns by position among the live ones (a dropped column leaves a hole)
	SELECT o.name, format('column %s', row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)),
		   concat_ws(' ', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
					 CASE WHEN a.attnotnull THEN 'not null' END,
					 'default ' || pg_get_expr(ad.adbin, ad.adrelid),
					 'identity ' || NULLIF(a.attidentity::text, ''),
					 'generated ' || NULLIF(a.attgenerated::text, ''),
					 'storage ' || a.attstorage::text,
					 'collation ' || NULLIF(a.attcollation, 0)::regcollation::text,
					 -- some builds keep a private pg_attver entry here
					 'options ' || (SELECT string_agg(x, ',' ORDER BY x) FROM unnest(a.attoptions) x
									 WHERE x NOT LIKE 'pg\_attver=%'),
					 'acl ' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x),
					 'comment ' || col_description(c.oid, a.attnum))
	  FROM obj o JOIN pg_class c ON o.classid = 'pg_class'::regclass AND c.oid = o.objid
	  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
	UNION ALL
	SELECT o.name, 'dropped columns', count(*)::text
	  FROM obj o JOIN pg_attribute a ON o.classid = 'pg_class'::regclass AND a.attrelid = o.objid
	 WHERE a.attisdropped GROUP BY o.name
	UNION ALL
	SELECT o.name, format('trigger %s', tg.tgname), concat_ws(' ', pg_get_triggerdef(tg.oid), tg.tgenabled)
	  FROM obj o JOIN pg_trigger tg ON o.classid = 'pg_class'::regclass AND tg.tgrelid = o.objid
	 WHERE NOT tg.tgisinternal
	UNION ALL
	SELECT o.name, format('rule %s', r.rulename), pg_get_ruledef(r.oid)
	  FROM obj o JOIN pg_rewrite r ON o.classid = 'pg_class'::regclass AND r.ev_class = o.objid
	 WHERE r.rulename <> '_RETURN'
	UNION ALL
	SELECT o.name, format('policy %s', pol.polname),
		   concat_ws(' ', pol.polcmd, pol.polpermissive, pol.polroles::regrole[]::text,
					 pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid))
	  FROM obj o JOIN pg_policy pol ON o.classid = 'pg_class'::regclass AND pol.polrelid = o.objid
	UNION ALL
	SELECT o.name, 'sequence', concat_ws(' ', s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax,
										s.seqmin, s.seqcache, s.seqcycle)
	  FROM obj o JOIN pg_sequence s ON o.classid = 'pg_class'::regclass AND s.seqrelid = o.objid
	UNION ALL
	SELECT o.name, 'belongs to', pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
	  FROM obj o JOIN pg_depend d ON o.classid = 'pg_class'::regclass AND d.classid = 'pg_class'::regclass
	   AND d.objid = o.objid AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
	UNION ALL
	SELECT pg_describe_object('pg_namespace'::regclass, n.oid, 0), p.prop, p.val
	  FROM ext JOIN pg_namespace n ON n.oid = ext.nsp,
		   LATERAL (VALUES ('owner', n.nspowner::regrole::text),
						   ('acl', (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(n.nspacl) x)),
						   ('comment', obj_description(n.oid, 'pg_namespace'))) p(prop, val)
	UNION ALL
	-- what pg_dump treats as the extension's own privileges
	SELECT pg_describe_object(ip.classoid, ip.objoid, ip.objsubid), 'initial privileges',
		   ip.privtype::text || ' ' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(ip.initprivs) x)
	  FROM pg_init_privs ip
	 WHERE (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM objs)
		OR (ip.classoid = 'pg_namespace'::regclass AND ip.objoid = (SELECT nsp FROM ext))
	UNION ALL
	SELECT 'extension signalr_bp', format('config dump of %s', COALESCE(c.relname::text, x.rel::text)), x.cond
	  FROM pg_extension e, unnest(e.extconfig, e.extcondition) x(rel, cond)
	  LEFT JOIN pg_class c ON c.oid = x.rel
	 WHERE e.extname = 'signalr_bp'
	UNION ALL
	SELECT 'extension signalr_bp', 'version', e.extversion || ' relocatable ' || e.extrelocatable::text
	  FROM pg_extension e WHERE e.extname = 'signalr_bp'
)
SELECT object || ' | ' || property || ' | ' || replace(COALESCE(value, '<null>'), E'\n', '\n')
  FROM props
 ORDER BY 1;
};

# object => [ "property: value", ... ]
sub catalog
{
	my ($db) = @_;
	my %by;
	for my $line (split /\n/, $node->safe_psql($db, $catalog_sql))
	{
		my ($object, $rest) = split / \| /, $line, 2;
		push @{ $by{$object} }, $rest;
	}
	return \%by;
}

# the objects whose properties differ, with what differs
sub catalog_diff
{
	my ($want, $got) = @_;
	my @diffs;
	for my $object (sort(keys %{ { %$want, %$got } }))
	{
		my %w = map { $_ => 1 } @{ $want->{$object} || [] };
		my %g = map { $_ => 1 } @{ $got->{$object} || [] };
		my @missing = grep { !$g{$_} } @{ $want->{$object} || [] };
		my @extra = grep { !$w{$_} } @{ $got->{$object} || [] };
		next unless @missing || @extra;
		my $text = join('', map { "  fresh install: $_\n" } @missing)
		  . join('', map { "  after update:  $_\n" } @extra);
		$text =~ s/\\n/\n    /g;
		push @diffs, [ $object, $text ];
	}
	return @diffs;
}

# as a role, the way a hub server or a consumer logs in
sub as
{
	my ($db, $role, $sql) = @_;
	return $node->safe_psql($db, $sql, extra_params => [ '-U', $role ]);
}

sub error_of
{
	my ($db, $role, $sql) = @_;
	my ($rc, $out, $err) = $node->psql($db, $sql,
		extra_params => [ '-U', $role, '-v', 'VERBOSITY=verbose' ]);
	return $err;
}

# --- a fresh install, and 0.1.0 filled as 0.1.0 left it --------------------

$node->safe_psql('fresh', qq{CREATE EXTENSION signalr_bp VERSION '$version'});
$node->safe_psql('postgres', q{
	CREATE ROLE chat_owner NOLOGIN;
	CREATE ROLE chat_hub LOGIN IN ROLE signalr_bp_hub, chat_owner;
	CREATE ROLE news_owner NOLOGIN;
	CREATE ROLE news_hub LOGIN IN ROLE signalr_bp_hub, news_owner;
	-- owns streams outside any application
	CREATE ROLE reports LOGIN IN ROLE signalr_bp_hub;
	-- owns the application of its name, and a stream outside it
	CREATE ROLE billing LOGIN IN ROLE signalr_bp_hub;
});
$node->safe_psql('app', q{CREATE EXTENSION signalr_bp VERSION '0.1.0'});
is($node->safe_psql('app', q{SELECT extversion FROM pg_extension WHERE extname = 'signalr_bp'}), '0.1.0',
	'0.1.0 installs from its kept script with the current library');

# 0.1.0's SQL (create_application) still runs; what its C functions wrote is
# written here: stream rows, and chunks packed as [uint32 length][payload]
# in the current segment of their class
my $fill_helpers = q{
	CREATE FUNCTION pg_temp.stream(p_name text, p_durable boolean, p_owner regrole) RETURNS integer
	LANGUAGE sql AS $$
		INSERT INTO signalr_bp.stream (name, durable, owner) VALUES (p_name, p_durable, p_owner) RETURNING id $$;
	CREATE FUNCTION pg_temp.chunk(p_stream text, p_first bigint, p_payloads bytea[]) RETURNS void
	LANGUAGE plpgsql AS $$
	DECLARE
		v_id integer;
		v_durable boolean;
		v_slot integer;
	BEGIN
		SELECT id, durable INTO STRICT v_id, v_durable FROM signalr_bp.stream WHERE name = p_stream;
		SELECT slot INTO v_slot FROM signalr_bp.segment WHERE durable = v_durable ORDER BY generation DESC LIMIT 1;
		EXECUTE format('INSERT INTO signalr_bp.seg_%s%s VALUES ($1, $2, $3, $4)',
					   CASE WHEN v_durable THEN 'd' ELSE 'f' END, v_slot)
		  USING v_id, p_first, p_first + cardinality(p_payloads) - 1,
				(SELECT string_agg(int4send(length(p)) || p, ''::bytea ORDER BY i)
				   FROM unnest(p_payloads) WITH ORDINALITY u(p, i));
		IF NOT v_durable THEN
			INSERT INTO signalr_bp.fast_alive VALUES (v_id) ON CONFLICT DO NOTHING;
		END IF;
	END $$;
};
$node->safe_psql('app', $fill_helpers . q{
	SELECT signalr_bp.create_application('chat', 'chat_owner');
	SELECT signalr_bp.create_application('news', 'news_owner', durable => false, server_ttl => '1 minute');
	SELECT signalr_bp.create_application('billing', 'billing');
	-- hub servers as register_server left them, with envelopes in their streams
	INSERT INTO signalr_bp.server (app_id, name, stream)
	SELECT a.id, s, a.name || '/' || s
	  FROM signalr_bp.application a, unnest(ARRAY['srv-1', 'srv-2']) s WHERE a.name IN ('chat', 'news');
	SELECT pg_temp.stream(v.stream, a.durable, a.owner::regrole)
	  FROM signalr_bp.server v JOIN signalr_bp.application a ON a.id = v.app_id ORDER BY v.stream;
	SELECT pg_temp.chunk(stream, 0, ARRAY['\x0101', '\x0102']::bytea[]) FROM signalr_bp.server;
	-- user streams: retention already removed offsets 0 to 3 of chat/orders
	SELECT pg_temp.stream('chat/orders', true, 'chat_owner');
	UPDATE signalr_bp.stream SET low_offset = 4 WHERE name = 'chat/orders';
	SELECT pg_temp.chunk('chat/orders', 4, ARRAY['o4', 'o5', 'o6']::bytea[]);
	SELECT pg_temp.chunk('chat/orders', 7, ARRAY['o7', 'o8', 'o9']::bytea[]);
	SELECT pg_temp.chunk('chat/orders', 10, ARRAY[convert_to(repeat('large ', 5000), 'UTF8')]);
	SELECT pg_temp.stream('chat/live', false, 'chat_owner');
	SELECT pg_temp.chunk('chat/live', 0, ARRAY['l0', 'l1', 'l2']::bytea[]);
	-- a server's stream whose server is no longer registered is a stream like any other
	SELECT pg_temp.stream('chat/srv-old', true, 'chat_owner');
	SELECT pg_temp.stream('orders-archive', true, 'reports');
	SELECT pg_temp.chunk('orders-archive', 0, ARRAY['a0', 'a1']::bytea[]);
	SELECT pg_temp.stream('x/daily', true, 'reports');
	SELECT pg_temp.chunk('x/daily', 0, ARRAY['d0']::bytea[]);
	SELECT pg_temp.stream('ledger', true, 'billing');
	-- the registry
	INSERT INTO signalr_bp.connection (app_id, connection_id, server, hub, user_id)
	SELECT a.id, 'c' || i, 'srv-' || (1 + i % 2), 'Chat', 'u' || (i % 3)
	  FROM signalr_bp.application a, generate_series(1, 6) i WHERE a.name = 'chat';
	INSERT INTO signalr_bp.connection_tally SELECT app_id, server, hub, 0, count(*)
	  FROM signalr_bp.connection GROUP BY 1, 2, 3;
	INSERT INTO signalr_bp.group_member SELECT app_id, hub, 'room', connection_id FROM signalr_bp.connection;
	INSERT INTO signalr_bp.invocation (app_id, invocation_id, connection_id, from_server, to_server)
	SELECT app_id, 'inv-1', connection_id, 'srv-2', server FROM signalr_bp.connection WHERE connection_id = 'c1';
});
my %old_id = map { split /\|/ } split /\n/,
  $node->safe_psql('app', 'SELECT name, id FROM signalr_bp.stream');
my $server_ids = join(',', map { $old_id{$_} } grep { m{/srv-\d$} } keys %old_id);
my $large_md5 = $node->safe_psql('app', q{SELECT md5(repeat('large ', 5000))});

# --- between the new library and the update --------------------------------

my $err = error_of('app', 'chat_hub', q{SELECT signalr_bp.head('chat/orders')});
like($err, qr/55000: extension "signalr_bp" is version "0\.1\.0" in this database but its library is version "\Q$version\E"/,
	'before the update, a call through 0.1.0 objects is refused (55000) ...');
like($err, qr/HINT:  Run ALTER EXTENSION signalr_bp UPDATE/, '... with the way out');
# 0.1.0 declared _stream_stats() without arguments; today's takes a stream
like(error_of('app', 'postgres', q{SELECT * FROM signalr_bp.streams}), qr/55000/,
	"0.1.0's streams view is refused the same way, not run through an older declaration");
# the worker passes every 100 ms: it has had 15 passes after this
Time::HiRes::sleep(1.5);
my $log = slurp_file($node->logfile);
my $waits = () = $log =~ /retention waits for ALTER EXTENSION signalr_bp UPDATE in database "app"/g;
is($waits, 1, 'the worker says once that retention waits for the update');

# a consumer in another database is in a long poll while the update runs
$node->safe_psql('fresh', q{
	SELECT signalr_bp.create_application('feed', 'chat_owner');
	SELECT signalr_bp.create_stream('feed/wait');
});
my %poll = (out => '', err => '');
my $poll = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-U', 'chat_hub', '-d', $node->connstr('fresh'), '-c',
	  q{SELECT message_count, convert_from(substr(messages, 13), 'UTF8') FROM signalr_bp.fetch_packed('feed/wait', 0, 1000, 180000)} ],
	'>', \$poll{out}, '2>', \$poll{err}, IPC::Run::timeout(240));
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE datname = 'fresh' AND query LIKE '%fetch_packed(''feed/wait''%' AND wait_event_type = 'Extension'}),
	'a long poll waits in another database');

# a hub session connected before the update
my $hub = $node->background_psql('app', extra_params => [ '-U', 'chat_hub' ], on_error_stop => 0);
sub hub_try
{
	my ($sql) = @_;
	$hub->{stderr} = '';
	my $out = $hub->query($sql);
	my $e = $hub->{stderr};
	$hub->{stderr} = '';
	return $e =~ /ERROR:\s+(.*)/ ? "error: $1" : $out;
}
like(hub_try(q{SELECT signalr_bp.head('chat/orders')}), qr/is version "0\.1\.0"/,
	'a hub session connected before the update is refused too');

# --- the update, held open for a moment ------------------------------------

my $dba = $node->background_psql('app', on_error_stop => 1);
my $t0 = Time::HiRes::time();
$dba->query_safe('BEGIN');
$dba->query_safe('ALTER EXTENSION signalr_bp UPDATE');
my $update_ms = int((Time::HiRes::time() - $t0) * 1000);
like(hub_try(q{SELECT signalr_bp.head('chat/orders')}), qr/is version "0\.1\.0"/,
	'while the update is not committed, calls are still refused, at once');
$dba->query_safe('COMMIT');
$dba->quit;
note("ALTER EXTENSION signalr_bp UPDATE took $update_ms ms");
is($node->safe_psql('app', q{SELECT extversion FROM pg_extension WHERE extname = 'signalr_bp'}), $version,
	"the extension is at $version");
is(hub_try(q{SELECT signalr_bp.head('chat/orders')}), '11',
	'the session connected before the update uses the moved stream at once');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity
	 WHERE datname = 'fresh' AND query LIKE '%fetch_packed(''feed/wait''%' AND wait_event_type = 'Extension'}),
	'1', 'the long poll in the other database is still waiting');
as('fresh', 'chat_hub', q{SELECT signalr_bp.publish('feed/wait', 'after the update')});
$poll->finish;
is($poll{out}, "1|after the update\n", '... and is woken by the next commit, with it') or diag($poll{err});

# --- (a) the catalog equals a fresh install --------------------------------

sub catalog_is_fresh
{
	my ($db, $what) = @_;
	my @diffs = catalog_diff(catalog('fresh'), catalog($db));
	for my $d (@diffs)
	{
		fail("$what: $d->[0] is as a fresh install has it");
		diag("$d->[0] differs:\n$d->[1]");
	}
	if (@diffs)
	{
		diag('sql/install/*.sql (the fresh install) and signalr_bp--0.1.0--0.2.0.sql (the update) disagree '
			  . 'about the objects above: whoever changes one changes the other');
	}
	else
	{
		pass("$what: every object of the extension, its definition, privileges and config dumps are as a fresh install has them");
	}
}
catalog_is_fresh('app', 'after the update');

# --- (b) nothing was lost --------------------------------------------------

is($node->safe_psql('app', q{
	SELECT string_agg(format('%s %s %s %s %s %s %s', id, name, owner, durable, server_ttl, max_streams, registry_epoch),
					  E'\n' ORDER BY id)
	  FROM signalr_bp.application}),
	join("\n",
		'1 chat chat_owner t 00:00:30 64 2',
		'2 news news_owner f 00:01:00 64 2',
		'3 billing billing t 00:00:30 64 2',
		'4 reports reports t 00:00:30 64 1'),
	'applications keep their ids, owners (as roles) and settings; registry epochs moved; "reports" was made for its streams');
my $streams = q{
	SELECT string_agg(format('%s/%s %s %s', a.name, s.local_name, s.durable, s.low_offset), E'\n' ORDER BY a.name, s.local_name)
	  FROM signalr_bp.stream s JOIN signalr_bp.application a ON a.id = s.app_id};
is($node->safe_psql('app', $streams), join("\n",
	'billing/$signalr t 0', 'billing/ledger t 0',
	'chat/$signalr t 0', 'chat/live f 0', 'chat/orders t 4', 'chat/srv-old t 0',
	'news/$signalr f 0',
	'reports/$signalr t 0', 'reports/orders-archive t 0', 'reports/x/daily t 0'),
	"streams moved by the rules; every application has its \$signalr stream; the servers' streams are gone");
is($node->safe_psql('app', q{
	SELECT string_agg(a.name || '/' || s.local_name || '=' || s.id, ',' ORDER BY s.id)
	  FROM signalr_bp.stream s JOIN signalr_bp.application a ON a.id = s.app_id
	 WHERE s.local_name <> '$signalr'}),
	join(',', map { "$_->[0]=$old_id{$_->[1]}" }
		sort { $old_id{ $a->[1] } <=> $old_id{ $b->[1] } }
		([ 'chat/orders', 'chat/orders' ], [ 'chat/live', 'chat/live' ], [ 'chat/srv-old', 'chat/srv-old' ],
		 [ 'reports/orders-archive', 'orders-archive' ], [ 'reports/x/daily', 'x/daily' ],
		 [ 'billing/ledger', 'ledger' ])),
	'moved streams keep their ids');
is($node->safe_psql('app', qq{
	SELECT (SELECT count(*) FROM signalr_bp.seg_d0 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.seg_d1 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.seg_d2 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.seg_d3 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.seg_f0 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.seg_f1 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.seg_f2 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.seg_f3 WHERE stream_id IN ($server_ids))
		 + (SELECT count(*) FROM signalr_bp.fast_alive WHERE stream_id IN ($server_ids))}),
	'0', "the servers' messages went with their streams");
is($node->safe_psql('app', q{
	SELECT (SELECT count(*) FROM signalr_bp.server) + (SELECT count(*) FROM signalr_bp.connection)
		 + (SELECT count(*) FROM signalr_bp.group_member) + (SELECT count(*) FROM signalr_bp.invocation)
		 + (SELECT count(*) FROM signalr_bp.connection_tally)}),
	'0', 'the registry is empty');
is($node->safe_psql('app', q{SELECT count(DISTINCT token) FILTER (WHERE token ~ '^[0-9a-f]{32}$') FROM signalr_bp.stream}),
	'10', 'every stream has its own channel token');

is(as('app', 'chat_hub', q{
	SELECT string_agg(msg_offset || '=' || CASE WHEN length(payload) > 100 THEN md5(payload) ELSE convert_from(payload, 'UTF8') END,
					  ',' ORDER BY msg_offset)
	  FROM signalr_bp.fetch('chat/orders', 4)}),
	"4=o4,5=o5,6=o6,7=o7,8=o8,9=o9,10=$large_md5",
	"chat/orders: the unread messages at their offsets, the large one whole");
like(error_of('app', 'chat_hub', q{SELECT * FROM signalr_bp.fetch('chat/orders', 0)}),
	qr/SB001:.*\n.*\n.*resume from offset 4/, '... and what retention removed is still reported (SB001)');
is(as('app', 'chat_hub', q{SELECT string_agg(msg_offset || '=' || convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset)
						   FROM signalr_bp.fetch('chat/live', 0)}),
	'0=l0,1=l1,2=l2', 'chat/live (fast): its messages at their offsets');
is(as('app', 'reports', q{
	SELECT string_agg(s || ':' || (SELECT string_agg(msg_offset || '=' || convert_from(payload, 'UTF8'), ',' ORDER BY msg_offset)
									 FROM signalr_bp.fetch(s, 0)), ' ' ORDER BY s)
	  FROM unnest(ARRAY['reports/orders-archive', 'reports/x/daily']) s}),
	'reports/orders-archive:0=a0,1=a1 reports/x/daily:0=d0',
	"streams outside any application: in their owner's application, with their messages");
is(as('app', 'reports', q{SELECT string_agg(name, ',' ORDER BY name) FROM signalr_bp.streams}),
	'reports/$signalr,reports/orders-archive,reports/x/daily', '... which only that owner sees');
like(error_of('app', 'news_hub', q{SELECT signalr_bp.head('chat/orders')}), qr/42704/,
	"another application's role cannot reach a moved stream");

# the engine and the SignalR layer work at once
as('app', 'chat_hub', q{SELECT signalr_bp.publish('chat/orders', 'o11')});
is(as('app', 'chat_hub', q{SELECT string_agg(msg_offset || '=' || convert_from(payload, 'UTF8'), ',')
						   FROM signalr_bp.fetch('chat/orders', 11)}),
	'11=o11', 'a moved stream goes on at its next offset');
my %live = (out => '', err => '');
my $live = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-U', 'chat_hub', '-d', $node->connstr('app'), '-c',
	  q{SELECT next_offset, message_count FROM signalr_bp.fetch_packed('chat/live', 3, 1000, 120000)} ],
	'>', \$live{out}, '2>', \$live{err}, IPC::Run::timeout(180));
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE datname = 'app' AND query LIKE '%fetch_packed(''chat/live''%' AND wait_event_type = 'Extension'}),
	'a long poll on a moved fast stream waits');
as('app', 'chat_hub', q{SELECT signalr_bp.publish('chat/live', 'l3')});
$live->finish;
is($live{out}, "4|1\n", '... and is woken by its next commit') or diag($live{err});
like(as('app', 'chat_hub', q{SELECT signalr_bp.channel('chat/orders')}), qr/^signalr_bp_[0-9a-f]{32}$/,
	'a moved stream has its wake-up channel');
ok(as('app', 'chat_hub', q{SELECT signalr_bp.create_stream('chat/new')}) > $old_id{'x/daily'},
	'a new stream gets an id above every old one');

is(as('app', 'chat_hub', q{SELECT stream || ' ' || registry_epoch FROM signalr_bp.register_server('chat', 'srv-a')}),
	'chat/$signalr 2', 'a hub server registers: the application stream, and the moved epoch');
as('app', 'chat_hub', q{
	SELECT signalr_bp.connect('chat', 'srv-a', 'Chat', 'conn-1', 'alice');
	SELECT signalr_bp.add_to_group('chat', 'Chat', 'conn-1', 'room', from_server => 'srv-a');
	SELECT signalr_bp.send_group('chat', 'Chat', 'room', 'hello room');
	SELECT signalr_bp.send_user('chat', 'Chat', 'alice', 'hello alice');
});
is(as('app', 'chat_hub', q{
	SELECT message_count || ' ' || get_byte(messages, 12) || ' ' || get_byte(messages, 13)
	  FROM signalr_bp.fetch_packed('chat/$signalr', 0)}),
	'2 2 3', 'sends append envelopes (version 2, groups first) to chat/$signalr');
is(as('app', 'chat_hub', q{SELECT signalr_bp.connection_count('chat') || ' ' || signalr_bp.connection_groups('chat', 'conn-1')}),
	'1 room', 'presence works');
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('app'), '-f', $node->basedir . '/app.dump' ],
	'pg_dump works on the updated database');
$hub->quit;

# --- (c) streams that fit no application stop the update -------------------

$node->safe_psql('postgres', q{CREATE ROLE "team/a" LOGIN; CREATE ROLE gone});
$node->safe_psql('blocked', q{CREATE EXTENSION signalr_bp VERSION '0.1.0'});
$node->safe_psql('blocked', $fill_helpers . q{
	SELECT signalr_bp.create_application('chat', 'chat_owner');
	SELECT signalr_bp.create_application('a/b', 'chat_owner');
	SELECT signalr_bp.create_application('news_hub', 'news_owner');
	SELECT signalr_bp.create_application('billing', 'billing');
	SELECT pg_temp.stream('chat/fine', true, 'chat_owner');
	SELECT pg_temp.chunk('chat/fine', 0, ARRAY['f0']::bytea[]);
	SELECT pg_temp.stream('chat/$signalr', true, 'chat_owner');
	SELECT pg_temp.stream('notes', true, '"team/a"');
	SELECT pg_temp.stream('feed', true, 'news_hub');
	SELECT pg_temp.stream('billing/ledger', true, 'billing');
	SELECT pg_temp.stream('ledger', true, 'billing');
	SELECT pg_temp.stream('lost', true, 'gone');
});
$node->safe_psql('postgres', 'DROP ROLE gone');
my $before = catalog('blocked');
my $rows = q{SELECT (SELECT string_agg(name, ',' ORDER BY name) FROM signalr_bp.application) || ' '
				 || (SELECT string_agg(name, ',' ORDER BY name) FROM signalr_bp.stream)};
my $rows_before = $node->safe_psql('blocked', $rows);

$err = error_of('blocked', 'postgres', 'ALTER EXTENSION signalr_bp UPDATE');
like($err, qr/55000: cannot update signalr_bp: 1 applications have names that version \Q$version\E refuses/,
	'an application name that the new version refuses stops the update (55000)');
like($err, qr/DETAIL:  Application "a\/b": application name must not contain "\/"\./, '... naming it and why');
like($err, qr/HINT:  As a superuser, rename them/, '... with what to do');
is($node->safe_psql('blocked', $rows), $rows_before, 'nothing changed');
$node->safe_psql('blocked', q{UPDATE signalr_bp.application SET name = 'a-b' WHERE name = 'a/b'});
$rows_before = $node->safe_psql('blocked', $rows);

$err = error_of('blocked', 'postgres', 'ALTER EXTENSION signalr_bp UPDATE');
like($err, qr/55000: cannot update signalr_bp: 6 streams fit in no application/,
	'streams that fit no application stop the update (55000)');
for my $line (
	'Stream "billing/ledger": it would be "billing/ledger", as stream "ledger" would.',
	'Stream "chat/$signalr": its name in application "chat" would be "$signalr", which is reserved.',
	'Stream "feed": application "news_hub", named after its owner role, belongs to another role.',
	'Stream "ledger": it would be "billing/ledger", as stream "billing/ledger" would.',
	qr/Stream "lost": its owner role \(OID \d+\) no longer exists\./,
	'Stream "notes": the name of its owner role "team/a" cannot name an application (application name must not contain "/").')
{
	like($err, ref $line ? $line : qr/\Q$line\E/, "... listed: " . (ref $line ? 'Stream "lost"' : $line));
}
like($err, qr/HINT:  As a superuser, rename each of them .* or drop it .*, then run ALTER EXTENSION signalr_bp UPDATE again\./,
	'... with what to do');
is($node->safe_psql('blocked', q{SELECT extversion FROM pg_extension WHERE extname = 'signalr_bp'}), '0.1.0',
	'the extension is still 0.1.0');
is_deeply([ catalog_diff($before, catalog('blocked')) ], [], '... with every object as it was');
is($node->safe_psql('blocked', $rows), $rows_before . '', '... and every row');

# what the hint says, then again
$node->safe_psql('blocked', q{
	UPDATE signalr_bp.stream SET name = 'chat/signalr-old' WHERE name = 'chat/$signalr';
	UPDATE signalr_bp.stream SET name = 'billing/ledger-2' WHERE name = 'ledger';
	DELETE FROM signalr_bp.stream WHERE name IN ('notes', 'feed', 'lost');
});
$node->safe_psql('blocked', 'ALTER EXTENSION signalr_bp UPDATE');
is($node->safe_psql('blocked', $streams), join("\n",
	'a-b/$signalr t 0',
	'billing/$signalr t 0', 'billing/ledger t 0', 'billing/ledger-2 t 0',
	'chat/$signalr t 0', 'chat/fine t 0', 'chat/signalr-old t 0',
	'news_hub/$signalr t 0'),
	'once renamed and dropped as the hint says, the update goes through');
is(as('blocked', 'chat_hub', q{SELECT convert_from(payload, 'UTF8') FROM signalr_bp.fetch('chat/fine', 0)}), 'f0',
	'... keeping the messages');
catalog_is_fresh('blocked', 'after the blocked update went through');

$log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|ERROR:  XX000/, 'no backend crashed, no internal error');
$waits = () = $log =~ /retention waits for ALTER EXTENSION signalr_bp UPDATE/g;
is($waits, 1, 'the worker, in "app", logged the wait once');
$node->stop;
done_testing();
