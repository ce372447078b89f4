/*
 * hub_sim.c: two simulated SignalR hub servers on a real PostgreSQL.
 *
 * Each server registers, holds 50 connections and consumes its own stream
 * on a dedicated connection (long-poll fetch_packed), decoding envelopes and
 * recording what each local connection received.  The test then drives
 * every operation across servers -- group changes made by the other server,
 * every send kind, a client result answered by the remote server, a client
 * result whose target server dies -- and checks each connection received
 * exactly what it should.  Prints TAP; exits non-zero on failure.
 *
 * usage: hub_sim "connection string"
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libpq-fe.h>

#define NCONN 50
#define MAXMSG 64

static const char *conninfo;
static int	tests, failures;

typedef struct Server
{
	const char *name;
	char		stream[64];
	pthread_t	consumer;
	atomic_int	stop;
	atomic_int	answer_invocations;	/* reply to invoke envelopes */
	pthread_mutex_t lock;
	/* per local connection: the payloads received, in order */
	char		got[NCONN][MAXMSG][32];
	int			ngot[NCONN];
	/* results and failures of invocations this server made */
	char		results[16][96];
	int			nresults;
	long		envelopes;
	int			joined;			/* group changes other callers made to our connections */
	int			left;
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

/* Run SQL, return the first value (static buffer) or NULL on error (message in err). */
static const char *
sql(PGconn *c, char *err, size_t errlen, const char *fmt, ...)
{
	static char value[256];
	char		q[4096];
	va_list		ap;
	PGresult   *r;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		if (err)
			snprintf(err, errlen, "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
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

static int
local_index(const char *id)
{
	/* connection ids are "<server>-<n>" */
	const char *dash = strrchr(id, '-');

	return dash ? atoi(dash + 1) : -1;
}

/* Decode one envelope (format in src/signalr.c) and act as a hub server would. */
static void
handle(Server *s, PGconn *ops, const unsigned char *e, int len)
{
	int			kind = e[1];
	int			hublen = (e[2] << 8) | e[3];
	const unsigned char *p = e + 4 + hublen;
	uint32_t	n = get32(p);
	char		ids[8][128];
	char		payload[96];
	int			plen;
	char		mine[NCONN];

	p += 4;
	memset(mine, 0, sizeof(mine));
	for (uint32_t i = 0; i < n; i++)
	{
		int			l = (p[0] << 8) | p[1];
		char		id[128];

		snprintf(id, sizeof(id), "%.*s", l, p + 2);
		if (i < 8)
			snprintf(ids[i], sizeof(ids[i]), "%s", id);
		/* ids name connections anywhere (exclusions): keep this server's */
		if (kind <= 2 && strncmp(id, s->name, strlen(s->name)) == 0 &&
			local_index(id) >= 0 && local_index(id) < NCONN)
			mine[local_index(id)] = 1;
		p += 2 + l;
	}
	plen = (int) (e + len - p);
	snprintf(payload, sizeof(payload), "%.*s", plen, p);

	pthread_mutex_lock(&s->lock);
	s->envelopes++;
	if (kind == 1 || kind == 2)
	{
		/* 1: all local connections but the listed; 2: the listed ones */
		for (int i = 0; i < NCONN; i++)
			if ((kind == 1) != (mine[i] != 0) && s->ngot[i] < MAXMSG)
				snprintf(s->got[i][s->ngot[i]++], 32, "%s", payload);
	}
	else if (kind == 4 && s->nresults < 16)
		snprintf(s->results[s->nresults++], 96, "result %s: %s", ids[0], payload);
	else if (kind == 5 && s->nresults < 16)
		snprintf(s->results[s->nresults++], 96, "failed %s: %s", ids[0], ids[1]);
	else if (kind == 7)
		s->joined++;
	else if (kind == 8)
		s->left++;
	pthread_mutex_unlock(&s->lock);

	/* 3: our client "answers" the invocation */
	if (kind == 3 && atomic_load(&s->answer_invocations))
		sql(ops, NULL, 0, "SELECT signalr_bp.complete_invocation('sim', '%s', 'answer from %s to %s')",
			ids[1], ids[0], payload);
}

static void *
consume(void *arg)
{
	Server	   *s = arg;
	PGconn	   *c = connect_db();
	PGconn	   *ops = connect_db();
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
			/* a reaped server's stream is dropped: stop consuming */
			PQclear(r);
			break;
		}
		p = (const unsigned char *) PQgetvalue(r, 0, 1);
		len = PQgetlength(r, 0, 1);
		while (len >= 12)
		{
			uint32_t	mlen = get32(p + 8);

			next = (long) (((uint64_t) get32(p) << 32) | get32(p + 4)) + 1;
			handle(s, ops, p + 12, (int) mlen);
			p += 12 + mlen;
			len -= 12 + mlen;
		}
		PQclear(r);
	}
	PQfinish(ops);
	PQfinish(c);
	return NULL;
}

