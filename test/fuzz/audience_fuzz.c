/*
 * audience_fuzz.c: a seeded mutation fuzzer for the audience type's text and
 * binary input (src/audience.c), driving a real server through libpq.
 *
 * Inputs come from a corpus directory (*.txt: text form, *.bin: binary
 * form) and are mutated -- bytes flipped, set, inserted, deleted and
 * duplicated, tokens of the syntax inserted, runs around the name limits,
 * C0/C1/DEL and broken UTF-8 bytes, length and count fields of the binary
 * form set to edge values, inputs spliced -- then sent as a text parameter
 * cast to signalr_bp.audience (audience_in) or as a binary-format parameter
 * of that type (audience_recv).
 *
 * Each input must end in a clean SQLSTATE (never class XX or 58, never a lost
 * connection).  Each accepted input must round-trip: its text output parses
 * to the same text and binary, and its binary output read back as binary
 * gives the same text and binary.  An input whose outcome (SQLSTATE and
 * message with quoted values stripped, or the accepted value's shape) was
 * not seen before joins the in-memory corpus, and with -o is written out.
 *
 * usage: audience_fuzz "conninfo" corpus_dir [-n iterations] [-t seconds]
 *                      [-s seed] [-o new_inputs_dir]
 * Prints TAP lines and "N passed, N failed".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAXLEN 70000
#define Min(a, b) ((a) < (b) ? (a) : (b))
#define MAXCORPUS 4096
#define MAXSIGS 8192

typedef struct Input
{
	bool		binary;
	int			len;
	unsigned char *data;
} Input;

static Input corpus[MAXCORPUS];
static int	ncorpus;
static char *sigs[MAXSIGS];
static int	nsigs;

static PGconn *conn;
static const char *conninfo;
static const char *outdir;
static unsigned int audience_oid;
static uint64_t rng;
static long execs, accepted, text_execs, binary_execs;
static int	failures, roundtrip_failures, crashes;

/* xorshift64*: deterministic for a seed */
static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static int
rndn(int n)
{
	return n <= 0 ? 0 : (int) (rnd() % (uint64_t) n);
}

static void
connect_db(void)
{
	for (int i = 0; i < 120; i++)
	{
		conn = PQconnectdb(conninfo);
		if (PQstatus(conn) == CONNECTION_OK)
			return;
		PQfinish(conn);
		usleep(500000);
	}
	fprintf(stderr, "cannot connect: %s\n", conninfo);
	exit(2);
}

static void
add_input(bool binary, const unsigned char *data, int len)
{
	Input	   *in;

	if (ncorpus == MAXCORPUS || len > MAXLEN)
		return;
	in = &corpus[ncorpus++];
	in->binary = binary;
	in->len = len;
	in->data = malloc(len + 1);
	memcpy(in->data, data, len);
	in->data[len] = '\0';
}

static void
load_corpus(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
	{
		fprintf(stderr, "cannot open corpus %s\n", dir);
		exit(2);
	}
	/* sorted names: the same corpus gives the same run for a seed */
	{
		char	   *names[MAXCORPUS];
		int			n = 0;

		while ((e = readdir(d)) != NULL && n < MAXCORPUS)
			if (strstr(e->d_name, ".txt") || strstr(e->d_name, ".bin"))
				names[n++] = strdup(e->d_name);
		closedir(d);
		qsort(names, n, sizeof(char *), (int (*) (const void *, const void *)) strcmp);
		for (int i = 0; i < n; i++)
		{
			char		path[4096];
			unsigned char buf[MAXLEN];
			FILE	   *f;
			int			len;

			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			f = fopen(path, "rb");
			if (f == NULL)
				continue;
			len = (int) fread(buf, 1, sizeof(buf), f);
			fclose(f);
			add_input(strstr(names[i], ".bin") != NULL, buf, len);
			free(names[i]);
		}
	}
}

/* ---- mutations ---- */

static const char *const tokens[] = {
	"all", "connections", "groups", "users", "except", "ALL", "Except", "{", "}", ",", "\"",
	"\\", "\\\"", " ", "\t", "\n", "\r", "{}", "\"\"", "{\"\"}", "{,}", "except {}",
	"\x01", "\x1f", "\x7f", "\xc2\x80", "\xc2\x85", "\xc2\x9f", "\xef\xbb\xbf", "\xef\xbf\xbf",
	"\xf4\x8f\xbf\xbf", "\xe2\x80\xae", "\xc3", "\xff", "\xc0\xaf", "\xed\xa0\x80", "%s%n",
	"NULL", "'", "$$", "/", "$signalr",
};

