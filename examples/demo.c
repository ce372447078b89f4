/*
 * demo.c: messages flowing through signalr_bp to two consumers, live.
 *
 * One producer publishes each message to two streams in batched
 * transactions.  Consumer A long-polls its durable stream with
 * fetch_packed(..., wait_ms); consumer B sleeps on LISTEN and fetches when
 * the background worker's batched NOTIFY arrives.  Every second it prints
 * what was published and received; at the end it checks that each consumer
 * got every message exactly once, in order.
 *
 * usage: demo "connection string" [seconds] [messages per second]
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libpq-fe.h>

static const char *conninfo;
static atomic_long published;
static atomic_long received[2];
static atomic_long wakeups;
static atomic_int stop;			/* main asks the producer to stop */
static atomic_int producer_done;	/* the producer's last commit is counted */
static atomic_int failed;

static PGconn *
connect_db(void)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void
exec_ok(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int	rate = 20000;

/* Producer: batches of 100 messages per transaction, paced to `rate`. */
static void *
producer(void *arg)
{
	PGconn	   *c = connect_db();
	double		start = now_s();
	long		seq = 0;

	(void) arg;
	while (!atomic_load(&stop))
	{
		char		sql[256];

		if (seq > (now_s() - start) * rate)
		{
			usleep(1000);
			continue;
		}
		snprintf(sql, sizeof(sql),
				 "SELECT signalr_bp.publish(ARRAY['demo/a', 'demo/b'],"
				 " convert_to('message ' || i, 'UTF8'))"
				 " FROM generate_series(%ld, %ld) i", seq, seq + 99);
		exec_ok(c, "BEGIN");
		exec_ok(c, sql);
		exec_ok(c, "COMMIT");
		seq += 100;
		atomic_store(&published, seq);
	}
	atomic_store(&producer_done, 1);
	PQfinish(c);
	return NULL;
}

/* Fetch what is there (waiting up to wait_ms) and check order; returns count. */
static long
fetch_batch(PGconn *c, const char *stream, long *next, int wait_ms)
{
	char		from[32], wait[32];
	const char *params[3] = {stream, from, wait};
	PGresult   *r;
	long		n = 0;
	const unsigned char *p;
	int			len;

	snprintf(from, sizeof(from), "%ld", *next);
	snprintf(wait, sizeof(wait), "%d", wait_ms);
	r = PQexecParams(c, "SELECT next_offset, message_count, messages"
					 " FROM signalr_bp.fetch_packed($1, $2, 1048576, $3)",
					 3, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "fetch: %s", PQerrorMessage(c));
		exit(1);
	}
	p = (const unsigned char *) PQgetvalue(r, 0, 2);
	len = PQgetlength(r, 0, 2);
	while (len >= 12)
	{
		uint32_t	hi, lo, mlen;
		long		offset;
		char		expect[64];

		memcpy(&hi, p, 4);
		memcpy(&lo, p + 4, 4);
		memcpy(&mlen, p + 8, 4);
		offset = ((long) ntohl(hi) << 32) | ntohl(lo);
		mlen = ntohl(mlen);
		snprintf(expect, sizeof(expect), "message %ld", offset);
		if (offset != *next || mlen != strlen(expect) || memcmp(p + 12, expect, mlen) != 0)
		{
			fprintf(stderr, "%s: expected offset %ld, got %ld\n", stream, *next, offset);
			atomic_store(&failed, 1);
		}
		*next = offset + 1;
		p += 12 + mlen;
		len -= 12 + mlen;
		n++;
	}
	PQclear(r);
	return n;
}

/* Consumer A: one long-poll statement at a time (works through PgBouncer too). */
static void *
consumer_longpoll(void *arg)
{
	PGconn	   *c = connect_db();
	long		next = 0;

	(void) arg;
	while (!atomic_load(&producer_done) || next < atomic_load(&published))
		atomic_fetch_add(&received[0], fetch_batch(c, "demo/a", &next, 200));
	PQfinish(c);
	return NULL;
}

