/*
 * hub_sim.c: two simulated SignalR hub servers on a real PostgreSQL.
 *
 * Each server registers, holds 50 connections and consumes the application
 * stream on a dedicated connection (long-poll fetch_packed), decoding every
 * envelope and filtering it as a hub server does: with its own connections,
 * their users, and the groups it keeps in memory (changed at once for its
 * own group changes, and by joined/left envelopes for changes made by the
 * other server or by SQL).  It records what each local connection received.
 *
 * The test drives group changes from the other server and from SQL, every
 * send kind (single, batch, audience, keyed batch retried), client results
 * (answered, unknown, cancelled, failed by a disconnect and by a reaped
 * server), an emptied registry (as after a crash or a promotion: sends
 * committed meanwhile reach every server's connections, and the servers
 * rebuild the registry from memory), and a reaped server that comes back.
 * Every expectation counts, for every connection, how often it got each
 * message.  Prints TAP; exits non-zero on failure.
 *
 * usage: hub_sim "connection string"
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libpq-fe.h>

#define NCONN 50
#define MAXMSG 256
#define MAXGROUPS 8
#define NAMELEN 64

static const char *conninfo;
static int	tests, failures;

typedef struct Server
{
	const char *name;
	char		stream[128];
	pthread_t	consumer;
	atomic_int	stop;
	atomic_int	answer_invocations;	/* reply to invoke envelopes */
	PGconn	   *ops;			/* the consumer's connection for its reactions */
	pthread_mutex_t lock;
	/* the server's memory, as a hub server keeps it */
	bool		registered;		/* its connections are in the registry (epoch known) */
	int			epoch;
	char		groups[NCONN][MAXGROUPS][NAMELEN];
	int			ngroups[NCONN];
	/* what each local connection received, in order */
	char		got[NCONN][MAXMSG][NAMELEN];
	int			ngot[NCONN];
	/* outcomes of the invocations this server made; cancels its clients got */
	char		results[16][128];
	int			nresults;
	int			cancels;
	long		envelopes;
	int			joined;			/* group changes other callers made to its connections */
	int			left;
	int			unregistered;	/* joined envelopes flagged UNREGISTERED */
	int			registered_late;	/* memberships it registered itself after one */
} Server;

static Server servers[2] = {{.name = "hub-a"}, {.name = "hub-b"}};

static void
ok(int cond, const char *fmt, ...)
{
	va_list		ap;

	tests++;
	if (!cond)
		failures++;
	printf("%s %d - ", cond ? "ok" : "not ok", tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static PGconn *
connect_db(void)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s", PQerrorMessage(c));
		exit(2);
	}
	return c;
}

/*
 * Run SQL; return the first value (in a static buffer) or NULL on error,
 * with the SQLSTATE and message in err (without err, an error is fatal).
 */
