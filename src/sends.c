/*
 * sends.c: the SignalR sends (send_all, send_connections, send_groups,
 * send_users and their single-target forms, send to an audience, and
 * send_batch).
 *
 * A send appends one envelope (format in signalr.c) to its application's
 * stream and reads nothing of the registry: every hub server reads the
 * whole stream and delivers to the matching connections it holds.  So a
 * broadcast costs one append whatever the number of servers, a send is
 * never routed to nobody because the registry is being rebuilt, and one
 * sender's sends stay in order for every receiver.
 *
 * send_batch with a batch key records (application, key) in the logged
 * table signalr_bp.sent_batch in the same transaction; a retried batch
 * whose key is there appends nothing and returns 0.  A concurrent attempt
 * with the same key waits for the first one's transaction (a lock on the
 * key), so exactly one applies.  Only the batch's last envelope carries the
 * key: the batch commits whole or not at all, so a reader that sees the key
 * has seen the batch.
 *
 * Locking: the key claim takes a transaction-level advisory-style lock on
 * (application, hash of the key) and RowExclusiveLock on sent_batch;
 * appends take the stream's commit lock at pre-commit.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "signalr_bp.h"

/* field4 of the advisory-style LOCKTAG of a batch key ('SC'; a stream's commit lock is 'SB') */
#define SBP_LOCKTAG_KEY_FIELD4 0x5343

PG_FUNCTION_INFO_V1(sbp_send_all);
PG_FUNCTION_INFO_V1(sbp_send_connection);
PG_FUNCTION_INFO_V1(sbp_send_connections);
PG_FUNCTION_INFO_V1(sbp_send_group);
PG_FUNCTION_INFO_V1(sbp_send_groups);
PG_FUNCTION_INFO_V1(sbp_send_user);
PG_FUNCTION_INFO_V1(sbp_send_users);
PG_FUNCTION_INFO_V1(sbp_send_audience);
PG_FUNCTION_INFO_V1(sbp_send_batch_audiences);
PG_FUNCTION_INFO_V1(sbp_send_batch_kinds);

/* One send's context: the application, the stream it appends to, the hub. */
typedef struct SbpSend
{
	SbpApp		app;
	const char *hub;
	int			hublen;
} SbpSend;

/* Arguments 0 (application) and 1 (hub) of every send: checked and resolved. */
static void
sbp_send_begin(FunctionCallInfo fcinfo, SbpSend *send)
{
	text	   *hub;

	sbp_guard();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("application name must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hub name must not be null")));
	hub = PG_GETARG_TEXT_PP(1);
	send->hub = VARDATA_ANY(hub);
	send->hublen = VARSIZE_ANY_EXHDR(hub);
	sbp_check_name(send->hub, send->hublen, "hub name", SBP_HUB_NAME_MAX, 0);
	PreventCommandIfReadOnly("signalr_bp.send()");
	sbp_resolve_app(PG_GETARG_TEXT_PP(0), GetUserId(), &send->app);
}

/* A message payload: not NULL, within signalr_bp.max_message_size. */
static bytea *
sbp_payload(Datum d, bool isnull)
{
	bytea	   *payload;
	Size		len;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message payload must not be null")));
	payload = DatumGetByteaPP(d);
	len = VARSIZE_ANY_EXHDR(payload);
	if (len > (Size) sbp_max_message_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("message payload is too large"),
				 errdetail("The payload has %zu bytes; signalr_bp.max_message_size is %d.",
						   len, sbp_max_message_size)));
	return payload;
}

/* Append one message envelope: kind 1-4, the audience's names, the payload. */
static void
sbp_send_one(SbpSend *send, int kind, const SbpName *names, int ntargets, int nexcluded,
			 bytea *payload, const uint8 *key)
{
	StringInfoData buf;

	sbp_envelope_start(&buf, kind, 0, key, send->hub, send->hublen);
	sbp_envelope_list(&buf, names, ntargets);
	sbp_envelope_list(&buf, names + ntargets, nexcluded);
	sbp_envelope_finish(&buf, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload));
	sbp_signalr_append(&send->app, &buf);
	pfree(buf.data);
}

/* Send to an audience value. */
static void
sbp_send_audience_value(SbpSend *send, Datum audience, bytea *payload, const uint8 *key)
{
	int			kind;
	SbpName    *names;
	int			ntargets;
	int			nexcluded;

	sbp_audience_parts(audience, &kind, &names, &ntargets, &nexcluded);
	sbp_send_one(send, kind, names, ntargets, nexcluded, payload, key);
}

