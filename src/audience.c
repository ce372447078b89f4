/*
 * audience.c: the audience base type -- who a message is for.
 *
 * An audience is a kind (all, connections, groups, users), the targets of
 * that kind (none for all) and excluded connection ids.  Text form:
 *
 *   all
 *   all except {c1,c2}
 *   connections {c1,c2}
 *   groups {"room 1",g2} except {c3}
 *   users {alice,bob}
 *
 * Names are bare words, or double-quoted with \" and \\ escapes when they
 * hold spaces, commas, braces, quotes or backslashes.  Names are stored
 * sorted and without duplicates, so equal audiences have equal bytes.
 *
 * `audience @> connection_ref` says whether a connection (its id, user and
 * groups) is in the audience; routing and replay filters use it.
 *
 * Storage (varlena): header, then per name (targets first, then excluded)
 * a uint16 length and the bytes, unaligned.  Binary I/O: uint8 kind, int32
 * target count, int32 excluded count, then per name int32 length and bytes.
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_audience_in);
PG_FUNCTION_INFO_V1(sbp_audience_out);
PG_FUNCTION_INFO_V1(sbp_audience_recv);
PG_FUNCTION_INFO_V1(sbp_audience_send);
PG_FUNCTION_INFO_V1(sbp_audience_all);
PG_FUNCTION_INFO_V1(sbp_audience_connections);
PG_FUNCTION_INFO_V1(sbp_audience_groups);
PG_FUNCTION_INFO_V1(sbp_audience_users);
PG_FUNCTION_INFO_V1(sbp_audience_kind);
PG_FUNCTION_INFO_V1(sbp_audience_targets);
PG_FUNCTION_INFO_V1(sbp_audience_excluded);
PG_FUNCTION_INFO_V1(sbp_audience_contains);
PG_FUNCTION_INFO_V1(sbp_audience_contained);
PG_FUNCTION_INFO_V1(sbp_audience_eq);
PG_FUNCTION_INFO_V1(sbp_audience_ne);

typedef enum SbpAudienceKind
{
	SBP_AUD_ALL = 1,
	SBP_AUD_CONNECTIONS = 2,
	SBP_AUD_GROUPS = 3,
	SBP_AUD_USERS = 4
} SbpAudienceKind;

static const char *const kind_names[] = {NULL, "all", "connections", "groups", "users"};

typedef struct SbpAudience
{
	int32		vl_len_;
	uint8		kind;
	uint8		reserved[3];
	int32		ntargets;
	int32		nexcluded;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} SbpAudience;

typedef struct SbpNames
{
	SbpName    *items;
	int			n;
	int			cap;
} SbpNames;

#define DatumGetAudienceP(d) ((SbpAudience *) PG_DETOAST_DATUM(d))
#define PG_GETARG_AUDIENCE_P(n) DatumGetAudienceP(PG_GETARG_DATUM(n))

static void
names_add(SbpNames *names, const char *s, int len)
{
	if (names->n == names->cap)
	{
		names->cap = names->cap ? names->cap * 2 : 8;
		names->items = names->items ? repalloc(names->items, names->cap * sizeof(SbpName))
			: palloc(names->cap * sizeof(SbpName));
	}
	names->items[names->n].s = s;
	names->items[names->n].len = len;
	names->n++;
}

static int
name_cmp(const void *a, const void *b)
{
	const SbpName *x = a;
	const SbpName *y = b;
	int			c = memcmp(x->s, y->s, Min(x->len, y->len));

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static const char *
what_of(SbpAudienceKind kind, bool excluded)
{
	if (excluded || kind == SBP_AUD_CONNECTIONS)
		return "connection id";
	return kind == SBP_AUD_GROUPS ? "group name" : "user id";
}

/* The registry's name rules (names.c), with messages that say where the name was. */
static void
check_name(const char *s, int len, const char *what, int max)
{
	sbp_check_name(s, len, psprintf("%s in an audience", what), max, 0);
}

