/*
 * hostile.c: every function of the extension, called by a hostile caller.
 *
 * The functions are read from the catalog (pg_proc, pg_type: everything the
 * extension owns), never from a list kept here.  Each argument is classified
 * by its type (domains by their base type, arrays by their element type;
 * the one composite, connection_ref, by its fields) and gets NULL and the
 * hostile values of its class -- empty, just over and far over the
 * documented limits, control characters (C0, DEL, C1), quotes and
 * backslashes, odd Unicode, names of another application's objects, huge,
 * multi-dimensional, NULL-holding and oddly bounded arrays, negative, zero
 * and extreme numbers -- while every
 * other argument holds a valid value, so that each check is reached.
 *
 * Functions granted to signalr_bp_hub are called as a login role in it that
 * owns application "hostile"; application "victim" belongs to another role.
 * Public functions not granted to the hub role are called as the DBA (a
 * superuser); internal ones (leading "_") only have to refuse the hub role.
 *
 * Every call must end in a clean SQLSTATE (never class XX or 58, never a
 * lost connection) and leave no "terminated by signal" line in the server
 * log.  A call that fails must leave the extension's tables exactly as they
 * were; a call by the hub role, failed or not, must leave the victim's rows
 * alone; a call that succeeds with NULL in an argument must be listed in
 * null_ok below (or the function be STRICT); a call that succeeds with a
 * name the registry's rules forbid (empty, over its limit, control
 * characters) fails.  Known open findings are in known[] (TAP TODO:
 * reported, not counted as failures).
 *
 * Prints one TAP line per function with its counts, then "N passed, N failed".
 *
 * usage: hostile "DBA conninfo" "hub role conninfo" server.log [huge-array-size [quick]]
 *   (the hub role's conninfo is the DBA's with user=sbp_hostile; setup()
 *   creates the roles)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAXARGS 16
#define MAXVALUES 256

/* Calls that may succeed with NULL in an argument (beside STRICT functions), and why. */
static const struct
{
	const char *func;
	const char *arg;
	const char *why;
}			null_ok[] = {
	{"connect", "user_id", "a connection without a user"},
	{"connect_many", "user_ids", "connections without users"},
	{"add_to_group", "from_server", "a change made from SQL: the holder is told"},
	{"remove_from_group", "from_server", "a change made from SQL: the holder is told"},
	{"add_to_groups", "from_server", "changes made from SQL: the holders are told"},
	{"remove_from_groups", "from_server", "changes made from SQL: the holders are told"},
	{"connection_count", "hub", "connections of every hub"},
	{"cancel_invocation", "connection_id", "the connection is taken from the registry"},
	{"send_batch", "batch_key", "a batch without an idempotency key"},
	{"send_batch", "async_commit", "the server's synchronous_commit, as when omitted"},
	{"create_application", "owner", "owned by the session user"},
	{"alter_application", "*", "NULL leaves a setting unchanged"},
	{"audience_all", "excluded", "nobody excluded"},
	{"audience_connections", "excluded", "nobody excluded"},
	{"audience_groups", "excluded", "nobody excluded"},
	{"audience_users", "excluded", "nobody excluded"},
	{"send_all", "excluded", "nobody excluded"},
	{"send_group", "excluded", "nobody excluded"},
	{"send_groups", "excluded", "nobody excluded"},
	{"lookup_connection", "connection_id", "a domain over text: NULL is the unknown connection"},
	{"_valid_name", "*", "a domain check: NULL passes (the column's NOT NULL decides)"},
	{"_check_name", "*", "a helper that checks only its own arguments; it has no state to protect"},
};

/*
 * Open findings this suite reports but does not fail on (TAP TODO).  Each
 * names the function, the argument (or "*") and the value label prefix.
 * When one no longer happens the suite says so: remove it then.
 */
static const struct
{
	const char *func;
	const char *arg;
	const char *label;
	const char *why;
}			known[] = {
	{NULL, NULL, NULL, NULL},
};

/* Documented name limits in bytes (design: application scoped names), by argument name. */
static const struct
{
	const char *arg;
	int			limit;
}			name_limits[] = {
	{"app", 63}, {"server", 150}, {"from_server", 150}, {"hub", 256},
	{"connection_id", 256}, {"connection_ids", 256}, {"excluded", 256},
	{"group_name", 1024}, {"group_names", 1024}, {"user_id", 1024}, {"user_ids", 1024},
	{"invocation_id", 256}, {"stream", 256}, {"streams", 256}, {"name", 256},
	{"targets", 1024},
};

typedef struct Value
{
	char		label[64];
	char	   *sql;			/* an SQL expression of the argument's type */
	bool		is_null;
	bool		bad_name;		/* the registry's name rules forbid it */
} Value;

typedef struct Arg
{
	char		name[64];
	char		type[200];		/* format_type: what to cast to */
	char		cls;			/* class of the base type, see classify() */
	char		elemcls;		/* for arrays */
	char		elemtype[200];
	unsigned int typoid;
	unsigned int elemoid;
} Arg;

typedef struct Func
{
	char		name[64];
	char		sig[600];
	int			nargs;
	Arg			args[MAXARGS];
	bool		strict;
	bool		granted;
} Func;

static PGconn *dba;
static PGconn *hub;
static const char *dba_info;
static const char *hub_info;
static const char *log_path;
static long log_pos;
static int	huge = 100000;
static long max_message_size = 1048576;

/*
 * Values left out of a quick run (under valgrind, where each call costs
 * tens of times more): the ones that repeat a class another value covers.
 */
static const char *const quick_skip[] = {
	"at limit", "limit+1 multibyte", "C0 newline", "C0 \\x1f", "C1 U+0080", "C1 U+009F",
	"format directives", "SQL in a name", "U+FEFF U+202E", "noncharacters", "spaces",
	"slash", "victim server stream", "victim other case", "dot dot", "double slash",
	"catalog name", "huge, distinct", "duplicates", "empty 2-D", "lower bound 0",
	"far over (16x)", "elements summing over 64MB", "overlong UTF-8 C0 AF",
	"UTF-8 surrogate", "above U+10FFFF", "record separator", "1099511627775",
	"mixed signs", "one microsecond", "2147483647", "predefined role", "element DEL", "element quotes",
	"backslashes", "victim stream", "NULL among", "element limit+1", "element empty",
	"element victim", "element own $signalr", "element C0", "1", "NUL byte",
	"invalid UTF-8 FF FE", "envelope-like",
	NULL
};
static bool quick;