/* lengths around the name limits (256 connection ids, 1024 groups and users) and uint16 */
static const int run_lengths[] = {255, 256, 257, 1023, 1024, 1025, 65535, 65536};

static const int32_t edge_ints[] = {
	0, 1, 2, -1, 255, 256, 257, 1024, 1025, 65535, 65536, 0x7fffffff, (int32_t) 0x80000000,
	0x7ffffffe, 1000000,
};

static void
insert_bytes(Input *in, int at, const unsigned char *b, int n)
{
	if (in->len + n > MAXLEN)
		return;
	in->data = realloc(in->data, in->len + n + 1);
	memmove(in->data + at + n, in->data + at, in->len - at);
	memcpy(in->data + at, b, n);
	in->len += n;
	in->data[in->len] = '\0';
}

static void
mutate_once(Input *in)
{
	int			pos = rndn(in->len + 1);

	switch (rndn(in->binary ? 11 : 9))
	{
		case 0:					/* flip a bit */
			if (in->len > 0)
				in->data[rndn(in->len)] ^= 1 << rndn(8);
			break;
		case 1:					/* set an interesting byte */
			if (in->len > 0)
			{
				static const unsigned char bytes[] = {0, 1, 0x1f, 0x20, 0x22, 0x2c, 0x5c, 0x7b,
				0x7d, 0x7f, 0x80, 0x85, 0x9f, 0xc2, 0xff};

				in->data[rndn(in->len)] = bytes[rndn(sizeof(bytes))];
			}
			break;
		case 2:					/* insert a token */
			{
				const char *t = tokens[rndn(sizeof(tokens) / sizeof(tokens[0]))];

				insert_bytes(in, pos, (const unsigned char *) t, (int) strlen(t));
			}
			break;
		case 3:					/* delete a range */
			if (in->len > 0)
			{
				int			at = rndn(in->len);
				int			n = 1 + rndn(Min(16, in->len - at));

				memmove(in->data + at, in->data + at + n, in->len - at - n);
				in->len -= n;
				in->data[in->len] = '\0';
			}
			break;
		case 4:					/* duplicate a range */
			if (in->len > 0)
			{
				int			at = rndn(in->len);
				int			n = 1 + rndn(Min(64, in->len - at));
				unsigned char *copy = malloc(n);

				memcpy(copy, in->data + at, n);
				insert_bytes(in, pos, copy, n);
				free(copy);
			}
			break;
		case 5:					/* a run of one character around a limit */
			{
				int			n = run_lengths[rndn(sizeof(run_lengths) / sizeof(run_lengths[0]))];
				unsigned char *run = malloc(n + 1);
				bool		two = rndn(2);	/* "é" (2 bytes): a character straddles the limit */

				for (int i = 0; i < n; i++)
					run[i] = two ? (i % 2 ? 0xa9 : 0xc3) : 'x';
				insert_bytes(in, pos, run, n);
				free(run);
			}
			break;
		case 6:					/* splice with another input of the same form */
			{
				Input	   *o = &corpus[rndn(ncorpus)];

				if (o->binary == in->binary && o->len > 0)
				{
					int			at = rndn(o->len);

					in->len = Min(pos, in->len);
					insert_bytes(in, in->len, o->data + at, o->len - at);
				}
			}
			break;
		case 7:					/* truncate */
			in->len = rndn(in->len + 1);
			in->data[in->len] = '\0';
			break;
		case 8:					/* a random byte anywhere */
			{
				unsigned char b = (unsigned char) rnd();

				insert_bytes(in, pos, &b, 1);
			}
			break;
		case 9:					/* binary: an int32 field (counts at 1 and 5, lengths after) */
		case 10:
			if (in->len >= 4)
			{
				int			at = rndn(4) == 0 ? 1 + 4 * rndn(2) : rndn(in->len - 3);
				uint32_t	v = htonl((uint32_t) edge_ints[rndn(sizeof(edge_ints) / sizeof(edge_ints[0]))]);

				if (at + 4 <= in->len)
					memcpy(in->data + at, &v, 4);
			}
			else if (in->len >= 1)
				in->data[0] = (unsigned char) rndn(7);
			break;
	}
}