/* Validate, sort and deduplicate; then lay out the varlena. */
static SbpAudience *
audience_build(SbpAudienceKind kind, SbpNames *targets, SbpNames *excluded)
{
	SbpNames   *lists[2] = {targets, excluded};
	Size		size = offsetof(SbpAudience, data);
	SbpAudience *a;
	char	   *p;
	int			counts[2];

	for (int l = 0; l < 2; l++)
	{
		SbpNames   *names = lists[l];
		int			max = (l == 1 || kind == SBP_AUD_CONNECTIONS) ? SBP_CONNECTION_ID_MAX
			: kind == SBP_AUD_GROUPS ? SBP_GROUP_NAME_MAX : SBP_USER_ID_MAX;
		int			kept = 0;

		for (int i = 0; i < names->n; i++)
			check_name(names->items[i].s, names->items[i].len, what_of(kind, l == 1), max);
		if (names->n > 1)
			qsort(names->items, names->n, sizeof(SbpName), name_cmp);
		for (int i = 0; i < names->n; i++)
		{
			if (kept > 0 && name_cmp(&names->items[kept - 1], &names->items[i]) == 0)
				continue;
			names->items[kept++] = names->items[i];
			size += sizeof(uint16) + names->items[i].len;
		}
		names->n = kept;
		counts[l] = kept;
	}
	if (size > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("audience is too large")));

	a = palloc0(size);
	SET_VARSIZE(a, size);
	a->kind = (uint8) kind;
	a->ntargets = counts[0];
	a->nexcluded = counts[1];
	p = a->data;
	for (int l = 0; l < 2; l++)
		for (int i = 0; i < lists[l]->n; i++)
		{
			uint16		len = (uint16) lists[l]->items[i].len;

			memcpy(p, &len, sizeof(len));
			memcpy(p + sizeof(len), lists[l]->items[i].s, len);
			p += sizeof(len) + len;
		}
	return a;
}

/* The stored names: first ntargets targets, then the excluded ones. */
static SbpName *
audience_names(const SbpAudience *a)
{
	int			n = a->ntargets + a->nexcluded;
	SbpName    *names = palloc(sizeof(SbpName) * Max(n, 1));
	const char *p = a->data;
	const char *end = (const char *) a + VARSIZE(a);

	for (int i = 0; i < n; i++)
	{
		uint16		len;

		if (p + sizeof(len) > end)
			elog(ERROR, "corrupt audience value");
		memcpy(&len, p, sizeof(len));
		if (p + sizeof(len) + len > end)
			elog(ERROR, "corrupt audience value");
		names[i].s = p + sizeof(len);
		names[i].len = len;
		p += sizeof(len) + len;
	}
	return names;
}

static bool
names_have(const SbpName *names, int n, const char *s, int len)
{
	SbpName		key = {s, len};

	return n > 0 && bsearch(&key, names, n, sizeof(SbpName), name_cmp) != NULL;
}

/* ---- text I/O ---- */

static void
skip_space(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static void
syntax_error(const char *input, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type audience: \"%s\"", input),
			 errdetail("%s", why),
			 errhint("Write all, connections {...}, groups {...} or users {...}, optionally followed by except {...}.")));
}

static bool
is_bare(char c)
{
	return c != '\0' && c != '{' && c != '}' && c != ',' && c != '"' && c != '\\' &&
		c != ' ' && c != '\t' && c != '\n' && c != '\r';
}