/* Sends whose targets are a text[] (or one text, or none) and excluded ids (or none). */
static Datum
sbp_send_lists(FunctionCallInfo fcinfo, int kind, int target_arg, bool single,
			   int payload_arg, int excluded_arg)
{
	SbpSend		send;
	bytea	   *payload;
	ArrayType  *targets = NULL;
	ArrayType  *excluded = NULL;

	sbp_send_begin(fcinfo, &send);
	payload = sbp_payload(PG_GETARG_DATUM(payload_arg), PG_ARGISNULL(payload_arg));
	if (target_arg >= 0 && !PG_ARGISNULL(target_arg))
	{
		if (single)
		{
			Datum		one = PG_GETARG_DATUM(target_arg);

			targets = construct_array(&one, 1, TEXTOID, -1, false, TYPALIGN_INT);
		}
		else
			targets = PG_GETARG_ARRAYTYPE_P(target_arg);
	}
	if (excluded_arg >= 0 && excluded_arg < PG_NARGS() && !PG_ARGISNULL(excluded_arg))
		excluded = PG_GETARG_ARRAYTYPE_P(excluded_arg);
	if (kind != SBP_ENV_ALL && targets == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null",
						kind == SBP_ENV_CONNECTIONS ? (single ? "connection id" : "connection ids") :
						kind == SBP_ENV_GROUPS ? (single ? "group name" : "group names") :
						(single ? "user id" : "user ids"))));
	sbp_send_audience_value(&send, sbp_audience_from_arrays(kind, targets, excluded),
							payload, NULL);
	PG_RETURN_VOID();
}

/* send_all(app text, hub text, payload bytea, excluded text[] DEFAULT '{}') RETURNS void */
Datum
sbp_send_all(PG_FUNCTION_ARGS)
{
	return sbp_send_lists(fcinfo, SBP_ENV_ALL, -1, false, 2, 3);
}

/* send_connection(app text, hub text, connection_id text, payload bytea) RETURNS void */
Datum
sbp_send_connection(PG_FUNCTION_ARGS)
{
	return sbp_send_lists(fcinfo, SBP_ENV_CONNECTIONS, 2, true, 3, -1);
}

/* send_connections(app text, hub text, connection_ids text[], payload bytea) RETURNS void */
Datum
sbp_send_connections(PG_FUNCTION_ARGS)
{
	return sbp_send_lists(fcinfo, SBP_ENV_CONNECTIONS, 2, false, 3, -1);
}

/* send_group(app text, hub text, group_name text, payload bytea, excluded text[] DEFAULT '{}') RETURNS void */
Datum
sbp_send_group(PG_FUNCTION_ARGS)
{
	return sbp_send_lists(fcinfo, SBP_ENV_GROUPS, 2, true, 3, 4);
}

/* send_groups(app text, hub text, group_names text[], payload bytea, excluded text[] DEFAULT '{}') RETURNS void */
Datum
sbp_send_groups(PG_FUNCTION_ARGS)
{
	return sbp_send_lists(fcinfo, SBP_ENV_GROUPS, 2, false, 3, 4);
}

/* send_user(app text, hub text, user_id text, payload bytea) RETURNS void */
Datum
sbp_send_user(PG_FUNCTION_ARGS)
{
	return sbp_send_lists(fcinfo, SBP_ENV_USERS, 2, true, 3, -1);
}

/* send_users(app text, hub text, user_ids text[], payload bytea) RETURNS void */
Datum
sbp_send_users(PG_FUNCTION_ARGS)
{
	return sbp_send_lists(fcinfo, SBP_ENV_USERS, 2, false, 3, -1);
}

/* send(app text, hub text, audience audience, payload bytea) RETURNS void */
Datum
sbp_send_audience(PG_FUNCTION_ARGS)
{
	SbpSend		send;
	bytea	   *payload;

	sbp_send_begin(fcinfo, &send);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audience must not be null")));
	payload = sbp_payload(PG_GETARG_DATUM(3), PG_ARGISNULL(3));
	sbp_send_audience_value(&send, PG_GETARG_DATUM(2), payload, NULL);
	PG_RETURN_VOID();
}

/* A one-dimensional array argument's elements (NULL elements as 0 where nulls_ok, else refused). */
static int
sbp_batch_array(FunctionCallInfo fcinfo, int argno, const char *what, bool nulls_ok,
				Datum **elems)
{
	ArrayType  *arr;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign, elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (!nulls[i])
			continue;
		if (!nulls_ok)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what)));
		(*elems)[i] = (Datum) 0;
	}
	return n;
}

