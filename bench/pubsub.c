/*
 * pubsub.c: one publish, C consumers -- delivered rate and end-to-end latency
 * of Redis pub/sub, naive NOTIFY and signalr_bp, measured the same way.
 *
 * P producer threads publish 200-byte messages to one topic; C consumer
 * threads each receive every message.  Each message carries the time it was
 * due to be sent (not the time it was sent, so a stalled producer does not
 * hide latency) plus its producer and sequence number, so consumers measure
 * latency and count losses, duplicates and reordering per producer.
 *
 * With -r 0 producers run closed-loop at full speed (the maximum rate); with
 * -r R they offer R messages/s in total, sending every message that is due
 * in one round trip (at most -b), as a coalescing client does.
 *
 *   redis    PUBLISH, replies read after each pipelined batch; SUBSCRIBE
 *   notify   SELECT pg_notify(...), one message per transaction; LISTEN
 *   durable  signalr_bp.publish_batch on a durable stream; each consumer
 *   fast     long-polls signalr_bp.fetch_packed (a fast stream for "fast")
 *
 * usage: pubsub SYSTEM TARGET [-p producers] [-c consumers] [-r rate]
 *               [-t seconds] [-w warmup] [-b batch] [-s size]
 * TARGET: host:port for redis, a libpq connection string otherwise.
 * Prints one tab-separated line:
 *   system offered delivered_per_consumer p50_us p99_us max_us lost dup
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

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#define MAX_THREADS 64
#define TOPIC "bench"
#define FINE_US 10000			/* 1 us buckets below 10 ms */
#define COARSE_STEP 100			/* then 100 us buckets up to 10 s */
#define NBUCKETS (FINE_US + 10000000 / COARSE_STEP)

enum system
{
	SYS_REDIS, SYS_NOTIFY, SYS_DURABLE, SYS_FAST
};
static const char *const system_names[] = {"redis", "notify", "durable", "fast"};

static enum system sys;
static const char *target;
static int	nproducers = 8,
			nconsumers = 4,
			batch = 64,
			msg_size = 200;
static double rate,
			seconds = 5,
			warmup = 1;
static const char *stream_name;

static uint64_t t_begin,		/* producers start */
			t_window,			/* measurement starts */
			t_end;				/* producers stop */
static uint64_t published[MAX_THREADS];
static atomic_int producers_running;

typedef struct consumer
{
	pthread_t	thread;
	int			id;
	uint64_t	next_seq[MAX_THREADS];	/* per producer */
	uint64_t	gaps,
				dups,
				in_window;
	uint64_t	max_us;
	uint64_t   *hist;
	atomic_int	ready;
} consumer;

static consumer consumers[MAX_THREADS];

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_until(uint64_t t)
{
	struct timespec ts = {t / 1000000000, t % 1000000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "pubsub %s: %s: %s\n", system_names[sys], what, detail ? detail : "");
	exit(1);
}

/* payload: "due_ns:producer:seq:" padded with 'x' to msg_size bytes */
static int
format_message(char *buf, uint64_t due, int producer, uint64_t seq)
{
	int			n = snprintf(buf, msg_size + 1, "%" PRIu64 ":%d:%" PRIu64 ":", due, producer, seq);

	memset(buf + n, 'x', msg_size - n);
	buf[msg_size] = '\0';
	return msg_size;
}

static void
record(consumer *c, const char *msg, size_t len)
{
	uint64_t	now = now_ns();
	char	   *end;
	uint64_t	due;
	unsigned long producer;
	uint64_t	seq;

	if (len < 5)
		die("short message", msg);
	due = strtoull(msg, &end, 10);
	producer = strtoul(end + 1, &end, 10);
	seq = strtoull(end + 1, &end, 10);
	if (producer >= (unsigned long) nproducers)
		die("bad producer id", msg);

	if (seq == c->next_seq[producer])
		c->next_seq[producer]++;
	else if (seq > c->next_seq[producer])
	{
		c->gaps += seq - c->next_seq[producer];
		c->next_seq[producer] = seq + 1;
	}
	else
		c->dups++;

