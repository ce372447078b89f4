/*
 * signalr.c: the SignalR layer's C core (its tables and SQL functions are
 * in sql/install/45_app_stream.sql to 95_presence.sql; the sends in
 * sends.c; who may use an application: applications.c): the envelope that
 * every message of an application stream carries, and its append.
 *
 * Every send, group change by a non-holder, client-result step and failure
 * appends one envelope to the application's stream, "<application>/$signalr".
 * Every hub server of the application reads the whole stream from its own
 * offset and acts on what concerns the connections it holds.
 *
 * Envelope, version 2 (all integers big-endian):
 *
 *   uint8  version = 2
 *   uint8  kind
 *   uint8  flags          bit 0 KEYED: a 16-byte batch key follows
 *                         bit 1 UNREGISTERED (joined only)
 *   [16 bytes batch key]  if KEYED
 *   uint16 hub length, hub bytes (empty for result and failed)
 *   uint32 n1, then n1 x (uint16 length, bytes)     list 1
 *   uint32 n2, then n2 x (uint16 length, bytes)     list 2
 *   payload: the rest
 *
 *   kind            list 1                                      list 2    payload
 *   1 all           -                                           excluded  message
 *   2 connections   connection ids                              excluded  message
 *   3 groups        group names                                 excluded  message
 *   4 users         user ids                                    excluded  message
 *   5 invoke        [connection id, invocation id, invoking server]  -    message
 *   6 result        [invocation id]                             -         completion
 *   7 failed        [invocation id, error text]                 -         -
 *   8 cancel        [connection id, invocation id]              -         -
 *   9 joined        [connection id, group]                      -         -
 *   10 left         [connection id, group]                      -         -
 *
 * Locking: none of its own.  Appends go through the transactional publish
 * path (publish.c), which takes the application stream's commit lock at
 * pre-commit like any publish.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_signalr_append_sql);
PG_FUNCTION_INFO_V1(sbp_envelope);

static SPIPlanPtr sbp_app_by_id = NULL;

/*
 * Resolve an application by name for a role (the same error for one that
 * does not exist and one the role may not use): its id and stream.
 */
void
sbp_resolve_app(text *name, Oid user, SbpApp *app)
{
	char	   *s = sbp_application_name_arg(name);
	SbpApplication found;

	sbp_lookup_application(s, user, false, &found);
	app->id = found.id;
	app->owner = found.owner;
	app->stream = psprintf("%s/%s", s, SBP_SIGNALR_STREAM);
}

/* Resolve an application by id, for internal callers that checked access already. */
static void
sbp_resolve_app_id(int32 id, SbpApp *app)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(id);
	Oid			saved_user;
	int			saved_sec;
	int			rc;
	char	   *name = NULL;

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (sbp_app_by_id == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT name, owner FROM signalr_bp.application"
									" WHERE id OPERATOR(pg_catalog.=) $1", 1, &argtype);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the application lookup: %s",
				 SPI_result_code_string(SPI_result));
		sbp_app_by_id = p;
	}
	rc = SPI_execute_plan(sbp_app_by_id, &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "application lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		bool		isnull;

		name = MemoryContextStrdup(CurrentMemoryContext,
								   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		app->owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
	if (name == NULL)
		elog(ERROR, "application %d does not exist", id);
	app->id = id;
	app->stream = psprintf("%s/%s", name, SBP_SIGNALR_STREAM);
}

static void
sbp_put16(StringInfo buf, uint16 v)
{
	v = pg_hton16(v);
	appendBinaryStringInfo(buf, (char *) &v, 2);
}

static void
sbp_put32(StringInfo buf, uint32 v)
{
	v = pg_hton32(v);
	appendBinaryStringInfo(buf, (char *) &v, 4);
}

/* Start an envelope in buf (room for a varlena header first): version, kind, flags, key, hub. */
void
sbp_envelope_start(StringInfo buf, int kind, int flags, const uint8 *key,
				   const char *hub, int hublen)
{
	Assert(kind >= SBP_ENV_ALL && kind <= SBP_ENV_LEFT);
	Assert(hublen <= PG_UINT16_MAX);
	initStringInfo(buf);
	appendStringInfoSpaces(buf, VARHDRSZ);
	appendStringInfoChar(buf, 2);
	appendStringInfoChar(buf, (char) kind);
	if (key)
		flags |= SBP_ENV_KEYED;
	appendStringInfoChar(buf, (char) flags);
	if (key)
		appendBinaryStringInfo(buf, (const char *) key, UUID_LEN);
	sbp_put16(buf, (uint16) hublen);
	appendBinaryStringInfo(buf, hub, hublen);
}

/* Append a list of names (every name was checked: at most 1024 bytes). */
void
sbp_envelope_list(StringInfo buf, const SbpName *names, int n)
{
	sbp_put32(buf, (uint32) n);
	for (int i = 0; i < n; i++)
	{
		if (names[i].len > PG_UINT16_MAX)
			elog(ERROR, "envelope name of %d bytes", names[i].len);
		sbp_put16(buf, (uint16) names[i].len);
		appendBinaryStringInfo(buf, names[i].s, names[i].len);
	}
}

/* Append the payload and set the varlena header: buf->data is the envelope as a bytea. */
void
sbp_envelope_finish(StringInfo buf, const char *payload, int len)
{
	if (len > 0)
		appendBinaryStringInfo(buf, payload, len);
	SET_VARSIZE(buf->data, buf->len);
}

/*
 * Append a finished envelope to the application's stream, in the current
 * transaction.  The stream is reserved to the extension: the caller's access
 * to the application was checked, so append as the extension's owner.
 */
void
sbp_signalr_append(SbpApp *app, StringInfo envelope)
{
	Oid			saved_user;
	int			saved_sec;

	sbp_enter_owner(&saved_user, &saved_sec);
	sbp_publish_internal(app->stream, (bytea *) envelope->data);
	sbp_leave_owner(saved_user, saved_sec);
}

/* text[] argument as names (NULL: none); NULL elements are refused. */
static SbpName *
sbp_names_arg(FunctionCallInfo fcinfo, int argno, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	SbpName    *names;

	*n = 0;
	if (PG_ARGISNULL(argno))
		return NULL;
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(argno), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, n);
	names = palloc(sizeof(SbpName) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		text	   *t;

		if (nulls[i])
			elog(ERROR, "null name in an envelope list");
		t = DatumGetTextPP(elems[i]);
		names[i].s = VARDATA_ANY(t);
		names[i].len = VARSIZE_ANY_EXHDR(t);
	}
	return names;
}