/* Is the batch key in sent_batch (committed, or inserted by this transaction)? */
static bool
sbp_batch_key_recorded(Relation rel, Oid pkeyid, int32 app_id, pg_uuid_t *key)
{
	for (;;)
	{
		SnapshotData dirty;
		ScanKeyData keys[2];
		SysScanDesc scan;
		TransactionId wait;
		bool		found;

		InitDirtySnapshot(dirty);
		ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(app_id));
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(key));
		scan = systable_beginscan(rel, pkeyid, true, &dirty, 2, keys);
		found = HeapTupleIsValid(systable_getnext(scan));
		/* a transaction that did not queue on the key's lock: maintain() deleting it */
		wait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		systable_endscan(scan);
		if (!found || !TransactionIdIsValid(wait))
			return found;
		XactLockTableWait(wait, rel, NULL, XLTW_None);
	}
}

/*
 * Records the batch key; false when a committed transaction (or this one)
 * already did.  What INSERT ... ON CONFLICT DO NOTHING would do, without an
 * executor round per send (it was a fifth of a send's backend time):
 * attempts with one key queue on a transaction-level lock on it, and the
 * holder inserts the row and its index entries itself.  Only when the
 * primary key reports a possible duplicate (a retry) is the row taken back
 * and the key looked up.  No privilege check is needed: the row is the
 * extension's own bookkeeping of a send the caller may make.
 */
static bool
sbp_claim_batch_key(SbpSend *send, pg_uuid_t *key)
{
	Oid			nsp = get_namespace_oid("signalr_bp", false);
	Oid			relid = get_relname_relid("sent_batch", nsp);
	Oid			pkeyid = get_relname_relid("sent_batch_pkey", nsp);
	/* app_id, batch_key, sent_at (its default, now()) */
	Datum		values[3] = {
		Int32GetDatum(send->app.id), UUIDPGetDatum(key),
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())
	};
	LOCKTAG		tag;
	Relation	rel;
	bool		claimed;

	if (!OidIsValid(relid) || !OidIsValid(pkeyid))
		elog(ERROR, "table signalr_bp.sent_batch or its primary key is missing");

	/* held to the end of the transaction: a retry waits for the attempt before it */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, hash_bytes(key->data, UUID_LEN),
						 (uint32) send->app.id, SBP_LOCKTAG_KEY_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	rel = table_open(relid, RowExclusiveLock);
	for (;;)
	{
		ItemPointerData tid;

		if (sbp_insert_direct(rel, values, lengthof(values), &tid))
		{
			claimed = true;
			break;
		}
		/* take the row back, then see whether the key is really there */
		CommandCounterIncrement();
		simple_heap_delete(rel, &tid);
		CommandCounterIncrement();
		if (sbp_batch_key_recorded(rel, pkeyid, send->app.id, key))
		{
			claimed = false;
			break;
		}
	}
	table_close(rel, NoLock);
	return claimed;
}

/*
 * The async_commit argument: true commits the caller's transaction without
 * waiting for its WAL flush, as SET LOCAL synchronous_commit = off would (one
 * statement less per send for a hub server).  Readers still see the messages
 * only once they are durable (publish.c).
 */
static void
sbp_async_commit_arg(FunctionCallInfo fcinfo, int argno)
{
	if (argno >= PG_NARGS() || PG_ARGISNULL(argno) || !PG_GETARG_BOOL(argno))
		return;
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/* The batch key argument (NULL: none). */
static pg_uuid_t *
sbp_batch_key(FunctionCallInfo fcinfo, int argno)
{
	if (argno >= PG_NARGS() || PG_ARGISNULL(argno))
		return NULL;
	return PG_GETARG_UUID_P(argno);
}

/*
 * send_batch(app text, hub text, audiences audience[], payloads bytea[],
 *            batch_key uuid DEFAULT NULL, async_commit boolean DEFAULT false)
 *            RETURNS integer
 *
 * Sends payloads[i] to audiences[i], in order; returns the number of
 * messages appended (0 when the batch key was applied before).
 */
Datum
sbp_send_batch_audiences(PG_FUNCTION_ARGS)
{
	SbpSend		send;
	Datum	   *audiences;
	Datum	   *payloads;
	int			n;
	pg_uuid_t  *key;

	sbp_send_begin(fcinfo, &send);
	n = sbp_batch_array(fcinfo, 2, "audiences", false, &audiences);
	if (sbp_batch_array(fcinfo, 3, "payloads", false, &payloads) != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("audiences and payloads must have the same length")));
	for (int i = 0; i < n; i++)
		payloads[i] = PointerGetDatum(sbp_payload(payloads[i], false));
	key = sbp_batch_key(fcinfo, 4);
	sbp_async_commit_arg(fcinfo, 5);
	if (key && !sbp_claim_batch_key(&send, key))
		PG_RETURN_INT32(0);
	for (int i = 0; i < n; i++)
		sbp_send_audience_value(&send, audiences[i], (bytea *) DatumGetPointer(payloads[i]),
								key && i == n - 1 ? key->data : NULL);
	PG_RETURN_INT32(n);
}