static const char *
sql(PGconn *c, char *err, size_t errlen, const char *fmt, ...)
{
	static __thread char value[256];
	char		q[8192];
	va_list		ap;
	PGresult   *r;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		if (err)
			snprintf(err, errlen, "%s: %s", PQresultErrorField(r, PG_DIAG_SQLSTATE),
					 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
		else
		{
			fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
			exit(2);
		}
		PQclear(r);
		return NULL;
	}
	snprintf(value, sizeof(value), "%s",
			 PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return value;
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/* The local index of connection id "<this server>-<n>", or -1. */
static int
local_index(Server *s, const char *id)
{
	size_t		n = strlen(s->name);
	int			i;

	if (strncmp(id, s->name, n) != 0 || id[n] != '-')
		return -1;
	i = atoi(id + n + 1);
	return i >= 0 && i < NCONN ? i : -1;
}

/* User of local connection i: u0..u24, shared by both servers. */
static void
user_of(int i, char *out, size_t len)
{
	snprintf(out, len, "u%d", i / 2);
}

static bool
has_group(Server *s, int conn, const char *group)
{
	for (int g = 0; g < s->ngroups[conn]; g++)
		if (strcmp(s->groups[conn][g], group) == 0)
			return true;
	return false;
}

/* Change local connection conn's groups in memory (caller holds the lock). */
static void
set_group(Server *s, int conn, const char *group, bool member)
{
	for (int g = 0; g < s->ngroups[conn]; g++)
		if (strcmp(s->groups[conn][g], group) == 0)
		{
			if (!member)
				memmove(s->groups[conn][g], s->groups[conn][g + 1],
						(size_t) (--s->ngroups[conn] - g) * NAMELEN);
			return;
		}
	if (member && s->ngroups[conn] < MAXGROUPS)
		snprintf(s->groups[conn][s->ngroups[conn]++], NAMELEN, "%s", group);
}

/* An envelope, decoded (format in src/signalr.c). */
typedef struct Envelope
{
	int			kind;
	int			flags;
	char		hub[NAMELEN];
	char		list[2][64][NAMELEN];
	int			n[2];
	char		payload[NAMELEN * 2];
} Envelope;

static bool
decode(const unsigned char *e, int len, Envelope *env)
{
	const unsigned char *p = e + 3;
	const unsigned char *end = e + len;
	int			hublen;

	memset(env, 0, sizeof(*env));
	if (len < 3 || e[0] != 2)
		return false;
	env->kind = e[1];
	env->flags = e[2];
	if (env->flags & 1)
		p += 16;
	if (p + 2 > end)
		return false;
	hublen = (p[0] << 8) | p[1];
	if (p + 2 + hublen > end)
		return false;
	snprintf(env->hub, sizeof(env->hub), "%.*s", hublen, p + 2);
	p += 2 + hublen;
	for (int l = 0; l < 2; l++)
	{
		uint32_t	n;

		if (p + 4 > end)
			return false;
		n = get32(p);
		p += 4;
		for (uint32_t i = 0; i < n; i++)
		{
			int			l2;

			if (p + 2 > end)
				return false;
			l2 = (p[0] << 8) | p[1];
			if (p + 2 + l2 > end)
				return false;
			if (i < 64)
				snprintf(env->list[l][env->n[l]++], NAMELEN, "%.*s", l2, p + 2);
			p += 2 + l2;
		}
	}
	snprintf(env->payload, sizeof(env->payload), "%.*s", (int) (end - p), p);
	return true;
}

static bool
listed(const Envelope *env, int l, const char *name)
{
	for (int i = 0; i < env->n[l]; i++)
		if (strcmp(env->list[l][i], name) == 0)
			return true;
	return false;
}

/* Act on one envelope as a hub server does. */
static void
handle(Server *s, const unsigned char *e, int len)
{
	Envelope	env;
	int			conn = -1;
	bool		answer = false;
	bool		register_late = false;

	if (!decode(e, len, &env))
	{
		ok(0, "%s: undecodable envelope of %d bytes", s->name, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->envelopes++;
	if (env.kind >= 1 && env.kind <= 4 && strcmp(env.hub, "Chat") == 0)
	{
		/* a message: every local connection that matches, once */
		for (int i = 0; i < NCONN; i++)
		{
			char		id[NAMELEN];
			char		user[NAMELEN];
			bool		match = false;

			snprintf(id, sizeof(id), "%s-%d", s->name, i);
			user_of(i, user, sizeof(user));
			if (listed(&env, 1, id))
				continue;
			if (env.kind == 1)
				match = true;
			else if (env.kind == 2)
				match = listed(&env, 0, id);
			else if (env.kind == 4)
				match = listed(&env, 0, user);
			else
				for (int g = 0; g < s->ngroups[i] && !match; g++)
					match = listed(&env, 0, s->groups[i][g]);
			if (match && s->ngot[i] < MAXMSG)
				snprintf(s->got[i][s->ngot[i]++], NAMELEN, "%s", env.payload);
		}
	}
	else if (env.kind == 5 && (conn = local_index(s, env.list[0][0])) >= 0)
		answer = atomic_load(&s->answer_invocations);
	else if ((env.kind == 6 || env.kind == 7) && strncmp(env.list[0][0], s->name, strlen(s->name)) == 0)
	{
		/* our invocation ids start with our name; others are not ours */
		if (s->nresults < 16)
			snprintf(s->results[s->nresults++], 128, "%s %s: %s", env.kind == 6 ? "result" : "failed",
					 env.list[0][0], env.kind == 6 ? env.payload : env.list[0][1]);
	}
	else if (env.kind == 8 && local_index(s, env.list[0][0]) >= 0)
		s->cancels++;
	else if ((env.kind == 9 || env.kind == 10) && (conn = local_index(s, env.list[0][0])) >= 0)
	{
		set_group(s, conn, env.list[0][1], env.kind == 9);
		if (env.kind == 9)
			s->joined++;
		else
			s->left++;
		if (env.kind == 9 && (env.flags & 2))
		{
			s->unregistered++;
			/* once registered again it registers the membership itself; before, its rebuild does */
			register_late = s->registered;
		}
	}
	pthread_mutex_unlock(&s->lock);

	if (answer)
		sql(s->ops, NULL, 0, "SELECT signalr_bp.complete_invocation('sim', '%s', 'answer from %s to %s')",
			env.list[0][1], env.list[0][0], env.payload);
	if (register_late)
	{
		char		err[256];
		const char *added = sql(s->ops, err, sizeof(err),
								"SELECT signalr_bp.add_to_group('sim', 'Chat', '%s', '%s', '%s')",
								env.list[0][0], env.list[0][1], s->name);

		pthread_mutex_lock(&s->lock);
		if (added && strcmp(added, "t") == 0)
			s->registered_late++;
		else if (!added && strncmp(err, "SB003", 5) == 0)
			s->registered = false;	/* its registration is gone: the rebuild registers it */
		else if (!added)
			fprintf(stderr, "%s: add_to_group: %s\n", s->name, err);
		pthread_mutex_unlock(&s->lock);
	}
}

static void *
consume(void *arg)
{
	Server	   *s = arg;
	PGconn	   *c = connect_db();
	long		next = 0;

	while (!atomic_load(&s->stop))
	{
		char		from[32];
		const char *params[2] = {s->stream, from};
		PGresult   *r;
		const unsigned char *p;
		int			len;

		snprintf(from, sizeof(from), "%ld", next);
		r = PQexecParams(c, "SELECT next_offset, messages FROM signalr_bp.fetch_packed($1, $2, 1048576, 100)",
						 2, NULL, params, NULL, NULL, 1);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "%s consumer: %s", s->name, PQerrorMessage(c));
			PQclear(r);
			usleep(100000);
			continue;
		}
		p = (const unsigned char *) PQgetvalue(r, 0, 1);
		len = PQgetlength(r, 0, 1);
		while (len >= 12)
		{
			uint32_t	mlen = get32(p + 8);

			next = (long) (((uint64_t) get32(p) << 32) | get32(p + 4)) + 1;
			handle(s, p + 12, (int) mlen);
			p += 12 + mlen;
			len -= 12 + mlen;
		}
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

/*
 * Register (again) and rebuild the registry from memory: the connections
 * first, then the groups.  From the moment the groups are read here, the
 * consumer registers memberships it learns of (UNREGISTERED) itself.
 */
static void
register_and_rebuild(Server *s, PGconn *c)
{
	char		ids[8192] = "";
	char		cons[16384] = "";
	char		groups[16384] = "";
	int			n = 0;

	const char *reg = sql(c, NULL, 0, "SELECT registry_epoch || ' ' || stream FROM signalr_bp.register_server('sim', '%s')",
						  s->name);

	s->epoch = atoi(reg);
	snprintf(s->stream, sizeof(s->stream), "%s", strchr(reg, ' ') + 1);
	for (int i = 0; i < NCONN; i++)
		snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s\"%s-%d\"", i ? "," : "", s->name, i);
	sql(c, NULL, 0, "SELECT signalr_bp.connect_many('sim', '%s', 'Chat', '{%s}',"
		" ARRAY(SELECT 'u' || (i / 2) FROM generate_series(0, %d) i))", s->name, ids, NCONN - 1);
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < NCONN; i++)
		for (int g = 0; g < s->ngroups[i]; g++, n++)
		{
			snprintf(cons + strlen(cons), sizeof(cons) - strlen(cons), "%s\"%s-%d\"", n ? "," : "", s->name, i);
			snprintf(groups + strlen(groups), sizeof(groups) - strlen(groups), "%s\"%s\"", n ? "," : "", s->groups[i][g]);
		}
	s->registered = true;
	pthread_mutex_unlock(&s->lock);
	if (n > 0)
		sql(c, NULL, 0, "SELECT signalr_bp.add_to_groups('sim', 'Chat', '{%s}', '{%s}', '%s')",
			cons, groups, s->name);
}

/* A heartbeat; when the server was removed or the registry lost, register and rebuild. */
static bool
heartbeat(Server *s, PGconn *c)
{
	char		err[256];
	const char *epoch = sql(c, err, sizeof(err), "SELECT signalr_bp.heartbeat('sim', '%s')", s->name);

	if (epoch && atoi(epoch) == s->epoch)
		return false;
	pthread_mutex_lock(&s->lock);
	s->registered = false;
	pthread_mutex_unlock(&s->lock);
	register_and_rebuild(s, c);
	return true;
}

/* A group change this server makes for its own connection: memory at once, then the registry. */
static void
own_group_change(Server *s, PGconn *c, int conn, const char *group, bool add)
{
	pthread_mutex_lock(&s->lock);
	set_group(s, conn, group, add);
	pthread_mutex_unlock(&s->lock);
	sql(c, NULL, 0, "SELECT signalr_bp.%s('sim', 'Chat', '%s-%d', '%s', '%s')",
		add ? "add_to_group" : "remove_from_group", s->name, conn, group, s->name);
}

/* Wait until cond holds for server s (checked under its lock), up to 5 s. */
#define WAIT_FOR(s, cond) \
	do { for (int w_ = 0; w_ < 500; w_++) { int done_; pthread_mutex_lock(&(s)->lock); \
		done_ = (cond); pthread_mutex_unlock(&(s)->lock); if (done_) break; usleep(10000); } } while (0)

/* How many connections of server s got payload exactly once; those that got it twice or more. */
static int
count_once(Server *s, const char *payload, int *twice)
{
	int			once = 0;

	*twice = 0;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < NCONN; i++)
	{
		int			k = 0;

		for (int m = 0; m < s->ngot[i]; m++)
			k += strcmp(s->got[i][m], payload) == 0;
		once += k == 1;
		*twice += k > 1;
	}
	pthread_mutex_unlock(&s->lock);
	return once;
}

/* Has server s's connection conn received payload? */
static bool
got(Server *s, int conn, const char *payload)
{
	bool		found = false;

	pthread_mutex_lock(&s->lock);
	for (int m = 0; m < s->ngot[conn] && !found; m++)
		found = strcmp(s->got[conn][m], payload) == 0;
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* Both consumers have read the whole stream as it is now. */
static void
catch_up(PGconn *c)
{
	char		payload[64];

	snprintf(payload, sizeof(payload), "sync-%d", tests);
	sql(c, NULL, 0, "SELECT signalr_bp.send_connections('sim', 'Chat', '{hub-a-0,hub-b-0}', '%s')", payload);
	WAIT_FOR(&servers[0], servers[0].ngot[0] > 0 && strcmp(servers[0].got[0][servers[0].ngot[0] - 1], payload) == 0);
	WAIT_FOR(&servers[1], servers[1].ngot[0] > 0 && strcmp(servers[1].got[0][servers[1].ngot[0] - 1], payload) == 0);
}

static void
expect(PGconn *c, const char *payload, int want_a, int want_b)
{
	int			twice_a, twice_b, a, b;

	catch_up(c);
	a = count_once(&servers[0], payload, &twice_a);
	b = count_once(&servers[1], payload, &twice_b);
	ok(a == want_a && b == want_b && twice_a == 0 && twice_b == 0,
	   "\"%s\": hub-a %d/%d, hub-b %d/%d connections, duplicates %d", payload,
	   a, want_a, b, want_b, twice_a + twice_b);
}

static int
members_in_memory(Server *s, const char *group)
{
	int			n = 0;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < NCONN; i++)
		n += has_group(s, i, group);
	pthread_mutex_unlock(&s->lock);
	return n;
}

static const char *
result(Server *s, int i)
{
	static char copy[128];

	pthread_mutex_lock(&s->lock);
	snprintf(copy, sizeof(copy), "%s", i < s->nresults ? s->results[i] : "(none)");
	pthread_mutex_unlock(&s->lock);
	return copy;
}

int
main(int argc, char **argv)
{
	PGconn	   *a, *b, *q;
	char		err[256];
	Server	   *A = &servers[0];
	Server	   *B = &servers[1];

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s conninfo\n", argv[0]);
		return 2;
	}
	conninfo = argv[1];
	a = connect_db();
	b = connect_db();
	q = connect_db();			/* SQL: triggers, jobs, the DBA */
	sql(q, NULL, 0, "SELECT signalr_bp.drop_application('sim') FROM signalr_bp.application WHERE name = 'sim'");
	sql(q, NULL, 0, "SELECT signalr_bp.create_application('sim', server_ttl => '3 seconds')");
	printf("1..42\n");
	for (int i = 0; i < 2; i++)
	{
		Server	   *s = &servers[i];

		pthread_mutex_init(&s->lock, NULL);
		s->ops = connect_db();
		register_and_rebuild(s, i == 0 ? a : b);
		atomic_store(&s->answer_invocations, 1);
		pthread_create(&s->consumer, NULL, consume, s);
	}
	ok(strcmp(A->stream, "sim/$signalr") == 0 && strcmp(B->stream, A->stream) == 0,
	   "both servers consume the application stream %s", A->stream);
	ok(strcmp(sql(q, NULL, 0, "SELECT signalr_bp.connection_count('sim', 'Chat')"), "100") == 0,
	   "presence: 100 connections across both servers");

	/* groups: hub-b puts hub-a's even connections in "room" (remote), and its own first ten (local) */
	sql(b, NULL, 0, "SELECT count(signalr_bp.add_to_group('sim', 'Chat', 'hub-a-' || i, 'room', 'hub-b'))"
		" FROM generate_series(0, %d, 2) i", NCONN - 1);
	for (int i = 0; i < 10; i++)
		own_group_change(B, b, i, "room", true);
	/* SQL (no server) puts hub-b-20..24 in "sql-room" */
	sql(q, NULL, 0, "SELECT signalr_bp.add_to_groups('sim', 'Chat', ARRAY(SELECT 'hub-b-' || i FROM generate_series(20, 24) i),"
		" array_fill('sql-room'::text, ARRAY[5]))");
	/* and hub-b moves hub-a-1 in and out of "tmp" */
	sql(b, NULL, 0, "SELECT signalr_bp.add_to_group('sim', 'Chat', 'hub-a-1', 'tmp', 'hub-b'),"
		" signalr_bp.remove_from_group('sim', 'Chat', 'hub-a-1', 'tmp', 'hub-b')");
	catch_up(q);
	ok(strcmp(sql(q, NULL, 0, "SELECT count(*) FROM signalr_bp.group_connections('sim', 'Chat', 'room')"), "35") == 0,
	   "group changed from the other server is in the registry: 35 members");
	pthread_mutex_lock(&A->lock);
	pthread_mutex_lock(&B->lock);
	ok(A->joined == 26 && A->left == 1 && B->joined == 5 && B->left == 0,
	   "group changes by others are told to the holder: hub-a joined %d/26 left %d/1, hub-b joined %d/5 left %d/0",
	   A->joined, A->left, B->joined, B->left);
	pthread_mutex_unlock(&B->lock);
	pthread_mutex_unlock(&A->lock);
	ok(members_in_memory(A, "room") == 25 && members_in_memory(B, "room") == 10 &&
	   members_in_memory(B, "sql-room") == 5 && members_in_memory(A, "tmp") == 0,
	   "each holder's memory has its connections' groups: room %d/25 + %d/10, sql-room %d/5",
	   members_in_memory(A, "room"), members_in_memory(B, "room"), members_in_memory(B, "sql-room"));

	/* every send kind; each connection counts what it got */
	sql(a, NULL, 0, "SELECT signalr_bp.send_all('sim', 'Chat', 'all')");
	expect(q, "all", NCONN, NCONN);
	sql(a, NULL, 0, "SELECT signalr_bp.send_all('sim', 'Chat', 'all-except', ARRAY['hub-a-0', 'hub-b-1'])");
	expect(q, "all-except", NCONN - 1, NCONN - 1);
	sql(a, NULL, 0, "SELECT signalr_bp.send_all('sim', 'Other', 'other hub')");
	expect(q, "other hub", 0, 0);
	sql(a, NULL, 0, "SELECT signalr_bp.send_connection('sim', 'Chat', 'hub-b-7', 'one')");
	expect(q, "one", 0, 1);
	sql(a, NULL, 0, "SELECT signalr_bp.send_connections('sim', 'Chat', ARRAY['hub-a-3', 'hub-b-3', 'hub-b-4', 'nobody'], 'some')");
	expect(q, "some", 1, 2);
	sql(a, NULL, 0, "SELECT signalr_bp.send_group('sim', 'Chat', 'room', 'group')");
	expect(q, "group", 25, 10);
	sql(b, NULL, 0, "SELECT signalr_bp.send_group('sim', 'Chat', 'room', 'group-except', ARRAY['hub-a-0', 'hub-b-0'])");
	expect(q, "group-except", 24, 9);
	sql(b, NULL, 0, "SELECT signalr_bp.send_groups('sim', 'Chat', ARRAY['room', 'sql-room'], 'groups')");
	expect(q, "groups", 25, 15);
	sql(a, NULL, 0, "SELECT signalr_bp.send_user('sim', 'Chat', 'u3', 'user')");
	expect(q, "user", 2, 2);
	sql(a, NULL, 0, "SELECT signalr_bp.send_users('sim', 'Chat', ARRAY['u0', 'u24'], 'users')");
	expect(q, "users", 4, 4);
	sql(b, NULL, 0, "SELECT signalr_bp.send('sim', 'Chat', 'users {u0,u24} except {hub-a-0}', 'audience-users')");
	expect(q, "audience-users", 3, 4);
	sql(b, NULL, 0, "SELECT signalr_bp.send_batch('sim', 'Chat',"
		" ARRAY['groups {room} except {hub-b-0,hub-b-1,hub-b-2,hub-b-3,hub-b-4,hub-b-5,hub-b-6,hub-b-7,hub-b-8,hub-b-9}',"
		" 'connections {hub-b-9}']::signalr_bp.audience[], ARRAY['audience-batch', 'audience-batch']::bytea[])");
	expect(q, "audience-batch", 25, 1);
	sql(a, NULL, 0, "SELECT signalr_bp.send_batch('sim', 'Chat', ARRAY['user', 'group', 'all'],"
		" ARRAY['u5', 'sql-room', NULL], ARRAY['batch-user', 'batch-group', 'batch-all']::bytea[])");
	expect(q, "batch-user", 2, 2);
	expect(q, "batch-group", 0, 5);
	expect(q, "batch-all", NCONN, NCONN);
	/* a batch retried with its key (after a lost acknowledgement) is delivered once */
	for (int i = 0; i < 3; i++)
		sql(a, NULL, 0, "SELECT signalr_bp.send_batch('sim', 'Chat', ARRAY['all']::signalr_bp.audience[],"
			" ARRAY['keyed']::bytea[], '7f000000-0000-4000-8000-000000000001')");
	expect(q, "keyed", NCONN, NCONN);

	/* client results: hub-a invokes a method on hub-b-5; hub-b's client answers */
	sql(a, NULL, 0, "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-a', 'hub-b-5', 'hub-a-inv-1', 'question')");
	WAIT_FOR(A, A->nresults >= 1);
	ok(strcmp(result(A, 0), "result hub-a-inv-1: answer from hub-b-5 to question") == 0,
	   "client result across servers: %s", result(A, 0));
	ok(sql(a, err, sizeof(err), "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-a', 'nobody', 'hub-a-inv-2', 'x')") == NULL &&
	   strcmp(err, "SB004: Connection 'nobody' does not exist.") == 0,
	   "invoking an unknown connection fails at once: %s", err);
	atomic_store(&B->answer_invocations, 0);
	sql(a, NULL, 0, "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-a', 'hub-b-6', 'hub-a-inv-3', 'cancelled')");
	sql(a, NULL, 0, "SELECT signalr_bp.cancel_invocation('sim', 'hub-a-inv-3')");
	WAIT_FOR(B, B->cancels >= 1);
	ok(B->cancels == 1, "a cancelled invocation reaches the holder of the connection");
	atomic_store(&A->answer_invocations, 0);
	sql(b, NULL, 0, "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-b', 'hub-a-49', 'hub-b-inv-1', 'never answered')");
	sql(a, NULL, 0, "SELECT signalr_bp.disconnect('sim', 'hub-a-49')");
	WAIT_FOR(B, B->nresults >= 1);
	ok(strcmp(result(B, 0), "failed hub-b-inv-1: Connection 'hub-a-49' disconnected.") == 0,
	   "a disconnect fails the pending invocation at once: %s", result(B, 0));
	sql(a, NULL, 0, "SELECT signalr_bp.connect('sim', 'hub-a', 'Chat', 'hub-a-49', 'u24')");
	atomic_store(&A->answer_invocations, 1);
	atomic_store(&B->answer_invocations, 1);

	/*
	 * The registry is emptied, as a crash or a promotion empties the
	 * unlogged tables.  Sends committed before the servers notice still
	 * reach every server's connections; a group change from SQL for a
	 * connection the registry no longer knows is registered by its holder.
	 */
	sql(q, NULL, 0, "BEGIN");
	sql(q, NULL, 0, "CREATE TEMP TABLE sim_app ON COMMIT DROP AS SELECT id FROM signalr_bp.application WHERE name = 'sim'");
	sql(q, NULL, 0, "DELETE FROM signalr_bp.server WHERE app_id = (SELECT id FROM sim_app)");
	sql(q, NULL, 0, "DELETE FROM signalr_bp.connection WHERE app_id = (SELECT id FROM sim_app)");
	sql(q, NULL, 0, "DELETE FROM signalr_bp.group_member WHERE app_id = (SELECT id FROM sim_app)");
	sql(q, NULL, 0, "DELETE FROM signalr_bp.invocation WHERE app_id = (SELECT id FROM sim_app)");
	sql(q, NULL, 0, "DELETE FROM signalr_bp.connection_tally WHERE app_id = (SELECT id FROM sim_app)");
	sql(q, NULL, 0, "DELETE FROM signalr_bp.registry_alive WHERE app_id = (SELECT id FROM sim_app)");
	sql(q, NULL, 0, "COMMIT");
	ok(strcmp(sql(q, NULL, 0, "SELECT count(*) FROM signalr_bp.servers('sim')"), "0") == 0,
	   "the registry is empty");
	sql(q, NULL, 0, "SELECT signalr_bp.send_all('sim', 'Chat', 'empty-all')");
	sql(q, NULL, 0, "SELECT signalr_bp.send_group('sim', 'Chat', 'room', 'empty-group')");
	sql(q, NULL, 0, "SELECT signalr_bp.send_users('sim', 'Chat', ARRAY['u1', 'u2'], 'empty-users')");
	sql(q, NULL, 0, "SELECT signalr_bp.send_connections('sim', 'Chat', ARRAY['hub-a-8', 'hub-b-8'], 'empty-connections')");
	sql(a, NULL, 0, "SELECT signalr_bp.send_batch('sim', 'Chat', ARRAY['groups {sql-room}', 'all except {hub-b-2}']::signalr_bp.audience[],"
		" ARRAY['empty-batch-group', 'empty-batch-all']::bytea[], '7f000000-0000-4000-8000-000000000002')");
	sql(q, NULL, 0, "SELECT signalr_bp.add_to_group('sim', 'Chat', 'hub-a-3', 'late')");
	expect(q, "empty-all", NCONN, NCONN);
	expect(q, "empty-group", 25, 10);
	expect(q, "empty-users", 4, 4);
	expect(q, "empty-connections", 1, 1);
	expect(q, "empty-batch-group", 0, 5);
	expect(q, "empty-batch-all", NCONN, NCONN - 1);
	ok(heartbeat(A, a) && heartbeat(B, b), "both servers notice the lost registry at their heartbeat and rebuild it");
	catch_up(q);
	{
		char		late[64];
		char		count[32];
		char		room[32];

		snprintf(late, sizeof(late), "%s",
				 sql(q, NULL, 0, "SELECT string_agg(c, ',') FROM signalr_bp.group_connections('sim', 'Chat', 'late') c"));
		ok(A->unregistered == 1 && has_group(A, 3, "late") && strcmp(late, "hub-a-3") == 0,
		   "a group change made while the registry was empty reaches the holder (flagged unregistered: %d)"
		   " and is registered again: %s", A->unregistered, late);
		snprintf(count, sizeof(count), "%s", sql(q, NULL, 0, "SELECT signalr_bp.connection_count('sim', 'Chat')"));
		snprintf(room, sizeof(room), "%s",
				 sql(q, NULL, 0, "SELECT count(*) FROM signalr_bp.group_connections('sim', 'Chat', 'room')"));
		ok(strcmp(count, "100") == 0 && strcmp(room, "35") == 0,
		   "presence is back: %s connections, room %s members", count, room);
	}
	sql(q, NULL, 0, "SELECT signalr_bp.send_group('sim', 'Chat', 'late', 'late-group')");
	expect(q, "late-group", 1, 0);

	/* hub-b dies: it stops answering and heartbeating; hub-a keeps heartbeating */
	atomic_store(&B->answer_invocations, 0);
	sql(a, NULL, 0, "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-a', 'hub-b-6', 'hub-a-inv-4', 'never answered')");
	for (int i = 0; i < 80; i++)
	{
		heartbeat(A, a);
		pthread_mutex_lock(&A->lock);
		if (A->nresults >= 2)
			i = 80;
		pthread_mutex_unlock(&A->lock);
		usleep(100000);
	}
	ok(strncmp(result(A, 1), "failed hub-a-inv-4: Connection 'hub-b-6' was lost",
			   strlen("failed hub-a-inv-4: Connection 'hub-b-6' was lost")) == 0,
	   "a pending client result fails when its server is reaped: %s", result(A, 1));
	ok(strcmp(sql(q, NULL, 0, "SELECT signalr_bp.connection_count('sim', 'Chat')"), "50") == 0,
	   "the reaped server's connections left presence");
	/* a send while hub-b is gone: it reads it when it comes back */
	sql(a, NULL, 0, "SELECT signalr_bp.send_all('sim', 'Chat', 'while reaped')");
	ok(heartbeat(B, b), "the reaped server registers again at its next heartbeat");
	expect(q, "while reaped", NCONN, NCONN);
	ok(strcmp(sql(q, NULL, 0, "SELECT signalr_bp.connection_count('sim', 'Chat')"), "100") == 0,
	   "presence is back to 100 connections");

	for (int i = 0; i < 2; i++)
	{
		atomic_store(&servers[i].stop, 1);
		pthread_join(servers[i].consumer, NULL);
		PQfinish(servers[i].ops);
	}
	ok(got(B, 20, "groups") && !got(B, 19, "groups") && got(A, 0, "group") && !got(A, 1, "group"),
	   "spot check: the right connections got group sends");
	sql(q, NULL, 0, "SELECT signalr_bp.drop_application('sim')");
	PQfinish(a);
	PQfinish(b);
	PQfinish(q);
	printf("# %d tests, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