static Value values[MAXVALUES];
static int	nvalues;

static int	tests, failures, todos;
static int	known_hit[64];

/* per function */
static int	f_calls, f_errors, f_ok, f_bad;
static char f_notes[8192];
static char f_states[1024];

static char snap_whole[8192];
static char snap_victim[8192];

static void
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static char *
xstrdup_printf(const char *fmt,...)
{
	va_list		ap;
	char	   *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	return s;
}

static void
appendf(char *buf, size_t size, const char *fmt,...)
{
	size_t		len = strlen(buf);
	va_list		ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static PGconn *
connect_to(const char *info)
{
	PGconn	   *c = NULL;

	/* after a crash the server restarts: give it time */
	for (int i = 0; i < 120; i++)
	{
		c = PQconnectdb(info);
		if (PQstatus(c) == CONNECTION_OK)
			return c;
		PQfinish(c);
		usleep(500000);
	}
	die("cannot connect: %s", info);
	return NULL;
}

static void must_exec(PGconn *c, const char *sql);

/* The DBA's session: the fixture's commits need not wait for the disk. */
static PGconn *
connect_dba(void)
{
	PGconn	   *c = connect_to(dba_info);

	must_exec(c, "SET client_min_messages = warning");
	must_exec(c, "SET statement_timeout = '120s'");
	must_exec(c, "SET synchronous_commit = off");
	return c;
}

/* The hostile caller's session: a wait it asks for ends with the statement timeout. */
static PGconn *
connect_hub(void)
{
	PGconn	   *c = connect_to(hub_info);

	/* long enough for a huge array under valgrind, short for a wait_ms of 2^31-1 */
	must_exec(c, quick ? "SET statement_timeout = '60s'" : "SET statement_timeout = '3s'");
	return c;
}

/* Run SQL that must succeed; returns the result (caller clears). */
static PGresult *
must(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		die("query failed: %s\n%s", PQerrorMessage(c), sql);
	return r;
}

static void
must_exec(PGconn *c, const char *sql)
{
	PQclear(must(c, sql));
}

/* New lines in the server log that say a backend died. */
static bool
log_has_crash(char *what, size_t size)
{
	FILE	   *f = fopen(log_path, "r");
	char		line[4096];
	bool		crash = false;

	if (f == NULL)
		return false;
	fseek(f, log_pos, SEEK_SET);
	while (fgets(line, sizeof(line), f))
	{
		if (strstr(line, "terminated by signal") || strstr(line, "was terminated by") ||
			strstr(line, "TRAP:") || strstr(line, "PANIC:"))
		{
			if (!crash)
				snprintf(what, size, "%.300s", line);
			crash = true;
		}
	}
	log_pos = ftell(f);
	fclose(f);
	return crash;
}

/*
 * Run ";\n"-separated statements one by one, each in its own transaction
 * (as a hub server would); false at the first error.
 */
static bool
run_script(PGconn *c, const char *script, bool must_succeed)
{
	char	   *copy = strdup(script), *rest = copy, *stmt;
	bool		ok = true;

	while (ok && (stmt = strsep(&rest, "\n")) != NULL)
	{
		PGresult   *r;

		if (stmt[0] == '\0')
			continue;
		r = PQexec(c, stmt);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok && must_succeed)
			die("query failed: %s\n%s", PQerrorMessage(c), stmt);
		PQclear(r);
	}
	free(copy);
	return ok;
}

/* ---- fixture ---- */

static const char *setup_sql =
"DO $$ BEGIN CREATE ROLE sbp_hostile LOGIN IN ROLE signalr_bp_hub;"
"  EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
"DO $$ BEGIN CREATE ROLE sbp_victim LOGIN IN ROLE signalr_bp_hub;"
"  EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
"CREATE SCHEMA IF NOT EXISTS hostile_probe;"
/*
 * The extension's tables, whole and the victim's rows only, as one checksum
 * per table over the rows' identities (ctid, xmin): any insert, update or
 * delete changes them, and large payloads are never read.  A view built
 * from the catalog, read through a prepared statement (planned once).
 */
"DO $f$\n"
" DECLARE r record; whole text := ''''''; victim text := ''''''; cond text; agg text;\n"
" BEGIN\n"
"  FOR r IN SELECT c.oid::regclass AS rel, c.relname,\n"
"     array(SELECT attname::text FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0\n"
"            AND NOT attisdropped) AS cols\n"
"     FROM pg_class c WHERE c.relnamespace = 'signalr_bp'::regnamespace AND c.relkind IN ('r', 'p')\n"
"     ORDER BY c.relname LOOP\n"
"   cond := 'false';\n"
"   IF 'app_id' = ANY (r.cols) THEN cond := cond || ' OR t.app_id::text = w.vid'; END IF;\n"
"   IF 'stream_id' = ANY (r.cols) THEN cond := cond || ' OR t.stream_id::text = ANY (w.vstreams)'; END IF;\n"
"   IF r.relname = 'application' THEN cond := cond || ' OR t.id::text = w.vid'; END IF;\n"
"   IF r.relname = 'stream' THEN cond := cond || ' OR t.id::text = ANY (w.vstreams)'; END IF;\n"
"   agg := 'left(md5(coalesce(string_agg(t.ctid::text || t.xmin::text, '','' ORDER BY t.ctid)%s, '''')), 8)';\n"
"   whole := whole || format(' || %L || (SELECT %s FROM %s t) || '' ''', r.relname || '=',\n"
"     format(agg, ''), r.rel);\n"
"   victim := victim || format(' || %L || (SELECT %s FROM %s t) || '' ''', r.relname || '=',\n"
"     format(agg, ' FILTER (WHERE ' || cond || ')'), r.rel);\n"
"  END LOOP;\n"
"  EXECUTE 'CREATE OR REPLACE VIEW hostile_probe.snapshot AS'\n"
"   ' WITH v AS (SELECT (SELECT a.id::text FROM signalr_bp.application a WHERE a.name = ''victim'') AS vid),'\n"
"   ' w AS (SELECT v.vid, (SELECT array_agg(s.id::text) FROM signalr_bp.stream s, LATERAL to_jsonb(s) j'\n"
"   '   WHERE j->>''app_id'' = v.vid OR j->>''name'' LIKE ''victim/%'') AS vstreams FROM v)'\n"
"   ' SELECT ' || whole || ' AS whole, ' || victim || ' AS victim FROM w';\n"
" END $f$;";