/* The envelope kind of a send_batch kind name. */
static int
sbp_kind_of(text *kind)
{
	static const char *const names[] = {NULL, "all", "connection", "group", "user"};
	int			len;

	if (kind == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("send kind must not be null"),
				 errhint("Use all, connection, group or user.")));
	len = VARSIZE_ANY_EXHDR(kind);
	for (int k = SBP_ENV_ALL; k <= SBP_ENV_USERS; k++)
		if (len == (int) strlen(names[k]) && memcmp(VARDATA_ANY(kind), names[k], len) == 0)
			return k;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid send kind \"%s\"", text_to_cstring(kind)),
			 errhint("Use all, connection, group or user.")));
	return 0;
}

/*
 * send_batch(app text, hub text, kinds text[], targets text[], payloads bytea[],
 *            batch_key uuid DEFAULT NULL, async_commit boolean DEFAULT false)
 *            RETURNS integer
 *
 * Sends payloads[i] to one target: kinds[i] is all, connection, group or
 * user; targets[i] names it (ignored for all).  Returns the number of
 * messages appended (0 when the batch key was applied before).
 */
Datum
sbp_send_batch_kinds(PG_FUNCTION_ARGS)
{
	SbpSend		send;
	Datum	   *kinds;
	Datum	   *targets;
	Datum	   *payloads;
	int		   *kind;
	int			n;
	pg_uuid_t  *key;

	sbp_send_begin(fcinfo, &send);
	n = sbp_batch_array(fcinfo, 2, "kinds", true, &kinds);
	if (sbp_batch_array(fcinfo, 3, "targets", true, &targets) != n ||
		sbp_batch_array(fcinfo, 4, "payloads", false, &payloads) != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("kinds, targets and payloads must have the same length")));
	kind = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		kind[i] = sbp_kind_of(kinds[i] ? DatumGetTextPP(kinds[i]) : NULL);
		payloads[i] = PointerGetDatum(sbp_payload(payloads[i], false));
		if (kind[i] == SBP_ENV_ALL)
			continue;
		if (targets[i] == (Datum) 0)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("target of a %s send must not be null", text_to_cstring(DatumGetTextPP(kinds[i])))));
		targets[i] = PointerGetDatum(DatumGetTextPP(targets[i]));
		sbp_check_name(VARDATA_ANY(targets[i]), VARSIZE_ANY_EXHDR(targets[i]),
						 kind[i] == SBP_ENV_CONNECTIONS ? "connection id" :
						 kind[i] == SBP_ENV_GROUPS ? "group name" : "user id",
						 kind[i] == SBP_ENV_CONNECTIONS ? SBP_CONNECTION_ID_MAX :
						 kind[i] == SBP_ENV_GROUPS ? SBP_GROUP_NAME_MAX : SBP_USER_ID_MAX, 0);
	}
	key = sbp_batch_key(fcinfo, 5);
	sbp_async_commit_arg(fcinfo, 6);
	if (key && !sbp_claim_batch_key(&send, key))
		PG_RETURN_INT32(0);
	for (int i = 0; i < n; i++)
	{
		SbpName		target = {NULL, 0};
		text	   *t = (text *) DatumGetPointer(targets[i]);

		if (kind[i] != SBP_ENV_ALL)
		{
			target.s = VARDATA_ANY(t);
			target.len = VARSIZE_ANY_EXHDR(t);
		}
		sbp_send_one(&send, kind[i], &target, kind[i] == SBP_ENV_ALL ? 0 : 1, 0,
					 (bytea *) DatumGetPointer(payloads[i]),
					 key && i == n - 1 ? key->data : NULL);
	}
	PG_RETURN_INT32(n);
}
