/*
 * streams.c: the stream catalog (signalr_bp.stream), a per-backend cache of
 * it, and the privilege model.
 *
 * Every stream belongs to an application and is named
 * "<application>/<local>"; its owner is the application's owner.  Every
 * table of the extension belongs to the extension's owner and is revoked from
 * PUBLIC.  The C functions run their fixed, schema-qualified queries as that
 * owner (as SECURITY DEFINER would), after checking that the caller has the
 * privileges of the stream's owner: one application's role cannot read,
 * write, drop, listen to or even detect another's streams (a stream it may
 * not use "does not exist").
 *
 * The cache maps names to streams.  Statement-level triggers on the stream
 * and application tables (sbp_catalog_changed) invalidate the stream table's
 * relcache entry, whose callback empties the cache in every backend; lookups
 * accept pending invalidations first, and check permissions on every call.
 * No shared state, no locks beyond the row lock that serializes stream
 * creation in one application (so max_streams holds: the streams are
 * counted under that lock with a fresh snapshot, in every isolation level).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_create_stream);
PG_FUNCTION_INFO_V1(sbp_create_stream_internal);
PG_FUNCTION_INFO_V1(sbp_drop_stream);
PG_FUNCTION_INFO_V1(sbp_drop_app_streams);
PG_FUNCTION_INFO_V1(sbp_head);
PG_FUNCTION_INFO_V1(sbp_channel);
PG_FUNCTION_INFO_V1(sbp_catalog_changed);

static HTAB *sbp_stream_cache = NULL;
static Oid	sbp_stream_relid = InvalidOid;
static Oid	sbp_owner = InvalidOid;

/* Forget cached streams and applications when either table changes. */
static void
sbp_relcache_callback(Datum arg, Oid relid)
{
	sbp_segments_invalidate(relid);
	if (relid != InvalidOid && relid != sbp_stream_relid)
		return;
	if (sbp_stream_cache)
		hash_destroy(sbp_stream_cache);
	sbp_stream_cache = NULL;
	sbp_applications_reset();
	sbp_stream_relid = InvalidOid;
	sbp_owner = InvalidOid;
}

/* Register the cache's invalidation callback (at module load). */
void
sbp_streams_init(void)
{
	CacheRegisterRelcacheCallback(sbp_relcache_callback, (Datum) 0);
}

/* OID of signalr_bp.stream in this database. */
Oid
sbp_stream_table(void)
{
	if (!OidIsValid(sbp_stream_relid))
		sbp_stream_relid = get_relname_relid("stream",
											 get_namespace_oid("signalr_bp", false));
	return sbp_stream_relid;
}

/* Owner of the signalr_bp schema, as whom the extension's queries run. */
Oid
sbp_schema_owner(void)
{
	if (!OidIsValid(sbp_owner))
	{
		Oid			nsp = get_namespace_oid("signalr_bp", false);
		HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for namespace %u", nsp);
		sbp_owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
		(void) sbp_stream_table();
	}
	return sbp_owner;
}

/* Run as the extension's owner until sbp_leave_owner. */
void
sbp_enter_owner(Oid *saved_user, int *saved_sec)
{
	Oid			owner = sbp_schema_owner();

	GetUserIdAndSecContext(saved_user, saved_sec);
	SetUserIdAndSecContext(owner, *saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/* Back to the caller's identity. */
void
sbp_leave_owner(Oid saved_user, int saved_sec)
{
	SetUserIdAndSecContext(saved_user, saved_sec);
}

/* The one error for a stream that is missing or not the caller's. */
static void
sbp_no_such_stream(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("stream \"%s\" does not exist", name),
			 errhint("Stream names are \"<application>/<name>\"; only roles with the privileges of the application's owner can use its streams.")));
}