/* ---- execution ---- */

/* Run one input; *text_out and *bin_out are set when it was accepted. */
static PGresult *
run(const unsigned char *data, int len, bool binary)
{
	const char *values[1] = {(const char *) data};
	int			lengths[1] = {len};
	int			formats[1] = {binary ? 1 : 0};
	Oid			types[1] = {binary ? audience_oid : 0};

	execs++;
	if (binary)
		binary_execs++;
	else
		text_execs++;
	return PQexecParams(conn,
						binary
						? "SELECT a::text, signalr_bp.audience_send(a) FROM (SELECT $1 AS a) s"
						: "SELECT a::text, signalr_bp.audience_send(a)"
						" FROM (SELECT $1::signalr_bp.audience AS a) s",
						1, types, values, lengths, formats, 0);
}

static void
print_input(const char *why, const Input *in)
{
	printf("#   %s (%s, %d bytes): ", why, in->binary ? "binary" : "text", in->len);
	for (int i = 0; i < in->len && i < 200; i++)
		printf("%02x", in->data[i]);
	printf("%s\n", in->len > 200 ? "..." : "");
	fflush(stdout);
}

static void
save_input(const Input *in, const char *prefix)
{
	char		path[4096];
	FILE	   *f;

	if (outdir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s-%08lx.%s", outdir, prefix, (unsigned long) (rnd() & 0xffffffff),
			 in->binary ? "bin" : "txt");
	f = fopen(path, "wb");
	if (f)
	{
		fwrite(in->data, 1, in->len, f);
		fclose(f);
	}
}

/* The outcome's shape: SQLSTATE and messages without quoted values, or the value's shape. */
static char *
signature(PGresult *r)
{
	char		sig[512] = "";

	if (PQresultStatus(r) == PGRES_TUPLES_OK)
	{
		const char *out = PQgetvalue(r, 0, 0);
		int			names = 0, quoted = 0;

		for (const char *p = out; *p; p++)
		{
			names += *p == ',' || *p == '{';
			quoted += *p == '"';
		}
		snprintf(sig, sizeof(sig), "ok %.*s %d %d %d", (int) strcspn(out, " "), out,
				 names > 8 ? 9 : names, quoted > 0, strstr(out, "except") != NULL);
	}
	else
	{
		const char *parts[3] = {PQresultErrorField(r, PG_DIAG_SQLSTATE),
			PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY),
		PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)};

		/* each part up to its first quoted value, digits left out */
		for (int i = 0; i < 3; i++)
		{
			int			len = (int) strlen(sig);

			for (const char *p = parts[i] ? parts[i] : ""; *p && *p != '"' && len < (int) sizeof(sig) - 2; p++)
				if (!(*p >= '0' && *p <= '9'))
					sig[len++] = *p;
			sig[len++] = '|';
			sig[len] = '\0';
		}
	}
	for (int i = 0; i < nsigs; i++)
		if (strcmp(sigs[i], sig) == 0)
			return NULL;
	if (nsigs == MAXSIGS)
		return NULL;
	return sigs[nsigs++] = strdup(sig);
}

/* An accepted value's outputs must read back, as text and as binary, to themselves. */
static bool
round_trips(PGresult *r)
{
	char	   *text = strdup(PQgetvalue(r, 0, 0));
	int			blen = PQgetlength(r, 0, 1);
	size_t		rawlen;
	unsigned char *raw = PQunescapeBytea((const unsigned char *) PQgetvalue(r, 0, 1), &rawlen);
	bool		ok = true;

	(void) blen;
	for (int form = 0; form < 2 && ok; form++)
	{
		PGresult   *r2 = form == 0 ? run((unsigned char *) text, (int) strlen(text), false)
			: run(raw, (int) rawlen, true);

		ok = PQresultStatus(r2) == PGRES_TUPLES_OK &&
			strcmp(PQgetvalue(r2, 0, 0), text) == 0 &&
			strcmp(PQgetvalue(r2, 0, 1), PQgetvalue(r, 0, 1)) == 0;
		PQclear(r2);
	}
	free(text);
	PQfreemem(raw);
	return ok;
}