/* (Re)build both applications; as the DBA. */
static const char *build_sql =
"SELECT signalr_bp.create_application('hostile', 'sbp_hostile', server_ttl => '1 day');\n"
"SELECT signalr_bp.create_application('victim', 'sbp_victim', server_ttl => '1 day');\n"
"SET ROLE sbp_victim;\n"
"SELECT signalr_bp.register_server('victim', 'v1');\n"
"SELECT signalr_bp.connect('victim', 'v1', 'chat', 'c1', 'u1');\n"
"SELECT signalr_bp.connect('victim', 'v1', 'chat', 'vc2', 'u2');\n"
"SELECT signalr_bp.add_to_group('victim', 'chat', 'c1', 'g1');\n"
"SELECT signalr_bp.create_stream('victim/probe', true, true);\n"
"RESET ROLE;\n";

/* Bring application hostile back to its baseline after a call changed it. */
static const char *reset_sql =
"SET ROLE sbp_hostile;\n"
"SELECT signalr_bp.register_server('hostile', 's1');\n"
"SELECT signalr_bp.register_server('hostile', 's2');\n"
"SELECT signalr_bp.connect('hostile', 's1', 'chat', 'c1', 'u1');\n"
"SELECT signalr_bp.connect('hostile', 's2', 'chat', 'c2', 'u2');\n"
"SELECT signalr_bp.add_to_group('hostile', 'chat', 'c1', 'g1');\n"
"SELECT signalr_bp.add_to_group('hostile', 'chat', 'c2', 'g1');\n"
"SELECT signalr_bp.invoke('hostile', 'chat', 's2', 'c1', 'i1', '\\x7b7d');\n"
"SELECT signalr_bp.create_stream('hostile/probe', true, true);\n"
"RESET ROLE;\n";