/* Read one stream's row with its application's owner; false if there is none. */
static bool
sbp_fetch_stream(const char *name, SbpStream *out)
{
	const char *slash = strchr(name, '/');
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	Oid			saved_user;
	int			saved_sec;
	int			rc;
	bool		found;

	Assert(slash != NULL);
	values[0] = PointerGetDatum(cstring_to_text_with_len(name, slash - name));
	values[1] = CStringGetTextDatum(slash + 1);

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT s.id, s.app_id, s.durable, a.owner, s.token"
							   " FROM signalr_bp.stream s JOIN signalr_bp.application a"
							   " ON a.id OPERATOR(pg_catalog.=) s.app_id"
							   " WHERE a.name OPERATOR(pg_catalog.=) $1"
							   " AND s.local_name OPERATOR(pg_catalog.=) $2",
							   2, argtypes, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "stream lookup failed: %s", SPI_result_code_string(rc));
	found = SPI_processed > 0;
	if (found)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *token = SPI_getvalue(tup, desc, 5);

		out->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		out->app_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		out->durable = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		out->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		strlcpy(out->token, token, sizeof(out->token));
	}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
	return found;
}

/*
 * Find a stream by (valid) name and check the caller may use it.  Returns
 * false only when missing_ok and the stream does not exist or the caller may
 * not use it; otherwise raises the same error for both.
 */
bool
sbp_lookup_stream(const char *name, bool missing_ok, SbpStream *out)
{
	SbpStream  *entry = NULL;

	/* a change committed by another backend is seen before the cache is used */
	AcceptInvalidationMessages();
	if (sbp_stream_cache != NULL)
		entry = hash_search(sbp_stream_cache, name, HASH_FIND, NULL);
	if (entry == NULL)
	{
		SbpStream	fetched;

		memset(&fetched, 0, sizeof(fetched));
		if (!sbp_fetch_stream(name, &fetched))
		{
			if (missing_ok)
				return false;
			sbp_no_such_stream(name);
		}
		/* created after SPI, which may have run invalidations that reset it */
		if (sbp_stream_cache == NULL)
		{
			HASHCTL		ctl;

			ctl.keysize = SBP_MAX_NAME_BYTES + 1;
			ctl.entrysize = sizeof(SbpStream);
			sbp_stream_cache = hash_create("signalr_bp streams", 64, &ctl,
										   HASH_ELEM | HASH_STRINGS);
		}
		entry = hash_search(sbp_stream_cache, name, HASH_ENTER, NULL);
		entry->id = fetched.id;
		entry->app_id = fetched.app_id;
		entry->durable = fetched.durable;
		entry->reserved = strchr(name, '/')[1] == '$';
		entry->owner = fetched.owner;
		entry->catalog = sbp_stream_table();
		memcpy(entry->token, fetched.token, sizeof(entry->token));
	}

	if (!has_privs_of_role(GetUserId(), entry->owner))
	{
		if (missing_ok)
			return false;
		sbp_no_such_stream(name);
	}
	memcpy(out, entry, sizeof(SbpStream));
	return true;
}

/* Only the extension itself (its definer functions) and superusers write reserved streams. */
void
sbp_check_publishable(const SbpStream *s)
{
	if (s->reserved && !superuser() && GetUserId() != sbp_schema_owner())
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("stream name \"%s\" is reserved", s->name),
				 errdetail("Local stream names starting with \"$\" belong to signalr_bp itself."),
				 errhint("Send through the SignalR functions.")));
}

/* A new channel token: 16 random bytes as 32 lowercase hex digits. */
static void
sbp_new_token(char *buf)
{
	static const char hex[] = "0123456789abcdef";
	uint8		raw[SBP_TOKEN_CHARS / 2];

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random channel token")));
	for (int i = 0; i < (int) sizeof(raw); i++)
	{
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 0xf];
	}
	buf[SBP_TOKEN_CHARS] = '\0';
}

/*
 * Insert stream (app_id, local) unless it exists.  Stream creation in one application is serialized on the
 * application's row, so max_streams holds.  Returns the stream's id.
 */