/* "{" [name {"," name}] "}" */
static void
parse_list(const char *input, const char **p, SbpNames *names)
{
	skip_space(p);
	if (**p != '{')
		syntax_error(input, "Expected \"{\".");
	(*p)++;
	skip_space(p);
	if (**p == '}')
	{
		(*p)++;
		return;
	}
	for (;;)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		skip_space(p);
		if (**p == '"')
		{
			(*p)++;
			while (**p != '"')
			{
				if (**p == '\0')
					syntax_error(input, "Unterminated quoted name.");
				if (**p == '\\' && (*p)[1] != '\0')
					(*p)++;
				appendStringInfoChar(&buf, **p);
				(*p)++;
			}
			(*p)++;
		}
		else
		{
			while (is_bare(**p))
				appendStringInfoChar(&buf, *(*p)++);
			if (buf.len == 0)
				syntax_error(input, "Expected a name.");
		}
		names_add(names, buf.data, buf.len);
		skip_space(p);
		if (**p == ',')
		{
			(*p)++;
			continue;
		}
		if (**p == '}')
		{
			(*p)++;
			return;
		}
		syntax_error(input, "Expected \",\" or \"}\".");
	}
}

Datum
sbp_audience_in(PG_FUNCTION_ARGS)
{
	const char *input = PG_GETARG_CSTRING(0);
	const char *p = input;
	SbpNames	targets = {0};
	SbpNames	excluded = {0};
	int			kind = 0;

	skip_space(&p);
	for (int k = SBP_AUD_ALL; k <= SBP_AUD_USERS; k++)
	{
		int			len = strlen(kind_names[k]);

		if (pg_strncasecmp(p, kind_names[k], len) == 0 && !isalpha((unsigned char) p[len]))
		{
			kind = k;
			p += len;
			break;
		}
	}
	if (kind == 0)
		syntax_error(input, "An audience starts with all, connections, groups or users.");
	if (kind != SBP_AUD_ALL)
		parse_list(input, &p, &targets);
	skip_space(&p);
	if (pg_strncasecmp(p, "except", 6) == 0)
	{
		p += 6;
		parse_list(input, &p, &excluded);
		skip_space(&p);
	}
	if (*p != '\0')
		syntax_error(input, kind == SBP_AUD_ALL && *p == '{'
					 ? "An audience of all has no target list; use except {...} to exclude connections."
					 : "Unexpected text after the audience.");
	PG_RETURN_POINTER(audience_build(kind, &targets, &excluded));
}

static void
append_name(StringInfo buf, const SbpName *name)
{
	bool		bare = name->len > 0;

	for (int i = 0; i < name->len && bare; i++)
		bare = is_bare(name->s[i]);
	if (bare)
	{
		appendBinaryStringInfo(buf, name->s, name->len);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (int i = 0; i < name->len; i++)
	{
		if (name->s[i] == '"' || name->s[i] == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, name->s[i]);
	}
	appendStringInfoChar(buf, '"');
}

static void
append_list(StringInfo buf, const SbpName *names, int n)
{
	appendStringInfoChar(buf, '{');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		append_name(buf, &names[i]);
	}
	appendStringInfoChar(buf, '}');
}

Datum
sbp_audience_out(PG_FUNCTION_ARGS)
{
	SbpAudience *a = PG_GETARG_AUDIENCE_P(0);
	SbpName    *names = audience_names(a);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, kind_names[a->kind]);
	if (a->kind != SBP_AUD_ALL)
	{
		appendStringInfoChar(&buf, ' ');
		append_list(&buf, names, a->ntargets);
	}
	if (a->nexcluded > 0)
	{
		appendStringInfoString(&buf, " except ");
		append_list(&buf, names + a->ntargets, a->nexcluded);
	}
	PG_RETURN_CSTRING(buf.data);
}

/* ---- binary I/O ---- */