	if (now >= t_window && now < t_end)
		c->in_window++;
	if (due >= t_window && due < t_end)
	{
		uint64_t	us = now > due ? (now - due) / 1000 : 0;
		uint64_t	b = us < FINE_US ? us : FINE_US + (us - FINE_US) / COARSE_STEP;

		c->hist[b < NBUCKETS ? b : NBUCKETS - 1]++;
		if (us > c->max_us)
			c->max_us = us;
	}
}

static int
is_stop(const char *msg, size_t len)
{
	return len == 4 && memcmp(msg, "STOP", 4) == 0;
}

/* ---- connections ---- */

static redisContext *
redis_connect(void)
{
	char		host[256];
	const char *colon = strrchr(target, ':');
	redisContext *r;

	if (!colon || colon - target >= (long) sizeof(host))
		die("redis target must be host:port", target);
	memcpy(host, target, colon - target);
	host[colon - target] = '\0';
	r = redisConnect(host, atoi(colon + 1));
	if (!r || r->err)
		die("redis connect", r ? r->errstr : "out of memory");
	return r;
}

static PGconn *
pg_connect(void)
{
	PGconn	   *c = PQconnectdb(target);

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	return c;
}

static PGresult *
pg_exec(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(sql, PQerrorMessage(c));
	return r;
}

/* ---- consumers ---- */

static void
consume_redis(consumer *c)
{
	redisContext *r = redis_connect();
	redisReply *reply = redisCommand(r, "SUBSCRIBE " TOPIC);

	if (!reply)
		die("subscribe", r->errstr);
	freeReplyObject(reply);
	atomic_store(&c->ready, 1);
	for (;;)
	{
		if (redisGetReply(r, (void **) &reply) != REDIS_OK)
			die("redis read", r->errstr);
		if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3)
		{
			redisReply *m = reply->element[2];

			if (is_stop(m->str, m->len))
			{
				freeReplyObject(reply);
				break;
			}
			record(c, m->str, m->len);
		}
		freeReplyObject(reply);
	}
	redisFree(r);
}

static void
consume_notify(consumer *c)
{
	PGconn	   *pg = pg_connect();
	int			done = 0;

	PQclear(pg_exec(pg, "LISTEN " TOPIC));
	atomic_store(&c->ready, 1);
	while (!done)
	{
		struct pollfd pfd = {PQsocket(pg), POLLIN, 0};
		PGnotify   *n;

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			die("poll", strerror(errno));
		if (!PQconsumeInput(pg))
			die("consume", PQerrorMessage(pg));
		while ((n = PQnotifies(pg)) != NULL)
		{
			size_t		len = strlen(n->extra);

			if (is_stop(n->extra, len))
				done = 1;
			else
				record(c, n->extra, len);
			PQfreemem(n);
		}
	}
	PQfinish(pg);
}

static uint64_t
be64(const char *p)
{
	uint32_t	hi,
				lo;

	memcpy(&hi, p, 4);
	memcpy(&lo, p + 4, 4);
	return ((uint64_t) ntohl(hi) << 32) | ntohl(lo);
}