static int32
sbp_insert_stream(int32 app_id, const char *local, bool durable, bool if_not_exists)
{
	Oid			argtypes[4] = {INT4OID, TEXTOID, BOOLOID, TEXTOID};
	Datum		values[4];
	char		token[SBP_TOKEN_CHARS + 1];
	Oid			saved_user;
	int			saved_sec;
	int			rc;
	bool		isnull;
	int32		id;
	int32		max_streams;
	char	   *app_name;
	char	   *name;
	int64		count;
	SPIPlanPtr	plan;

	values[0] = Int32GetDatum(app_id);
	values[1] = CStringGetTextDatum(local);
	values[2] = BoolGetDatum(durable);

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT max_streams, name FROM signalr_bp.application"
							   " WHERE id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "application lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("application was dropped by a concurrent transaction")));
	max_streams = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	app_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	name = psprintf("%s/%s", app_name, local);

	rc = SPI_execute_with_args("SELECT id, durable FROM signalr_bp.stream"
							   " WHERE app_id OPERATOR(pg_catalog.=) $1"
							   " AND local_name OPERATOR(pg_catalog.=) $2",
							   2, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "stream lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		bool		existing_durable;

		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
		existing_durable = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull));
		if (!if_not_exists)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("stream \"%s\" already exists", name)));
		if (existing_durable != durable)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("stream \"%s\" already exists as a %s stream", name,
							existing_durable ? "durable" : "fast")));
		SPI_finish();
		sbp_leave_owner(saved_user, saved_sec);
		return id;
	}

	/*
	 * Count as of now, not as of the transaction's snapshot: under REPEATABLE
	 * READ or SERIALIZABLE that snapshot can predate streams whose creators
	 * held the row lock before us and have committed since (a lock-only xmax
	 * raises no serialization failure), and the cap would be exceeded.
	 */
	plan = SPI_prepare("SELECT pg_catalog.count(*) FROM signalr_bp.stream"
					   " WHERE app_id OPERATOR(pg_catalog.=) $1", 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "stream count failed: %s", SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							  false, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "stream count failed: %s", SPI_result_code_string(rc));
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	if (count >= max_streams)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("application \"%s\" has too many streams", app_name),
				 errdetail("It has " INT64_FORMAT " streams; its max_streams is %d.",
						   count, max_streams),
				 errhint("Drop streams it no longer uses, or raise the limit with signalr_bp.alter_application(..., max_streams => ...).")));

	sbp_new_token(token);
	values[3] = CStringGetTextDatum(token);
	/* the row lock makes a conflict possible only under REPEATABLE READ */
	rc = SPI_execute_with_args("INSERT INTO signalr_bp.stream (app_id, local_name, durable, token)"
							   " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
							   4, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "stream insert failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not create stream \"%s\": a concurrent transaction created it", name)));
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1, &isnull));
	if (!durable)
	{
		Datum		idv[1] = {Int32GetDatum(id)};
		Oid			idt[1] = {INT4OID};

		rc = SPI_execute_with_args("INSERT INTO signalr_bp.fast_alive (stream_id) VALUES ($1)",
								   1, idt, idv, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "fast stream marker insert failed: %s", SPI_result_code_string(rc));
	}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
	return id;
}

/* create_stream(name text, durable boolean, if_not_exists boolean) RETURNS integer */
Datum
sbp_create_stream(PG_FUNCTION_ARGS)
{
	SbpStreamName name;
	SbpApplication app;

	sbp_stream_name_parse(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), &name);
	sbp_refuse_reserved(&name);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(1) ? "durable" : "if_not_exists")));
	sbp_guard();
	sbp_lookup_application(name.app, GetUserId(), false, &app);
	PG_RETURN_INT32(sbp_insert_stream(app.id, name.local, PG_GETARG_BOOL(1), PG_GETARG_BOOL(2)));
}

/*
 * _create_stream(app_id integer, local_name text, durable boolean) RETURNS integer
 *
 * For the extension's own functions (create_application): no permission
 * check, reserved names allowed, an existing stream is returned.
 */
Datum
sbp_create_stream_internal(PG_FUNCTION_ARGS)
{
	int32		app_id = PG_GETARG_INT32(0);
	text	   *local = PG_GETARG_TEXT_PP(1);

	sbp_check_name(VARDATA_ANY(local), VARSIZE_ANY_EXHDR(local), "local stream name",
				   SBP_MAX_LOCAL_NAME_BYTES, 0);
	sbp_guard();
	PG_RETURN_INT32(sbp_insert_stream(app_id, text_to_cstring(local), PG_GETARG_BOOL(2), true));
}