/*
 * _append(app_id integer, kind integer, hub text, list1 text[], list2 text[],
 *         payload bytea, flags integer) RETURNS void
 *
 * For the registry's SQL functions (which checked the caller's access):
 * append one envelope to the application's stream.  Not granted to anyone.
 */
Datum
sbp_signalr_append_sql(PG_FUNCTION_ARGS)
{
	int32		kind;
	text	   *hub;
	SbpName    *lists[2];
	int			counts[2];
	SbpApp		app;
	StringInfoData buf;

	sbp_guard();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "_append needs an application and a kind");
	kind = PG_GETARG_INT32(1);
	if (kind < SBP_ENV_ALL || kind > SBP_ENV_LEFT)
		elog(ERROR, "unknown envelope kind %d", kind);
	hub = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	lists[0] = sbp_names_arg(fcinfo, 3, &counts[0]);
	lists[1] = sbp_names_arg(fcinfo, 4, &counts[1]);
	sbp_resolve_app_id(PG_GETARG_INT32(0), &app);

	sbp_envelope_start(&buf, kind, PG_ARGISNULL(6) ? 0 : PG_GETARG_INT32(6), NULL,
					   hub ? VARDATA_ANY(hub) : "", hub ? VARSIZE_ANY_EXHDR(hub) : 0);
	sbp_envelope_list(&buf, lists[0], counts[0]);
	sbp_envelope_list(&buf, lists[1], counts[1]);
	if (PG_ARGISNULL(5))
		sbp_envelope_finish(&buf, NULL, 0);
	else
	{
		bytea	   *payload = PG_GETARG_BYTEA_PP(5);

		sbp_check_payload(payload);
		sbp_envelope_finish(&buf, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload));
	}
	sbp_signalr_append(&app, &buf);
	PG_RETURN_VOID();
}

/*
 * _envelope(kind integer, hub text, ids text[], payload bytea) RETURNS bytea
 * of version 0.1.0, whose per-server envelope is gone.  The symbol stays so
 * that the released 0.1.0 script still installs with this library (CREATE
 * EXTENSION signalr_bp VERSION '0.1.0', then ALTER EXTENSION UPDATE); the
 * guard refuses a call made through 0.1.0's objects.
 */
Datum
sbp_envelope(PG_FUNCTION_ARGS)
{
	sbp_guard();
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("the envelope format of signalr_bp 0.1.0 is no longer supported"),
			 errhint("Run ALTER EXTENSION signalr_bp UPDATE.")));
	PG_RETURN_NULL();
}