static uint32_t
be32(const char *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static uint64_t start_offset;

/* long-poll fetch_packed in binary: [int64 offset][int32 length][payload]... */
static void
consume_stream(consumer *c)
{
	PGconn	   *pg = pg_connect();
	uint64_t	next = start_offset;
	int			done = 0;

	if (!PQprepare(pg, "fetch",
				   "SELECT next_offset, message_count, messages"
				   " FROM signalr_bp.fetch_packed($1, $2, 1048576, 1000)", 2, NULL))
		die("prepare", PQerrorMessage(pg));
	atomic_store(&c->ready, 1);
	while (!done)
	{
		char		off[24];
		const char *values[2] = {stream_name, off};
		PGresult   *r;
		const char *p,
				   *end;

		snprintf(off, sizeof(off), "%" PRIu64, next);
		r = PQexecPrepared(pg, "fetch", 2, values, NULL, NULL, 1);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("fetch", PQerrorMessage(pg));
		next = be64(PQgetvalue(r, 0, 0));
		p = PQgetvalue(r, 0, 2);
		end = p + PQgetlength(r, 0, 2);
		while (p + 12 <= end)
		{
			uint32_t	len = be32(p + 8);

			if (is_stop(p + 12, len))
				done = 1;
			else
				record(c, p + 12, len);
			p += 12 + len;
		}
		PQclear(r);
	}
	PQfinish(pg);
}

static void *
consumer_main(void *arg)
{
	consumer   *c = arg;

	switch (sys)
	{
		case SYS_REDIS:
			consume_redis(c);
			break;
		case SYS_NOTIFY:
			consume_notify(c);
			break;
		default:
			consume_stream(c);
	}
	return NULL;
}

/* ---- producers ---- */

typedef struct producer
{
	pthread_t	thread;
	int			id;
	redisContext *redis;
	PGconn	   *pg;
	char	   *bufs;			/* batch * (msg_size + 1) */
	char	   *array;			/* binary bytea[] parameter */
} producer;

static producer producers[MAX_THREADS];

static void
send_redis(producer *p, int n)
{
	for (int i = 0; i < n; i++)
		redisAppendCommand(p->redis, "PUBLISH %s %b", TOPIC, p->bufs + i * (msg_size + 1), (size_t) msg_size);
	for (int i = 0; i < n; i++)
	{
		redisReply *reply;

		if (redisGetReply(p->redis, (void **) &reply) != REDIS_OK)
			die("publish", p->redis->errstr);
		freeReplyObject(reply);
	}
}

static void
send_notify(producer *p, int n)
{
	for (int i = 0; i < n; i++)
	{
		const char *values[1] = {p->bufs + i * (msg_size + 1)};
		PGresult   *r = PQexecPrepared(p->pg, "notify", 1, values, NULL, NULL, 0);

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			die("notify", PQerrorMessage(p->pg));
		PQclear(r);
	}
}

static void
put32(char **w, uint32_t v)
{
	v = htonl(v);
	memcpy(*w, &v, 4);
	*w += 4;
}

/* one publish_batch call, the payloads as a binary bytea[] */
static void
send_stream(producer *p, int n)
{
	char	   *w = p->array;
	const char *values[2] = {stream_name, p->array};
	int			lengths[2] = {0, 0};
	int			formats[2] = {0, 1};
	PGresult   *r;

	put32(&w, 1);				/* dimensions */
	put32(&w, 0);				/* no nulls */
	put32(&w, 17);				/* element type bytea */
	put32(&w, n);				/* length */
	put32(&w, 1);				/* lower bound */
	for (int i = 0; i < n; i++)
	{
		put32(&w, msg_size);
		memcpy(w, p->bufs + i * (msg_size + 1), msg_size);
		w += msg_size;
	}
	lengths[1] = w - p->array;
	r = PQexecPrepared(p->pg, "publish", 2, values, lengths, formats, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("publish_batch", PQerrorMessage(p->pg));
	PQclear(r);
}

static void
send_batch(producer *p, int n)
{
	switch (sys)
	{
		case SYS_REDIS:
			send_redis(p, n);
			break;
		case SYS_NOTIFY:
			send_notify(p, n);
			break;
		default:
			send_stream(p, n);
	}
}

static void *
producer_main(void *arg)
{
	producer   *p = arg;
	double		per_ns = rate > 0 ? rate / nproducers / 1e9 : 0;	/* messages per ns */
	uint64_t	seq = 0;

	sleep_until(t_begin);
	for (;;)
	{
		uint64_t	now = now_ns();
		uint64_t	due_count;
		int			n;

		if (now >= t_end)
			break;
		if (per_ns > 0)
		{
			due_count = (uint64_t) ((now - t_begin) * per_ns) + 1;
			if (due_count <= seq)
			{
				sleep_until(t_begin + (uint64_t) (seq / per_ns));
				continue;
			}
			n = due_count - seq > (uint64_t) batch ? batch : (int) (due_count - seq);
		}
		else
			n = batch;
		for (int i = 0; i < n; i++)
		{
			uint64_t	due = per_ns > 0 ? t_begin + (uint64_t) ((seq + i) / per_ns) : now;

			format_message(p->bufs + i * (msg_size + 1), due, p->id, seq + i);
		}
		send_batch(p, n);
		seq += n;
	}
	published[p->id] = seq;
	atomic_fetch_sub(&producers_running, 1);
	return NULL;
}

static void
producer_connect(producer *p)
{
	p->bufs = malloc((size_t) batch * (msg_size + 1));
	p->array = malloc(20 + (size_t) batch * (msg_size + 4));
	if (!p->bufs || !p->array)
		die("out of memory", NULL);
	if (sys == SYS_REDIS)
	{
		p->redis = redis_connect();
		return;
	}
	p->pg = pg_connect();
	if (sys == SYS_NOTIFY)
	{
		if (!PQprepare(p->pg, "notify", "SELECT pg_notify('" TOPIC "', $1)", 1, NULL))
			die("prepare", PQerrorMessage(p->pg));
	}
	else
	{
		Oid			types[2] = {25, 1001};	/* text, bytea[] */

		if (!PQprepare(p->pg, "publish", "SELECT signalr_bp.publish_batch($1, $2)", 2, types))
			die("prepare", PQerrorMessage(p->pg));
	}
}

/* after every producer finished: a last message that tells consumers to stop */
static void
publish_stop(void)
{
	if (sys == SYS_REDIS)
	{
		redisContext *r = redis_connect();

		freeReplyObject(redisCommand(r, "PUBLISH " TOPIC " STOP"));
		redisFree(r);
	}
	else
	{
		PGconn	   *pg = pg_connect();
		char		sql[200];

		if (sys == SYS_NOTIFY)
			snprintf(sql, sizeof(sql), "SELECT pg_notify('" TOPIC "', 'STOP')");
		else
			snprintf(sql, sizeof(sql), "SELECT signalr_bp.publish('%s', 'STOP')", stream_name);
		PQclear(pg_exec(pg, sql));
		PQfinish(pg);
	}
}

static void
prepare_stream(void)
{
	PGconn	   *pg = pg_connect();
	char		sql[300];
	PGresult   *r;

	PQclear(pg_exec(pg, "SELECT signalr_bp.create_application('bench')"
					" WHERE NOT EXISTS (SELECT FROM signalr_bp.application WHERE name = 'bench')"));
	snprintf(sql, sizeof(sql), "SELECT signalr_bp.create_stream('%s', %s, true)",
			 stream_name, sys == SYS_DURABLE ? "true" : "false");
	PQclear(pg_exec(pg, sql));
	snprintf(sql, sizeof(sql), "SELECT signalr_bp.head('%s')", stream_name);
	r = pg_exec(pg, sql);
	start_offset = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(pg);
}

static void *
watchdog(void *arg)
{
	(void) arg;
	sleep((unsigned) (seconds + warmup) + 60);
	die("consumers did not finish within 60 s after the producers", NULL);
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: pubsub redis|notify|durable|fast TARGET [-p producers] [-c consumers]"
			" [-r rate] [-t seconds] [-w warmup] [-b batch] [-s size]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int			opt;
	uint64_t	total_published = 0,
				lost = 0,
				dups = 0,
				delivered = 0,
				max_us = 0,
				count = 0;
	uint64_t   *hist;
	pthread_t	dog;
	double		p50 = 0,
				p99 = 0;

	if (argc < 3)
		usage();
	for (sys = SYS_REDIS; sys <= SYS_FAST; sys++)
		if (strcmp(argv[1], system_names[sys]) == 0)
			break;
	if (sys > SYS_FAST)
		usage();
	target = argv[2];
	optind = 3;
	while ((opt = getopt(argc, argv, "p:c:r:t:w:b:s:")) != -1)
	{
		switch (opt)
		{
			case 'p': nproducers = atoi(optarg); break;
			case 'c': nconsumers = atoi(optarg); break;
			case 'r': rate = atof(optarg); break;
			case 't': seconds = atof(optarg); break;
			case 'w': warmup = atof(optarg); break;
			case 'b': batch = atoi(optarg); break;
			case 's': msg_size = atoi(optarg); break;
			default: usage();
		}
	}
	if (nproducers < 1 || nproducers > MAX_THREADS || nconsumers < 1 || nconsumers > MAX_THREADS ||
		batch < 1 || msg_size < 64 || msg_size > 7900 || seconds <= 0 || warmup < 0 || rate < 0)
		usage();
	stream_name = sys == SYS_DURABLE ? "bench/durable" : "bench/fast";
	if (sys == SYS_DURABLE || sys == SYS_FAST)
		prepare_stream();

	for (int i = 0; i < nconsumers; i++)
	{
		consumers[i].id = i;
		consumers[i].hist = calloc(NBUCKETS, sizeof(uint64_t));
		if (!consumers[i].hist)
			die("out of memory", NULL);
		pthread_create(&consumers[i].thread, NULL, consumer_main, &consumers[i]);
	}
	for (int i = 0; i < nconsumers; i++)
		while (!atomic_load(&consumers[i].ready))
			usleep(1000);
	for (int i = 0; i < nproducers; i++)
	{
		producers[i].id = i;
		producer_connect(&producers[i]);
	}
	t_begin = now_ns() + 100000000;
	t_window = t_begin + (uint64_t) (warmup * 1e9);
	t_end = t_window + (uint64_t) (seconds * 1e9);
	atomic_store(&producers_running, nproducers);
	for (int i = 0; i < nproducers; i++)
		pthread_create(&producers[i].thread, NULL, producer_main, &producers[i]);
	for (int i = 0; i < nproducers; i++)
		pthread_join(producers[i].thread, NULL);
	publish_stop();
	pthread_create(&dog, NULL, watchdog, NULL);
	pthread_detach(dog);

	hist = calloc(NBUCKETS, sizeof(uint64_t));
	for (int i = 0; i < nproducers; i++)
		total_published += published[i];
	for (int i = 0; i < nconsumers; i++)
	{
		consumer   *c = &consumers[i];
		uint64_t	missing = c->gaps;

		pthread_join(c->thread, NULL);
		for (int p = 0; p < nproducers; p++)
			missing += published[p] > c->next_seq[p] ? published[p] - c->next_seq[p] : 0;
		lost += missing;
		dups += c->dups;
		delivered += c->in_window;
		if (c->max_us > max_us)
			max_us = c->max_us;
		for (int b = 0; b < NBUCKETS; b++)
		{
			hist[b] += c->hist[b];
			count += c->hist[b];
		}
	}
	/* percentiles from the merged histogram, in microseconds */
	{
		uint64_t	seen = 0;
		int			have50 = 0;

		for (int b = 0; b < NBUCKETS && count > 0; b++)
		{
			double		us = b < FINE_US ? b : FINE_US + (double) (b - FINE_US) * COARSE_STEP;

			seen += hist[b];
			if (!have50 && seen * 2 >= count)
			{
				p50 = us;
				have50 = 1;
			}
			if (seen * 100 >= count * 99)
			{
				p99 = us;
				break;
			}
		}
	}
	printf("%s\t%.0f\t%.0f\t%.0f\t%.0f\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n",
		   system_names[sys], rate, delivered / seconds / nconsumers, p50, p99, max_us, lost, dups);
	fprintf(stderr, "%s: published %" PRIu64 " in %.1f s\n", system_names[sys], total_published, seconds + warmup);
	return 0;
}