static void
take_snapshot(char *whole, char *victim)
{
	PGresult   *r = PQexecPrepared(dba, "snapshot", 0, NULL, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("snapshot failed: %s", PQerrorMessage(dba));

	snprintf(whole, sizeof(snap_whole), "%s", PQgetvalue(r, 0, 0));
	snprintf(victim, sizeof(snap_victim), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
}

/*
 * Deregister every server of an application, each in its own transaction:
 * removing several at once in one transaction fails at commit when one's
 * removal published to another's stream (a pending invocation).
 */
static bool
clear_servers(const char *app)
{
	char	   *sql = xstrdup_printf("SELECT s.server FROM signalr_bp.servers('%s') s", app);
	PGresult   *r = PQexec(dba, sql);
	bool		ok = PQresultStatus(r) == PGRES_TUPLES_OK;

	free(sql);
	for (int i = 0; ok && i < PQntuples(r); i++)
	{
		PGresult   *d;
		const char *p[2] = {app, PQgetvalue(r, i, 0)};

		d = PQexecParams(dba, "SELECT signalr_bp.deregister_server($1, $2)", 2, NULL, p, NULL, NULL, 0);
		ok = PQresultStatus(d) == PGRES_TUPLES_OK;
		PQclear(d);
	}
	PQclear(r);
	return ok;
}

/* Reset hostile's registry; rebuild both applications if that fails. */
static void
reset_fixture(bool rebuild)
{
	if (!rebuild)
	{
		rebuild = !clear_servers("hostile") || !run_script(dba, reset_sql, false);
		if (rebuild)
			must_exec(dba, "RESET ROLE");
	}
	if (rebuild)
	{
		PGresult   *r = must(dba, "SELECT name FROM signalr_bp.application"
							 " WHERE name IN ('hostile', 'victim')");

		for (int i = 0; i < PQntuples(r); i++)
		{
			const char *p[1] = {PQgetvalue(r, i, 0)};

			if (!clear_servers(p[0]))
				die("cannot deregister the servers of %s: %s", p[0], PQerrorMessage(dba));
			PQclear(PQexecParams(dba, "SELECT signalr_bp.drop_application($1)", 1, NULL, p, NULL, NULL, 0));
		}
		PQclear(r);
		run_script(dba, build_sql, true);
		run_script(dba, reset_sql, true);
	}
	take_snapshot(snap_whole, snap_victim);
}

/* Name the tables whose checksums differ between two snapshots. */
static void
snapshot_diff(const char *a, const char *b, char *out, size_t size)
{
	char	   *x = strdup(a), *y = strdup(b), *sx, *sy;
	char	   *tx = strtok_r(x, " ", &sx), *ty = strtok_r(y, " ", &sy);

	out[0] = '\0';
	while (tx && ty)
	{
		if (strcmp(tx, ty) != 0)
			appendf(out, size, "%.*s ", (int) (strchr(tx, '=') ? strchr(tx, '=') - tx : 0), tx);
		tx = strtok_r(NULL, " ", &sx);
		ty = strtok_r(NULL, " ", &sy);
	}
	free(x);
	free(y);
}

/* ---- catalog ---- */

/*
 * Class of a (domain-resolved) type: T text-like, S cstring, B bytea,
 * I integer, F float/numeric, L boolean, V interval, R regrole, O oid,
 * U uuid, J json(b), Z timestamptz, A array, C composite, E enum, P
 * internal (not callable from SQL), X an extension base type, ? unknown.
 */
static char
classify(const char *typname, char typtype, char typcategory, bool in_ext)
{
	if (typtype == 'c')			/* values_for() knows connection_ref's fields */
		return strcmp(typname, "signalr_bp.connection_ref") == 0 ? 'C' : '?';
	if (typtype == 'e')
		return 'E';
	if (typcategory == 'A')
		return 'A';
	if (strcmp(typname, "internal") == 0)
		return 'P';
	if (strcmp(typname, "cstring") == 0)
		return 'S';
	if (in_ext && typtype == 'b')
		return 'X';
	if (!strcmp(typname, "text") || !strcmp(typname, "character varying") ||
		!strcmp(typname, "name") || !strcmp(typname, "character"))
		return 'T';
	if (!strcmp(typname, "bytea"))
		return 'B';
	if (!strcmp(typname, "integer") || !strcmp(typname, "bigint") || !strcmp(typname, "smallint"))
		return 'I';
	if (!strcmp(typname, "numeric") || !strcmp(typname, "double precision") || !strcmp(typname, "real"))
		return 'F';
	if (!strcmp(typname, "boolean"))
		return 'L';
	if (!strcmp(typname, "interval"))
		return 'V';
	if (!strcmp(typname, "regrole"))
		return 'R';
	if (!strcmp(typname, "oid"))
		return 'O';
	if (!strcmp(typname, "uuid"))
		return 'U';
	if (!strcmp(typname, "jsonb") || !strcmp(typname, "json"))
		return 'J';
	if (!strcmp(typname, "timestamp with time zone"))
		return 'Z';
	return '?';
}

/* What the catalog says of one type, resolved through domains. */
static const char *type_sql =
"WITH RECURSIVE d AS ("
"  SELECT t.oid, t.typbasetype, t.typtype FROM pg_type t WHERE t.oid = $1::oid"
"  UNION ALL SELECT b.oid, b.typbasetype, b.typtype FROM d JOIN pg_type b ON b.oid = d.typbasetype"
"   WHERE d.typtype = 'd')"
"SELECT format_type(b.oid, NULL), b.typtype, b.typcategory,"
"       b.typnamespace = 'signalr_bp'::regnamespace, b.typelem, format_type($1::oid, NULL)"
"  FROM d JOIN pg_type b ON b.oid = d.oid WHERE d.typtype <> 'd'";

static char
type_class(unsigned int oid, char *cast, size_t castsize, unsigned int *elem)
{
	char		o[16];
	const char *p[1] = {o};
	PGresult   *r;
	char		cls;

	snprintf(o, sizeof(o), "%u", oid);
	r = PQexecParams(dba, type_sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		die("type lookup failed for %u: %s", oid, PQerrorMessage(dba));
	cls = classify(PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1)[0], PQgetvalue(r, 0, 2)[0],
				   PQgetvalue(r, 0, 3)[0] == 't');
	snprintf(cast, castsize, "%s", PQgetvalue(r, 0, 5));
	if (elem)
		*elem = (unsigned int) strtoul(PQgetvalue(r, 0, 4), NULL, 10);
	PQclear(r);
	return cls;
}

static Func *
load_functions(int *nfuncs)
{
	PGresult   *r = must(dba,
						 "SELECT p.proname, p.oid::regprocedure::text, p.proisstrict,"
						 "  has_function_privilege('signalr_bp_hub', p.oid, 'EXECUTE'),"
						 "  array_to_string(p.proargtypes::oid[], ','),"
						 "  (SELECT string_agg(coalesce(n, ''), ',' ORDER BY o) FROM unnest("
						 "     coalesce(p.proargnames, array_fill(''::text, ARRAY[p.pronargs])),"
						 "     coalesce(p.proargmodes, array_fill('i'::\"char\", ARRAY[p.pronargs])))"
						 "     WITH ORDINALITY u(n, m, o) WHERE m IN ('i', 'b', 'v'))"
						 " FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass"
						 "  AND d.objid = p.oid AND d.deptype = 'e'"
						 " JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'signalr_bp'"
						 " WHERE p.prokind = 'f' ORDER BY p.proname, 2");
	int			n = PQntuples(r);
	Func	   *funcs = calloc(n, sizeof(Func));

	for (int i = 0; i < n; i++)
	{
		Func	   *f = &funcs[i];
		char	   *types = strdup(PQgetvalue(r, i, 4));
		char	   *names = strdup(PQgetvalue(r, i, 5));
		char	   *st, *sn, *t, *nm;

		snprintf(f->name, sizeof(f->name), "%s", PQgetvalue(r, i, 0));
		snprintf(f->sig, sizeof(f->sig), "%s", PQgetvalue(r, i, 1));
		f->strict = PQgetvalue(r, i, 2)[0] == 't';
		f->granted = PQgetvalue(r, i, 3)[0] == 't';
		/* "25,17" and "app,payload" (unnamed: empty) */
		st = types;
		sn = names;
		while ((t = strsep(&st, ",")) != NULL && t[0] && f->nargs < MAXARGS)
		{
			Arg		   *a = &f->args[f->nargs++];

			nm = sn ? strsep(&sn, ",") : NULL;
			a->typoid = (unsigned int) strtoul(t, NULL, 10);
			if (nm && nm[0])
				snprintf(a->name, sizeof(a->name), "%s", nm);
			else
				snprintf(a->name, sizeof(a->name), "$%d", f->nargs);
			a->cls = type_class(a->typoid, a->type, sizeof(a->type), &a->elemoid);
			if (a->cls == 'A')
				a->elemcls = type_class(a->elemoid, a->elemtype, sizeof(a->elemtype), NULL);
		}
		free(types);
		free(names);
	}
	PQclear(r);
	*nfuncs = n;
	return funcs;
}

/* ---- values ---- */

static void
add(bool bad_name, const char *label, const char *fmt,...)
{
	va_list		ap;
	Value	   *v;

	for (int i = 0; quick && quick_skip[i]; i++)
		if (strcmp(quick_skip[i], label) == 0)
			return;
	if (nvalues == MAXVALUES)
		die("too many values");
	v = &values[nvalues++];
	snprintf(v->label, sizeof(v->label), "%s", label);
	va_start(ap, fmt);
	if (vasprintf(&v->sql, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	v->is_null = false;
	v->bad_name = bad_name;
}

static int
limit_of(const Func *f, const Arg *a)
{
	if (strcmp(a->name, "name") == 0 && strstr(f->name, "application"))
		return 63;
	for (size_t i = 0; i < sizeof(name_limits) / sizeof(name_limits[0]); i++)
		if (strcmp(name_limits[i].arg, a->name) == 0)
			return name_limits[i].limit;
	return 0;
}

/* A valid value for argument a of f, as an SQL expression of its class. */
static const char *
baseline_text(const Func *f, const char *name)
{
	if (!strcmp(name, "app"))
		return "'hostile'";
	if (!strcmp(name, "name"))
		return strstr(f->name, "application") ? "'hostile'" : "'hostile/probe'";
	if (!strcmp(name, "stream") || !strcmp(name, "streams"))
		return "'hostile/probe'";
	if (!strcmp(name, "server") || !strcmp(name, "from_server"))
		return "'s1'";
	if (!strcmp(name, "hub"))
		return "'chat'";
	if (!strcmp(name, "connection_id") || !strcmp(name, "connection_ids"))
		return "'c1'";
	if (!strcmp(name, "excluded"))
		return "'c2'";
	if (!strcmp(name, "group_name") || !strcmp(name, "group_names"))
		return "'g1'";
	if (!strcmp(name, "user_id") || !strcmp(name, "user_ids"))
		return "'u1'";
	if (!strcmp(name, "invocation_id"))
		return strcmp(f->name, "invoke") == 0 ? "'i2'" : "'i1'";
	if (!strcmp(name, "kinds"))
		return "'connection'";
	if (!strcmp(name, "targets"))
		return "'c1'";
	if (!strcmp(name, "method"))
		return "'hello'";
	return "'x'";
}

static char *
baseline(const Func *f, const Arg *a, char cls, const char *type)
{
	const char *n = a->name;

	switch (cls)
	{
		case 'T':
		case 'S':
			return xstrdup_printf("%s::%s", baseline_text(f, n), type);
		case 'B':
			return xstrdup_printf("'\\x7b7d'::%s", type);
		case 'I':
			if (!strcmp(n, "max_messages"))
				return xstrdup_printf("10::%s", type);
			if (!strcmp(n, "max_bytes"))
				return xstrdup_printf("65536::%s", type);
			if (!strcmp(n, "wait_ms") || !strcmp(n, "from_offset") || !strcmp(n, "kind"))
				return xstrdup_printf("%s::%s", strcmp(n, "kind") ? "0" : "1", type);
			return xstrdup_printf("10::%s", type);
		case 'F':
			return xstrdup_printf("1::%s", type);
		case 'L':
			return xstrdup_printf("%s::%s", !strcmp(n, "if_not_exists") || !strcmp(n, "if_exists") ||
								  !strcmp(n, "durable") ? "true" : "false", type);
		case 'V':
			return xstrdup_printf("'30 seconds'::%s", type);
		case 'R':
			return xstrdup_printf("'sbp_hostile'::%s", type);
		case 'O':
			return xstrdup_printf("0::%s", type);
		case 'U':
			return xstrdup_printf("'6f1a3c5e-0000-4000-8000-000000000001'::%s", type);
		case 'J':
			return xstrdup_printf("'[1]'::%s", type);
		case 'Z':
			return xstrdup_printf("now()::%s", type);
		case 'X':
			return xstrdup_printf("'connections {c1}'::%s", type);
		case 'C':
			return xstrdup_printf("ROW('c1', 'u1', ARRAY['g1'])::%s", type);
		case 'A':
			{
				Arg			e = *a;
				char	   *el = baseline(f, &e, a->elemcls, a->elemtype);
				char	   *s = xstrdup_printf("ARRAY[%s]::%s", el, type);

				free(el);
				return s;
			}
	}
	return xstrdup_printf("NULL::%s", type);
}

/* Hostile text values for a name of at most limit bytes (0: no documented limit). */
static void
text_values(const char *type, int limit)
{
	int			l = limit > 0 ? limit : 1024;
	bool		name = limit > 0;	/* only names have rules */

	add(name, "empty", "''::%s", type);
	add(false, "at limit", "repeat('x', %d)::%s", l, type);
	add(name, "limit+1", "repeat('x', %d)::%s", l + 1, type);
	/* two-byte characters, the last one straddling the limit when it can */
	add(name, "limit+1 multibyte", "(repeat('é', %d) || '%s')::%s", (l + 1) / 2,
		(l + 1) % 2 ? "x" : "", type);
	add(name, "far over 1MB", "repeat('x', 1048576)::%s", type);
	add(name, "C0 \\x01", "E'a\\x01b'::%s", type);
	add(name, "C0 newline", "E'a\\nb'::%s", type);
	add(name, "C0 \\x1f", "E'\\x1f'::%s", type);
	add(name, "DEL", "E'a\\x7fb'::%s", type);
	add(name, "C1 U+0080", "('a' || chr(128))::%s", type);
	add(name, "C1 U+0085", "chr(133)::%s", type);
	add(name, "C1 U+009F", "('b' || chr(159) || 'c')::%s", type);
	add(false, "quotes", "$q$a'b\"c$q$::%s", type);
	add(false, "backslashes", "$q$\\\\x00\\$q$::%s", type);
	add(false, "format directives", "'%%s%%n%%x%%d'::%s", type);
	add(false, "SQL in a name", "$q$x'); DROP TABLE signalr_bp.stream; --$q$::%s", type);
	add(false, "U+FEFF U+202E", "(chr(65279) || chr(8238) || 'x')::%s", type);
	add(false, "noncharacters", "(chr(65535) || chr(1114111))::%s", type);
	add(false, "spaces", "' '::%s", type);
	add(false, "slash", "'/'::%s", type);
	add(false, "victim", "'victim'::%s", type);
	add(false, "victim stream", "'victim/probe'::%s", type);
	add(false, "victim server stream", "'victim/v1'::%s", type);
	add(false, "victim $signalr", "'victim/$signalr'::%s", type);
	add(false, "own $signalr", "'hostile/$signalr'::%s", type);
	add(false, "victim other case", "'VICTIM'::%s", type);
	add(false, "dot dot", "'hostile/../victim'::%s", type);
	add(false, "double slash", "'hostile//probe'::%s", type);
	add(false, "catalog name", "'pg_catalog'::%s", type);
}

static void
int_values(const char *type)
{
	const char *v[] = {"-2147483648", "-1", "0", "1", "2147483647"};
	const char *v8[] = {"-9223372036854775808", "-1", "0", "1", "1099511627775",
	"1099511627776", "9223372036854775807"};
	const char *v2[] = {"-32768", "-1", "0", "32767"};

	if (strcmp(type, "bigint") == 0)
		for (size_t i = 0; i < 7; i++)
			add(false, v8[i], "%s::%s", v8[i], type);
	else if (strcmp(type, "smallint") == 0)
		for (size_t i = 0; i < 4; i++)
			add(false, v2[i], "%s::%s", v2[i], type);
	else
		for (size_t i = 0; i < 5; i++)
			add(false, v[i], "%s::%s", v[i], type);
}

static void
bytea_values(const char *type)
{
	add(false, "empty", "''::%s", type);
	add(false, "NUL byte", "'\\x00'::%s", type);
	add(false, "at limit", "convert_to(repeat('x', %ld), 'UTF8')::%s", max_message_size, type);
	add(false, "limit+1", "convert_to(repeat('x', %ld), 'UTF8')::%s", max_message_size + 1, type);
	add(false, "far over (16x)", "convert_to(repeat('x', %ld), 'UTF8')::%s", 16 * max_message_size, type);
	add(false, "invalid UTF-8 C3 28", "'\\xc328'::%s", type);
	add(false, "invalid UTF-8 FF FE", "'\\xfffe'::%s", type);
	add(false, "overlong UTF-8 C0 AF", "'\\xc0af'::%s", type);
	add(false, "UTF-8 surrogate", "'\\xeda080'::%s", type);
	add(false, "above U+10FFFF", "'\\xf4908080'::%s", type);
	add(false, "envelope-like", "'\\x0201ffffffff'::%s", type);
	add(false, "record separator", "'\\x1e1e'::%s", type);
}

static void
array_values(const Func *f, const Arg *a)
{
	Arg			e = *a;
	char	   *el = baseline(f, &e, a->elemcls, a->elemtype);
	const char *t = a->type;
	int			limit = limit_of(f, a);

	add(false, "empty array", "'{}'::%s", t);
	add(false, "two elements", "ARRAY[%s, %s]::%s", el, el, t);
	add(false, "NULL element", "ARRAY[NULL]::%s", t);
	add(false, "NULL among", "ARRAY[%s, NULL]::%s", el, t);
	add(false, "two-dimensional", "ARRAY[[%s, %s], [%s, %s]]::%s", el, el, el, el, t);
	add(false, "empty 2-D", "array_fill(%s, ARRAY[0, 3])::%s", el, t);
	/* subscripts from 0 or below: loops over 1..cardinality miss elements */
	add(false, "lower bound 0", "('[0:1]=' || ARRAY[%s, %s]::text)::%s", el, el, t);
	add(false, "lower bound -5", "('[-5:-5]=' || ARRAY[%s]::text)::%s", el, t);
	add(false, "huge, repeated", "array_fill(%s, ARRAY[%d])::%s", el, huge, t);
	add(false, "duplicates", "ARRAY[%s, %s, %s]::%s", el, el, el, t);
	switch (a->elemcls)
	{
		case 'T':
			add(false, "huge, distinct", "ARRAY(SELECT 'c' || i FROM generate_series(1, %d) i)::%s",
				huge, t);
			add(limit > 0, "empty element", "ARRAY['']::%s", t);
			add(limit > 0, "element limit+1", "ARRAY[repeat('x', %d)]::%s",
				(limit > 0 ? limit : 1024) + 1, t);
			add(limit > 0, "element far over", "ARRAY[repeat('x', 1048576)]::%s", t);
			add(limit > 0, "element C0", "ARRAY[E'a\\x01']::%s", t);
			add(limit > 0, "element C1", "ARRAY[chr(133)]::%s", t);
			add(limit > 0, "element DEL", "ARRAY[E'\\x7f']::%s", t);
			add(false, "element quotes", "ARRAY[$q$\"{},\\$q$]::%s", t);
			add(false, "element victim", "ARRAY['victim/probe', 'victim']::%s", t);
			add(false, "element own $signalr", "ARRAY['hostile/$signalr']::%s", t);
			break;
		case 'B':
			add(false, "element over limit", "ARRAY[convert_to(repeat('x', %ld), 'UTF8')]::%s",
				max_message_size + 1, t);
			add(false, "elements summing over 64MB",
				"array_fill(convert_to(repeat('x', %ld), 'UTF8'), ARRAY[80])::%s",
				max_message_size, t);
			add(false, "empty element", "ARRAY[''::bytea]::%s", t);
			break;
		case 'X':
			add(false, "element all", "ARRAY['all except {c1}']::%s", t);
			add(false, "element victim's", "ARRAY['connections {c1,vc2}']::%s", t);
			break;
	}
	free(el);
}

/* NULL plus the hostile values of argument a's class. */
static void
values_for(const Func *f, const Arg *a)
{
	const char *t = a->type;

	for (int i = 0; i < nvalues; i++)
		free(values[i].sql);
	nvalues = 0;
	add(false, "NULL", "NULL::%s", t);
	values[0].is_null = true;
	switch (a->cls)
	{
		case 'T':
		case 'S':
			text_values(t, limit_of(f, a));
			break;
		case 'B':
			bytea_values(t);
			break;
		case 'I':
			int_values(t);
			break;
		case 'F':
			add(false, "NaN", "'NaN'::%s", t);
			add(false, "negative", "-1e300::%s", t);
			break;
		case 'L':
			add(false, "true", "true::%s", t);
			add(false, "false", "false::%s", t);
			break;
		case 'V':
			add(false, "negative", "'-1 second'::%s", t);
			add(false, "zero", "'0'::%s", t);
			add(false, "one microsecond", "'1 microsecond'::%s", t);
			add(false, "huge", "'178000000 years'::%s", t);
			add(false, "huge negative", "'-178000000 years'::%s", t);
			add(false, "mixed signs", "'1 month -40 days'::%s", t);
			break;
		case 'R':
			add(false, "superuser", "'postgres'::%s", t);
			add(false, "victim's role", "'sbp_victim'::%s", t);
			add(false, "hub role", "'signalr_bp_hub'::%s", t);
			add(false, "predefined role", "'pg_read_server_files'::%s", t);
			add(false, "invalid oid", "'-'::%s", t);
			add(false, "dangling oid", "4294967295::oid::%s", t);
			break;
		case 'O':
			add(false, "zero", "0::%s", t);
			add(false, "max", "4294967295::%s", t);
			break;
		case 'U':
			add(false, "nil", "'00000000-0000-0000-0000-000000000000'::%s", t);
			add(false, "max", "'ffffffff-ffff-ffff-ffff-ffffffffffff'::%s", t);
			break;
		case 'J':
			add(false, "null", "'null'::%s", t);
			add(false, "object", "'{\"a\": [1, {\"b\": null}]}'::%s", t);
			add(false, "string", "'\"x\"'::%s", t);
			add(false, "deep", "(repeat('[', 5000) || repeat(']', 5000))::%s", t);
			add(false, "large", "to_jsonb(repeat('x', 1048576))::%s", t);
			add(false, "control characters", "to_jsonb(E'\\x01' || chr(133))::%s", t);
			break;
		case 'Z':
			add(false, "infinity", "'infinity'::%s", t);
			add(false, "-infinity", "'-infinity'::%s", t);
			break;
		case 'X':
			add(false, "all", "'all'::%s", t);
			add(false, "all except victim's", "'all except {vc2}'::%s", t);
			add(false, "users", "'users {u1, u2}'::%s", t);
			add(false, "groups", "'groups {g1, \"g 2\"} except {c2}'::%s", t);
			add(false, "empty targets", "'connections {}'::%s", t);
			add(false, "huge", "signalr_bp.audience_connections("
				"ARRAY(SELECT 'c' || i FROM generate_series(1, %d) i))::%s", huge, t);
			add(false, "garbage", "'garbage'::%s", t);
			add(true, "empty text", "''::%s", t);
			add(true, "name far over", "('groups {' || repeat('x', 100000) || '}')::%s", t);
			add(true, "C1 in a name", "('users {a' || chr(133) || '}')::%s", t);
			break;
		case 'C':
			add(false, "all fields NULL", "ROW(NULL, NULL, NULL)::%s", t);
			add(false, "NULL groups", "ROW('c1', 'u1', ARRAY[NULL])::%s", t);
			add(false, "2-D groups", "ROW('c1', 'u1', ARRAY[['g1', 'g2'], ['g3', 'g4']])::%s", t);
			add(false, "huge groups", "ROW('c1', NULL, array_fill('g1'::text, ARRAY[%d]))::%s", huge, t);
			add(false, "long id", "ROW(repeat('x', 1048576), '', '{}')::%s", t);
			add(false, "victim's connection", "ROW('vc2', 'u2', ARRAY['g1'])::%s", t);
			break;
		case 'A':
			array_values(f, a);
			break;
		case 'E':
			break;
	}
}

/* ---- calls ---- */

static bool
may_be_null(const Func *f, const Arg *a)
{
	if (f->strict)
		return true;
	for (size_t i = 0; i < sizeof(null_ok) / sizeof(null_ok[0]); i++)
		if (strcmp(null_ok[i].func, f->name) == 0 &&
			(strcmp(null_ok[i].arg, "*") == 0 || strcmp(null_ok[i].arg, a->name) == 0))
			return true;
	return false;
}

/* A finding listed in known[]? */
static int
known_finding(const Func *f, const Arg *a, const Value *v)
{
	for (int i = 0; known[i].func; i++)
		if (strcmp(known[i].func, f->name) == 0 &&
			(strcmp(known[i].arg, "*") == 0 || strcmp(known[i].arg, a->name) == 0) &&
			strncmp(known[i].label, v->label, strlen(known[i].label)) == 0)
			return i;
	return -1;
}

/* Record a failure of this call; known findings become TODO notes. */
static void
fail(const Func *f, const Arg *a, const Value *v, const char *what)
{
	int			k = known_finding(f, a, v);

	if (k >= 0)
	{
		known_hit[k]++;
		if (known_hit[k] == 1)
			appendf(f_notes, sizeof(f_notes), "#   TODO %s(%s=%s): %s (%s)\n",
					f->name, a->name, v->label, what, known[k].why);
		return;
	}
	f_bad++;
	appendf(f_notes, sizeof(f_notes), "#   FAIL %s(%s%s%s): %s\n", f->name,
			a->name[0] ? a->name : "", a->name[0] ? "=" : "", v->label, what);
}

static void
call(const Func *f, int pos, const Value *v, PGconn *c, bool as_hub)
{
	char	   *sql;
	char		args[8192] = "";
	char		crash[512];
	PGresult   *r;
	ExecStatusType st;
	static const Arg noarg = {.name = ""};
	const Arg  *a = pos >= 0 ? &f->args[pos] : &noarg;
	char		schema_name[128];
	char	   *paren;

	for (int i = 0; i < f->nargs; i++)
	{
		char	   *b = i == pos ? NULL : baseline(f, &f->args[i], f->args[i].cls, f->args[i].type);

		appendf(args, sizeof(args), "%s%s", i ? ", " : "", b ? b : v->sql);
		free(b);
	}
	/* regprocedure text: schema-qualified name, then "(types)" */
	snprintf(schema_name, sizeof(schema_name), "%s", f->sig);
	paren = strchr(schema_name, '(');
	if (paren)
		*paren = '\0';
	sql = xstrdup_printf("SELECT count(*) FROM %s%s(%s) AS r",
						 strchr(schema_name, '.') ? "" : "signalr_bp.", schema_name, args);
	f_calls++;
	r = PQexec(c, sql);
	st = PQresultStatus(r);
	if (PQstatus(c) != CONNECTION_OK)
	{
		fail(f, a, v, "connection lost (backend crash?)");
		PQclear(r);
		free(sql);
		PQfinish(hub);
		PQfinish(dba);
		dba = connect_dba();
		hub = connect_hub();
		PQclear(PQprepare(dba, "snapshot", "SELECT whole, victim FROM hostile_probe.snapshot", 0, NULL));
		reset_fixture(true);
		(void) log_has_crash(crash, sizeof(crash));
		return;
	}
	if (st == PGRES_TUPLES_OK)
	{
		char		now_whole[8192], now_victim[8192], diff[1024];

		f_ok++;
		if (v->is_null && !may_be_null(f, a))
			fail(f, a, v, "succeeded with NULL: not STRICT and not in null_ok");
		if (v->bad_name)
			fail(f, a, v, "succeeded with a name the registry's rules forbid");
		take_snapshot(now_whole, now_victim);
		if (as_hub && strcmp(now_victim, snap_victim) != 0)
		{
			snapshot_diff(snap_victim, now_victim, diff, sizeof(diff));
			fail(f, a, v, xstrdup_printf("changed application victim's rows in: %s", diff));
		}
		if (strcmp(now_whole, snap_whole) != 0)
			reset_fixture(!as_hub);
	}
	else
	{
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		char		now_whole[8192], now_victim[8192], diff[1024];

		f_errors++;
		if (state == NULL)
			state = "?????";
		if (strncmp(state, "XX", 2) == 0 || strncmp(state, "58", 2) == 0 || state[0] == '?')
			fail(f, a, v, xstrdup_printf("%s %s", state, PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)));
		if (!strstr(f_states, state) && strlen(f_states) < sizeof(f_states) - 8)
			appendf(f_states, sizeof(f_states), "%s%s", f_states[0] ? " " : "", state);
		take_snapshot(now_whole, now_victim);
		if (strcmp(now_whole, snap_whole) != 0)
		{
			snapshot_diff(snap_whole, now_whole, diff, sizeof(diff));
			fail(f, a, v, xstrdup_printf("failed (%s) but changed: %s", state, diff));
			reset_fixture(false);
		}
	}
	if (log_has_crash(crash, sizeof(crash)))
		fail(f, a, v, xstrdup_printf("server log: %s", crash));
	PQclear(r);
	free(sql);
}

/* The engine still delivers: publish to the probe stream and read it back. */
static bool
engine_healthy(void)
{
	PGresult   *r;
	bool		ok;
	char		head[32] = "";
	const char *p[1] = {head};

	/* a durable commit: readers are not held back waiting for the WAL flush */
	must_exec(dba, "SET ROLE sbp_hostile");
	must_exec(dba, "SET synchronous_commit = on");
	r = PQexec(dba, "SELECT signalr_bp.head('hostile/probe')");
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		snprintf(head, sizeof(head), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	r = PQexec(dba, "SELECT signalr_bp.publish('hostile/probe', '\\x68')");
	PQclear(r);
	/* the message and nothing else, within 5 s (a leaked slot would hold it back forever) */
	r = PQexecParams(dba, "SELECT count(*) FROM signalr_bp.fetch('hostile/probe', $1::bigint, 10, 5000)",
					 1, NULL, p, NULL, NULL, 0);
	ok = head[0] && PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
	must_exec(dba, "SET synchronous_commit = off");
	PQclear(r);
	must_exec(dba, "RESET ROLE");
	take_snapshot(snap_whole, snap_victim);
	return ok;
}

static void
run_function(Func *f)
{
	bool		as_hub = f->granted;
	bool		callable = true;
	const char *who = as_hub ? "hub role" : "DBA";

	f_calls = f_errors = f_ok = f_bad = 0;
	f_notes[0] = f_states[0] = '\0';
	for (int i = 0; i < f->nargs; i++)
	{
		if (f->args[i].cls == 'P')
			callable = false;
		if (f->args[i].cls == '?' || (f->args[i].cls == 'A' && f->args[i].elemcls == '?'))
		{
			f_bad++;
			appendf(f_notes, sizeof(f_notes),
					"#   FAIL no hostile values for type %s: add its class to hostile.c\n",
					f->args[i].type);
		}
	}
	if (!callable)
	{
		tests++;
		printf("ok %d - %s: takes internal, not callable from SQL (binary input: test/fuzz)\n",
			   tests, f->sig);
		return;
	}
	if (!as_hub && f->name[0] == '_')
	{
		/* internal: the hub role must be refused; nothing more to try */
		PGresult   *r;
		char	   *sql = xstrdup_printf("SELECT has_function_privilege('sbp_hostile', '%s', 'EXECUTE')",
										 f->sig);

		r = must(dba, sql);
		tests++;
		if (strcmp(PQgetvalue(r, 0, 0), "f") == 0)
			printf("ok %d - %s: internal, refused to the hub role\n", tests, f->sig);
		else
		{
			failures++;
			printf("not ok %d - %s: internal but executable by the hub role\n", tests, f->sig);
		}
		PQclear(r);
		free(sql);
		return;
	}
	if (f_bad == 0)
		for (int i = 0; i < f->nargs; i++)
		{
			values_for(f, &f->args[i]);
			for (int j = 0; j < nvalues; j++)
				call(f, i, &values[j], as_hub ? hub : dba, as_hub);
		}
	if (f->nargs == 0)
	{
		Value		none = {.label = "no arguments", .sql = ""};

		call(f, -1, &none, as_hub ? hub : dba, as_hub);
	}
	if (!engine_healthy())
	{
		f_bad++;
		appendf(f_notes, sizeof(f_notes), "#   FAIL the probe stream no longer delivers a new message\n");
	}
	tests++;
	if (f_bad)
		failures++;
	printf("%s %d - %s as %s: %d calls, %d errors (%s), %d succeeded, %d failures\n",
		   f_bad ? "not ok" : "ok", tests, f->sig, who, f_calls, f_errors,
		   f_states[0] ? f_states : "-", f_ok, f_bad);
	fputs(f_notes, stdout);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	Func	   *funcs;
	int			nfuncs;
	PGresult   *r;
	FILE	   *lf;

	if (argc < 4)
		die("usage: hostile \"DBA conninfo\" \"hub role conninfo\" server.log [huge-array-size [quick]]");
	dba_info = argv[1];
	hub_info = argv[2];
	log_path = argv[3];
	if (argc > 4)
		huge = atoi(argv[4]);
	quick = argc > 5 && strcmp(argv[5], "quick") == 0;
	lf = fopen(log_path, "r");
	if (lf)
	{
		fseek(lf, 0, SEEK_END);
		log_pos = ftell(lf);
		fclose(lf);
	}

	dba = connect_dba();
	must_exec(dba, setup_sql);
	PQclear(PQprepare(dba, "snapshot", "SELECT whole, victim FROM hostile_probe.snapshot", 0, NULL));
	r = must(dba, "SELECT pg_size_bytes(current_setting('signalr_bp.max_message_size'))");
	max_message_size = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	hub = connect_hub();
	reset_fixture(true);

	funcs = load_functions(&nfuncs);
	tests++;
	if (nfuncs >= 10)
		printf("ok %d - the catalog lists %d functions of the extension\n", tests, nfuncs);
	else
	{
		failures++;
		printf("not ok %d - the catalog lists only %d functions of the extension\n", tests, nfuncs);
	}
	for (int i = 0; i < nfuncs; i++)
		run_function(&funcs[i]);
	for (int i = 0; known[i].func; i++)
		if (known_hit[i] == 0)
			printf("# TODO fixed, remove from known[]: %s(%s=%s) %s\n",
				   known[i].func, known[i].arg, known[i].label, known[i].why);
		else
			todos++;
	printf("1..%d\n", tests);
	printf("# %d known findings (TODO)\n", todos);
	printf("%d passed, %d failed\n", tests - failures, failures);
	return failures ? 1 : 0;
}