/*
 * Delete the streams a condition on signalr_bp.stream selects (with $1 as
 * arg), their crash markers and every chunk.  Returns how many.
 */
static int64
sbp_delete_streams(const char *where, Oid argtype, Datum arg)
{
	Oid			argtypes[1] = {argtype};
	Datum		values[1] = {arg};
	Oid			ids_type[1] = {INT4ARRAYOID};
	Datum		ids[1];
	Oid			saved_user;
	int			saved_sec;
	int			rc;
	bool		isnull;
	int64		n;

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(psprintf("WITH gone AS (DELETE FROM signalr_bp.stream WHERE %s RETURNING id)"
										" SELECT pg_catalog.count(*), pg_catalog.array_agg(id) FROM gone",
										where),
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "stream delete failed: %s", SPI_result_code_string(rc));
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ids[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (n > 0)
	{
		sbp_view_changed();
		rc = SPI_execute_with_args("DELETE FROM signalr_bp.fast_alive"
								   " WHERE stream_id OPERATOR(pg_catalog.=) ANY ($1)",
								   1, ids_type, ids, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "fast stream marker delete failed: %s", SPI_result_code_string(rc));
		for (int d = 0; d < 2; d++)
			for (int slot = 0; slot < SBP_SEGMENTS; slot++)
			{
				char		sql[128];

				snprintf(sql, sizeof(sql),
						 "DELETE FROM %s WHERE stream_id OPERATOR(pg_catalog.=) ANY ($1)",
						 sbp_segment_table(d == 0, slot));
				rc = SPI_execute_with_args(sql, 1, ids_type, ids, NULL, false, 0);
				if (rc != SPI_OK_DELETE)
					elog(ERROR, "chunk delete failed: %s", SPI_result_code_string(rc));
			}
	}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
	return n;
}

/* drop_stream(name text, if_exists boolean) RETURNS boolean */
Datum
sbp_drop_stream(PG_FUNCTION_ARGS)
{
	SbpStreamName name;
	bool		if_exists;
	SbpStream	s;

	sbp_stream_name_parse(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), &name);
	sbp_refuse_reserved(&name);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("if_exists must not be null")));
	if_exists = PG_GETARG_BOOL(1);
	sbp_guard();
	if (!sbp_lookup_stream(name.full, if_exists, &s))
		PG_RETURN_BOOL(false);
	/* a concurrent drop got there first: as if it had not existed */
	if (sbp_delete_streams("id OPERATOR(pg_catalog.=) $1", INT4OID, Int32GetDatum(s.id)) == 0 &&
		!if_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" was dropped by a concurrent transaction", name.full)));
	PG_RETURN_BOOL(true);
}

/*
 * _drop_streams(app_id integer) RETURNS bigint
 *
 * For drop_application: every stream of the application, with its messages.
 */
Datum
sbp_drop_app_streams(PG_FUNCTION_ARGS)
{
	sbp_guard();
	PG_RETURN_INT64(sbp_delete_streams("app_id OPERATOR(pg_catalog.=) $1", INT4OID,
									   PG_GETARG_DATUM(0)));
}

/* head(stream text) RETURNS bigint */
Datum
sbp_head(PG_FUNCTION_ARGS)
{
	char	   *name;
	SbpStream	s;

	sbp_guard();
	name = sbp_stream_name_arg(PG_GETARG_TEXT_PP(0));
	sbp_lookup_stream(name, false, &s);
	PG_RETURN_INT64(sbp_stream_head(&s));
}

/* channel(stream text) RETURNS text: unguessable, told only to those who may use the stream */
Datum
sbp_channel(PG_FUNCTION_ARGS)
{
	char	   *name;
	SbpStream	s;

	sbp_guard();
	name = sbp_stream_name_arg(PG_GETARG_TEXT_PP(0));
	sbp_lookup_stream(name, false, &s);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("signalr_bp_%s", s.token)));
}

/*
 * _catalog_changed() trigger, statement-level on signalr_bp.stream and
 * signalr_bp.application: every backend's caches of both are emptied when
 * this transaction commits (and this backend's at once).
 */
Datum
sbp_catalog_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_catalog_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(sbp_stream_table());
	PG_RETURN_POINTER(NULL);
}
