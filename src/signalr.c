/*
 * signalr.c: C helpers of the SignalR layer (its tables and functions are in
 * the install script): the envelope that carries a routed message to a hub
 * server's stream (who may use an application: applications.c).
 *
 * Envelope, version 1 (big-endian):
 *   uint8 version = 1, uint8 kind, uint16 hub length, hub bytes,
 *   uint32 id count, then per id: uint16 length, bytes; then the payload.
 * Kinds and their ids:
 *   1 all          excluded connection ids: every local connection of the hub but these
 *   2 connections  the local connection ids to deliver to
 *   3 invoke       [connection id, invocation id, invoking server]
 *   4 result       [invocation id]; payload: the completion message
 *   5 failed       [invocation id, error message]; no payload
 *   6 cancel       [connection id, invocation id]
 *   7 joined       [connection id, group]: another caller added the holder's connection
 *   8 left         [connection id, group]: another caller removed it
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_envelope);

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

static void
sbp_put_string(StringInfo buf, text *t, const char *what)
{
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len > PG_UINT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s is too long", what)));
	sbp_put16(buf, (uint16) len);
	appendBinaryStringInfo(buf, VARDATA_ANY(t), len);
}

/* _envelope(kind integer, hub text, ids text[], payload bytea) RETURNS bytea */
Datum
sbp_envelope(PG_FUNCTION_ARGS)
{
	int32		kind;
	text	   *hub;
	ArrayType  *ids;
	bytea	   *payload = PG_ARGISNULL(3) ? NULL : PG_GETARG_BYTEA_PP(3);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	StringInfoData buf;

	/* callers pass their arguments through: a NULL hub or id list is theirs */
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hub name must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("connection ids must not be null")));
	if (PG_ARGISNULL(0))
		elog(ERROR, "envelope kind must not be null");
	kind = PG_GETARG_INT32(0);
	hub = PG_GETARG_TEXT_PP(1);
	ids = PG_GETARG_ARRAYTYPE_P(2);
	if (kind < 1 || kind > 8)
		elog(ERROR, "unknown envelope kind %d", kind);
	deconstruct_array(ids, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);
	appendStringInfoChar(&buf, 1);
	appendStringInfoChar(&buf, (char) kind);
	sbp_put_string(&buf, hub, "hub name");
	sbp_put32(&buf, (uint32) n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("connection ids must not contain nulls")));
		sbp_put_string(&buf, DatumGetTextPP(elems[i]), "connection id");
	}
	if (payload)
		appendBinaryStringInfo(&buf, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload));
	SET_VARSIZE(buf.data, buf.len);
	PG_RETURN_BYTEA_P((bytea *) buf.data);
}