/* Consumer B: LISTEN, and fetch when the worker's wake-up arrives. */
static void *
consumer_listen(void *arg)
{
	PGconn	   *c = connect_db();
	long		next = 0;
	PGresult   *r;
	char		sql[128];

	(void) arg;
	r = PQexec(c, "SELECT signalr_bp.channel('demo/b')");
	snprintf(sql, sizeof(sql), "LISTEN %s", PQgetvalue(r, 0, 0));
	PQclear(r);
	exec_ok(c, sql);
	/* catch up first: anything committed before LISTEN took effect */
	atomic_fetch_add(&received[1], fetch_batch(c, "demo/b", &next, 0));
	while (!atomic_load(&producer_done) || next < atomic_load(&published))
	{
		struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
		PGnotify   *n;
		int			got = 0;

		if (poll(&pfd, 1, 200) < 0 && errno != EINTR)
			break;
		PQconsumeInput(c);
		while ((n = PQnotifies(c)) != NULL)
		{
			got = 1;
			PQfreemem(n);
		}
		if (got)
			atomic_fetch_add(&wakeups, 1);
		/* once the producer is done, drain without waiting for another wake-up */
		if (got || atomic_load(&producer_done))
			atomic_fetch_add(&received[1], fetch_batch(c, "demo/b", &next, 0));
	}
	PQfinish(c);
	return NULL;
}

int
main(int argc, char **argv)
{
	int			seconds = argc > 2 ? atoi(argv[2]) : 10;
	pthread_t	t[3];
	PGconn	   *c;
	PGresult   *r;

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s conninfo [seconds] [messages per second]\n", argv[0]);
		return 2;
	}
	conninfo = argv[1];
	if (argc > 3)
		rate = atoi(argv[3]);

	c = connect_db();
	/* a fresh application "demo" (dropping one left by an earlier run) with two streams */
	exec_ok(c, "SELECT signalr_bp.drop_application(name) FROM signalr_bp.application WHERE name = 'demo'");
	exec_ok(c, "SELECT signalr_bp.create_application('demo')");
	exec_ok(c, "SELECT signalr_bp.create_stream('demo/a', durable => true),"
			" signalr_bp.create_stream('demo/b', durable => false)");

	printf("producer: %d msg/s, each to stream demo/a (durable) and demo/b (fast)\n", rate);
	printf("consumer A long-polls demo/a; consumer B LISTENs for demo/b's batched wake-ups\n\n");
	printf("%4s %12s %12s %12s %10s\n", "sec", "published", "A received", "B received", "B wakeups");
	pthread_create(&t[0], NULL, consumer_longpoll, NULL);
	pthread_create(&t[1], NULL, consumer_listen, NULL);
	pthread_create(&t[2], NULL, producer, NULL);
	for (int s = 1; s <= seconds; s++)
	{
		sleep(1);
		printf("%4d %12ld %12ld %12ld %10ld\n", s, atomic_load(&published),
			   atomic_load(&received[0]), atomic_load(&received[1]), atomic_load(&wakeups));
		fflush(stdout);
	}
	atomic_store(&stop, 1);
	for (int i = 2; i >= 0; i--)
		pthread_join(t[i], NULL);

	printf("\nfinal: published %ld, A received %ld, B received %ld (B woken %ld times)\n",
		   atomic_load(&published), atomic_load(&received[0]), atomic_load(&received[1]),
		   atomic_load(&wakeups));
	r = PQexec(c, "SELECT name, durable, head, messages, commits, wakeups, fetches"
			   " FROM signalr_bp.streams WHERE name IN ('demo/a', 'demo/b') ORDER BY name");
	printf("\nSELECT ... FROM signalr_bp.streams:\n%-8s %-8s %10s %10s %8s %8s %8s\n",
		   "name", "durable", "head", "messages", "commits", "wakeups", "fetches");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%-8s %-8s %10s %10s %8s %8s %8s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
			   PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
			   PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
	PQclear(r);
	PQfinish(c);
	if (atomic_load(&failed) || atomic_load(&received[0]) != atomic_load(&published) ||
		atomic_load(&received[1]) != atomic_load(&published))
	{
		printf("\nFAIL: a consumer missed or misordered messages\n");
		return 1;
	}
	printf("\nOK: both consumers received every message exactly once, in commit order\n");
	return 0;
}