Datum
sbp_audience_recv(PG_FUNCTION_ARGS)
{
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	int			kind = pq_getmsgbyte(msg);
	int			counts[2];
	SbpNames	lists[2] = {{0}, {0}};

	if (kind < SBP_AUD_ALL || kind > SBP_AUD_USERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid audience kind %d in binary input", kind)));
	counts[0] = pq_getmsgint(msg, 4);
	counts[1] = pq_getmsgint(msg, 4);
	if (counts[0] < 0 || counts[1] < 0 || (kind == SBP_AUD_ALL && counts[0] != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid audience name counts in binary input")));
	for (int l = 0; l < 2; l++)
		for (int i = 0; i < counts[l]; i++)
		{
			int			len = pq_getmsgint(msg, 4);

			if (len < 0 || len > msg->len - msg->cursor)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						 errmsg("invalid audience name length in binary input")));
			names_add(&lists[l], pq_getmsgbytes(msg, len), len);
		}
	PG_RETURN_POINTER(audience_build(kind, &lists[0], &lists[1]));
}

Datum
sbp_audience_send(PG_FUNCTION_ARGS)
{
	SbpAudience *a = PG_GETARG_AUDIENCE_P(0);
	SbpName    *names = audience_names(a);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, a->kind);
	pq_sendint32(&buf, a->ntargets);
	pq_sendint32(&buf, a->nexcluded);
	for (int i = 0; i < a->ntargets + a->nexcluded; i++)
	{
		pq_sendint32(&buf, names[i].len);
		pq_sendbytes(&buf, names[i].s, names[i].len);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ---- constructors and accessors ---- */

/* text[] argument n (NULL or absent: empty) into names; NULL elements are refused */
static void
names_from_array(FunctionCallInfo fcinfo, int n, const char *what, SbpNames *names)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			count;

	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return;
	arr = PG_GETARG_ARRAYTYPE_P(n);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
	for (int i = 0; i < count; i++)
	{
		text	   *t;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s in an audience must not be null", what)));
		t = DatumGetTextPP(elems[i]);
		names_add(names, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
}

static Datum
audience_make(FunctionCallInfo fcinfo, SbpAudienceKind kind)
{
	SbpNames	targets = {0};
	SbpNames	excluded = {0};
	int			excluded_arg = kind == SBP_AUD_ALL ? 0 : 1;

	if (kind != SBP_AUD_ALL)
	{
		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the targets of an audience must not be null")));
		names_from_array(fcinfo, 0, what_of(kind, false), &targets);
	}
	names_from_array(fcinfo, excluded_arg, "excluded connection id", &excluded);
	PG_RETURN_POINTER(audience_build(kind, &targets, &excluded));
}

/* An audience from text[] targets (NULL for all) and excluded ids (NULL: none), checked as the constructors check. */
Datum
sbp_audience_from_arrays(int kind, ArrayType *targets, ArrayType *excluded)
{
	SbpNames	lists[2] = {{0}, {0}};
	ArrayType  *arrays[2] = {targets, excluded};

	Assert(kind >= SBP_AUD_ALL && kind <= SBP_AUD_USERS);
	if (kind != SBP_AUD_ALL && targets == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the targets of an audience must not be null")));
	for (int l = kind == SBP_AUD_ALL ? 1 : 0; l < 2; l++)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			count;

		if (arrays[l] == NULL)
			continue;
		if (ARR_NDIM(arrays[l]) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("%ss must be a one-dimensional array", what_of(kind, l == 1))));
		deconstruct_array(arrays[l], TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
		for (int i = 0; i < count; i++)
		{
			text	   *t;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s in an audience must not be null", what_of(kind, l == 1))));
			t = DatumGetTextPP(elems[i]);
			names_add(&lists[l], VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
	}
	return PointerGetDatum(audience_build(kind, &lists[0], &lists[1]));
}

/* An audience's kind (1 all .. 4 users, as the envelope's kinds) and its names: targets, then excluded. */
void
sbp_audience_parts(Datum audience, int *kind, SbpName **names, int *ntargets, int *nexcluded)
{
	SbpAudience *a = DatumGetAudienceP(audience);

	if (a->kind < SBP_AUD_ALL || a->kind > SBP_AUD_USERS ||
		a->ntargets < 0 || a->nexcluded < 0)
		elog(ERROR, "corrupt audience value");
	*kind = a->kind;
	*names = audience_names(a);
	*ntargets = a->ntargets;
	*nexcluded = a->nexcluded;
}

Datum
sbp_audience_all(PG_FUNCTION_ARGS)
{
	return audience_make(fcinfo, SBP_AUD_ALL);
}

Datum
sbp_audience_connections(PG_FUNCTION_ARGS)
{
	return audience_make(fcinfo, SBP_AUD_CONNECTIONS);
}

Datum
sbp_audience_groups(PG_FUNCTION_ARGS)
{
	return audience_make(fcinfo, SBP_AUD_GROUPS);
}

Datum
sbp_audience_users(PG_FUNCTION_ARGS)
{
	return audience_make(fcinfo, SBP_AUD_USERS);
}

Datum
sbp_audience_kind(PG_FUNCTION_ARGS)
{
	SbpAudience *a = PG_GETARG_AUDIENCE_P(0);

	PG_RETURN_TEXT_P(cstring_to_text(kind_names[a->kind]));
}

static Datum
names_array(const SbpName *names, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = PointerGetDatum(cstring_to_text_with_len(names[i].s, names[i].len));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

Datum
sbp_audience_targets(PG_FUNCTION_ARGS)
{
	SbpAudience *a = PG_GETARG_AUDIENCE_P(0);

	PG_RETURN_DATUM(names_array(audience_names(a), a->ntargets));
}

Datum
sbp_audience_excluded(PG_FUNCTION_ARGS)
{
	SbpAudience *a = PG_GETARG_AUDIENCE_P(0);

	PG_RETURN_DATUM(names_array(audience_names(a) + a->ntargets, a->nexcluded));
}

/* ---- containment: is connection_ref (connection_id, user_id, groups) in the audience? ---- */

static bool
audience_includes(SbpAudience *a, HeapTupleHeader ref)
{
	SbpName    *names = audience_names(a);
	bool		isnull;
	Datum		d;
	text	   *id;

	d = GetAttributeByName(ref, "connection_id", &isnull);
	if (isnull)
		return false;
	id = DatumGetTextPP(d);
	if (names_have(names + a->ntargets, a->nexcluded, VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id)))
		return false;

	switch ((SbpAudienceKind) a->kind)
	{
		case SBP_AUD_ALL:
			return true;
		case SBP_AUD_CONNECTIONS:
			return names_have(names, a->ntargets, VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id));
		case SBP_AUD_USERS:
			{
				text	   *user;

				d = GetAttributeByName(ref, "user_id", &isnull);
				if (isnull)
					return false;
				user = DatumGetTextPP(d);
				return names_have(names, a->ntargets, VARDATA_ANY(user), VARSIZE_ANY_EXHDR(user));
			}
		case SBP_AUD_GROUPS:
			{
				Datum	   *elems;
				bool	   *nulls;
				int			n;

				d = GetAttributeByName(ref, "groups", &isnull);
				if (isnull)
					return false;
				deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &nulls, &n);
				for (int i = 0; i < n; i++)
				{
					text	   *g;

					if (nulls[i])
						continue;
					g = DatumGetTextPP(elems[i]);
					if (names_have(names, a->ntargets, VARDATA_ANY(g), VARSIZE_ANY_EXHDR(g)))
						return true;
				}
				return false;
			}
	}
	elog(ERROR, "corrupt audience value");
	return false;
}

Datum
sbp_audience_contains(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(audience_includes(PG_GETARG_AUDIENCE_P(0), PG_GETARG_HEAPTUPLEHEADER(1)));
}

Datum
sbp_audience_contained(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(audience_includes(PG_GETARG_AUDIENCE_P(1), PG_GETARG_HEAPTUPLEHEADER(0)));
}

/* Names are stored sorted and unique: equal audiences have equal bytes. */
static bool
audience_equal(SbpAudience *a, SbpAudience *b)
{
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

Datum
sbp_audience_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(audience_equal(PG_GETARG_AUDIENCE_P(0), PG_GETARG_AUDIENCE_P(1)));
}

Datum
sbp_audience_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!audience_equal(PG_GETARG_AUDIENCE_P(0), PG_GETARG_AUDIENCE_P(1)));
}