static void
one(Input *in)
{
	PGresult   *r;
	const char *state;

	/* a text parameter is a C string: it ends at the first NUL */
	if (!in->binary)
		in->len = (int) strlen((char *) in->data);
	r = run(in->data, in->len, in->binary);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		crashes++;
		failures++;
		print_input("connection lost (backend crash?)", in);
		save_input(in, "crash");
		PQclear(r);
		PQfinish(conn);
		connect_db();
		return;
	}
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
		(state == NULL || strncmp(state, "XX", 2) == 0 || strncmp(state, "58", 2) == 0))
	{
		failures++;
		printf("#   %s %s\n", state ? state : "?????", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
		print_input("internal error", in);
		save_input(in, "internal");
	}
	else if (PQresultStatus(r) == PGRES_TUPLES_OK)
	{
		accepted++;
		if (!round_trips(r))
		{
			roundtrip_failures++;
			failures++;
			print_input("accepted but does not round-trip", in);
			save_input(in, "roundtrip");
		}
	}
	if (signature(r) != NULL)
	{
		add_input(in->binary, in->data, in->len);
		save_input(in, "new");
	}
	PQclear(r);
}

int
main(int argc, char **argv)
{
	long		iterations = -1;	/* -1: not given */
	int			seconds = 0;
	unsigned long seed = 1;
	int			seeds;
	time_t		start = time(NULL);
	PGresult   *r;
	int			opt;

	if (argc < 3)
	{
		fprintf(stderr, "usage: audience_fuzz \"conninfo\" corpus_dir [-n iterations] [-t seconds]"
				" [-s seed] [-o new_inputs_dir]\n");
		return 2;
	}
	conninfo = argv[1];
	load_corpus(argv[2]);
	optind = 3;
	while ((opt = getopt(argc, argv, "n:t:s:o:")) != -1)
	{
		if (opt == 'n')
			iterations = atol(optarg);
		else if (opt == 't')
			seconds = atoi(optarg);
		else if (opt == 's')
			seed = strtoul(optarg, NULL, 10);
		else if (opt == 'o')
			outdir = optarg;
	}
	if (iterations < 0 && seconds == 0)
		iterations = 20000;		/* -t alone: run for the time; -n 0: the corpus only */
	rng = seed * 0x9E3779B97F4A7C15ULL + 1;
	seeds = ncorpus;
	if (seeds == 0)
	{
		fprintf(stderr, "empty corpus\n");
		return 2;
	}
	connect_db();
	r = PQexec(conn, "SELECT 'signalr_bp.audience'::regtype::oid");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 2;
	}
	audience_oid = (unsigned int) strtoul(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);

	/* every seed as it is, then mutants */
	for (int i = 0; i < seeds; i++)
	{
		Input		in = corpus[i];

		in.data = malloc(in.len + 1);
		memcpy(in.data, corpus[i].data, in.len + 1);
		one(&in);
		free(in.data);
	}
	for (long it = 0; (iterations < 0 || it < iterations) &&
		 (seconds == 0 || time(NULL) - start < seconds); it++)
	{
		Input	   *src = &corpus[rndn(ncorpus)];
		Input		in = *src;
		int			n = 1 + rndn(4);

		in.data = malloc(in.len + 1);
		memcpy(in.data, src->data, in.len + 1);
		/* now and then the other form: a text seed's bytes as binary input and back */
		if (rndn(50) == 0)
			in.binary = !in.binary;
		for (int m = 0; m < n; m++)
			mutate_once(&in);
		one(&in);
		free(in.data);
	}

	printf("# %ld inputs (%ld text, %ld binary) in %ld s from %d seeds, seed %lu;"
		   " %ld accepted; %d outcomes seen; corpus now %d\n",
		   execs, text_execs, binary_execs, (long) (time(NULL) - start), seeds, seed,
		   accepted, nsigs, ncorpus);
	printf("%s 1 - no input ends in an internal error or a lost connection (%d crashes)\n",
		   failures - roundtrip_failures ? "not ok" : "ok", crashes);
	printf("%s 2 - every accepted input round-trips through text and binary output\n",
		   roundtrip_failures ? "not ok" : "ok");
	printf("1..2\n");
	printf("%d passed, %d failed\n", (failures - roundtrip_failures ? 0 : 1) + (roundtrip_failures ? 0 : 1),
		   (failures - roundtrip_failures ? 1 : 0) + (roundtrip_failures ? 1 : 0));
	PQfinish(conn);
	return failures ? 1 : 0;
}