/* Wait until cond holds for server s (checked under its lock), up to 5 s. */
#define WAIT_FOR(s, cond) \
	do { for (int w_ = 0; w_ < 500; w_++) { int done_; pthread_mutex_lock(&(s)->lock); \
		done_ = (cond); pthread_mutex_unlock(&(s)->lock); if (done_) break; usleep(10000); } } while (0)

static int
received(Server *s, int conn, const char *payload)
{
	int			count = 0;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->ngot[conn]; i++)
		count += strcmp(s->got[conn][i], payload) == 0;
	pthread_mutex_unlock(&s->lock);
	return count;
}

/* How many connections of server s got payload exactly once, and none twice. */
static int
count_once(Server *s, const char *payload, int *twice)
{
	int			once = 0;

	*twice = 0;
	for (int i = 0; i < NCONN; i++)
	{
		int			k = received(s, i, payload);

		once += k == 1;
		*twice += k > 1;
	}
	return once;
}

static void
expect(const char *payload, int want_a, int want_b)
{
	int			twice_a, twice_b, a, b;

	usleep(300000);				/* let both consumers catch up */
	a = count_once(&servers[0], payload, &twice_a);
	b = count_once(&servers[1], payload, &twice_b);
	ok(a == want_a && b == want_b && twice_a == 0 && twice_b == 0,
	   "\"%s\": hub-a %d/%d, hub-b %d/%d connections, duplicates %d", payload,
	   a, want_a, b, want_b, twice_a + twice_b);
}

int
main(int argc, char **argv)
{
	PGconn	   *a, *b;
	char		err[256];

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s conninfo\n", argv[0]);
		return 2;
	}
	conninfo = argv[1];
	a = connect_db();
	b = connect_db();
	sql(a, NULL, 0, "SELECT signalr_bp.drop_application('sim') FROM signalr_bp.application WHERE name = 'sim'");
	sql(a, NULL, 0, "SELECT signalr_bp.create_application('sim', server_ttl => '3 seconds')");
	printf("1..16\n");
	for (int i = 0; i < 2; i++)
	{
		Server	   *s = &servers[i];
		PGconn	   *c = i == 0 ? a : b;

		pthread_mutex_init(&s->lock, NULL);
		snprintf(s->stream, sizeof(s->stream), "%s",
				 sql(c, NULL, 0, "SELECT stream FROM signalr_bp.register_server('sim', '%s')", s->name));
		/* connections <server>-0 .. -49; users u0..u24 shared across servers */
		sql(c, NULL, 0, "SELECT signalr_bp.connect_many('sim', '%s', 'Chat', array_agg('%s-' || i),"
			" array_agg('u' || (i / 2))) FROM generate_series(0, %d) i", s->name, s->name, NCONN - 1);
		atomic_store(&s->answer_invocations, 1);
		pthread_create(&s->consumer, NULL, consume, s);
	}
	ok(strcmp(sql(a, NULL, 0, "SELECT signalr_bp.connection_count('sim', 'Chat')"), "100") == 0,
	   "presence: 100 connections across both servers");

	/* hub-b puts hub-a's even connections, and its own first ten, in "room" */
	sql(b, NULL, 0, "SELECT count(signalr_bp.add_to_group('sim', 'Chat', 'hub-a-' || i, 'room', 'hub-b'))"
		" FROM generate_series(0, %d, 2) i", NCONN - 1);
	sql(b, NULL, 0, "SELECT count(signalr_bp.add_to_group('sim', 'Chat', 'hub-b-' || i, 'room', 'hub-b'))"
		" FROM generate_series(0, 9) i");
	ok(strcmp(sql(a, NULL, 0, "SELECT count(*) FROM signalr_bp.group_connections('sim', 'Chat', 'room')"), "35") == 0,
	   "group changed from the other server is visible: 35 members");
	/* hub-a is told of the 25 changes to its connections (to rebuild a lost registry), hub-b of none */
	sql(b, NULL, 0, "SELECT signalr_bp.add_to_group('sim', 'Chat', 'hub-a-1', 'tmp', 'hub-b'),"
		" signalr_bp.remove_from_group('sim', 'Chat', 'hub-a-1', 'tmp', 'hub-b')");
	usleep(300000);
	pthread_mutex_lock(&servers[0].lock);
	pthread_mutex_lock(&servers[1].lock);
	ok(servers[0].joined == 26 && servers[0].left == 1 && servers[1].joined == 0 && servers[1].left == 0,
	   "remote group changes are told to the holder: hub-a joined %d/26 left %d/1, hub-b %d/0 %d/0",
	   servers[0].joined, servers[0].left, servers[1].joined, servers[1].left);
	pthread_mutex_unlock(&servers[1].lock);
	pthread_mutex_unlock(&servers[0].lock);

	sql(a, NULL, 0, "SELECT signalr_bp.send_all('sim', 'Chat', 'all')");
	expect("all", NCONN, NCONN);
	sql(a, NULL, 0, "SELECT signalr_bp.send_all('sim', 'Chat', 'all-except', ARRAY['hub-a-0', 'hub-b-1'])");
	expect("all-except", NCONN - 1, NCONN - 1);
	sql(a, NULL, 0, "SELECT signalr_bp.send_connection('sim', 'Chat', 'hub-b-7', 'one')");
	expect("one", 0, 1);
	sql(a, NULL, 0, "SELECT signalr_bp.send_connections('sim', 'Chat', ARRAY['hub-a-3', 'hub-b-3', 'hub-b-4'], 'some')");
	expect("some", 1, 2);
	sql(a, NULL, 0, "SELECT signalr_bp.send_group('sim', 'Chat', 'room', 'group')");
	expect("group", 25, 10);
	sql(b, NULL, 0, "SELECT signalr_bp.send_group('sim', 'Chat', 'room', 'group-except', ARRAY['hub-a-0', 'hub-b-0'])");
	expect("group-except", 24, 9);
	sql(a, NULL, 0, "SELECT signalr_bp.send_users('sim', 'Chat', ARRAY['u0', 'u24'], 'users')");
	expect("users", 4, 4);
	/* the audience type: users u0 and u24 but one of their connections; room but hub-b's */
	sql(b, NULL, 0, "SELECT signalr_bp.send('sim', 'Chat', 'users {u0,u24} except {hub-a-0}', 'audience-users')");
	expect("audience-users", 3, 4);
	sql(b, NULL, 0, "SELECT signalr_bp.send_batch('sim', 'Chat',"
		" ARRAY['groups {room} except {hub-b-0,hub-b-1,hub-b-2,hub-b-3,hub-b-4,hub-b-5,hub-b-6,hub-b-7,hub-b-8,hub-b-9}',"
		" 'connections {hub-b-9}']::signalr_bp.audience[], ARRAY['audience-batch', 'audience-batch']::bytea[])");
	expect("audience-batch", 25, 1);

	/* client result: hub-a invokes a method on hub-b-5; hub-b's client answers */
	sql(a, NULL, 0, "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-a', 'hub-b-5', 'inv-1', 'question')");
	WAIT_FOR(&servers[0], servers[0].nresults >= 1);
	ok(servers[0].nresults == 1 &&
	   strcmp(servers[0].results[0], "result inv-1: answer from hub-b-5 to question") == 0,
	   "client result across servers: %s", servers[0].nresults ? servers[0].results[0] : "(none)");
	ok(sql(a, err, sizeof(err), "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-a', 'nobody', 'inv-2', 'x')") == NULL &&
	   strcmp(err, "Connection 'nobody' does not exist.") == 0,
	   "invoking an unknown connection fails with: %s", err);

	/* hub-b dies: it stops answering and heartbeating; hub-a keeps heartbeating */
	atomic_store(&servers[1].answer_invocations, 0);
	sql(a, NULL, 0, "SELECT signalr_bp.invoke('sim', 'Chat', 'hub-a', 'hub-b-6', 'inv-3', 'never answered')");
	for (int i = 0; i < 60; i++)
	{
		sql(a, NULL, 0, "SELECT signalr_bp.heartbeat('sim', 'hub-a')");
		pthread_mutex_lock(&servers[0].lock);
		if (servers[0].nresults >= 2)
			i = 60;
		pthread_mutex_unlock(&servers[0].lock);
		usleep(100000);
	}
	ok(servers[0].nresults == 2 && strncmp(servers[0].results[1], "failed inv-3: ", 14) == 0,
	   "pending client result fails when its server is reaped: %s",
	   servers[0].nresults >= 2 ? servers[0].results[1] : "(still waiting)");
	ok(strcmp(sql(a, NULL, 0, "SELECT signalr_bp.connection_count('sim', 'Chat')"), "50") == 0,
	   "the dead server's connections left presence");

	for (int i = 0; i < 2; i++)
	{
		atomic_store(&servers[i].stop, 1);
		pthread_join(servers[i].consumer, NULL);
	}
	sql(a, NULL, 0, "SELECT signalr_bp.drop_application('sim')");
	PQfinish(a);
	PQfinish(b);
	printf("# %d tests, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
