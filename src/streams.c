/*
 * streams.c: the stream catalog (signalr_bp.stream), a per-backend cache of
 * it, and the privilege model.
 *
 * Every table of the extension belongs to the extension's owner and is
 * revoked from PUBLIC.  The C functions run their fixed, schema-qualified
 * queries as that owner (as SECURITY DEFINER would), after checking that the
 * caller is a member of the stream's owning role: one application's role
 * cannot read or write another's streams.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_create_stream);
PG_FUNCTION_INFO_V1(sbp_drop_stream);
PG_FUNCTION_INFO_V1(sbp_head);
PG_FUNCTION_INFO_V1(sbp_channel);

static HTAB *sbp_stream_cache = NULL;
static Oid	sbp_stream_relid = InvalidOid;
static Oid	sbp_owner = InvalidOid;

/* Forget cached streams when signalr_bp.stream changes (drop_stream sends it). */
static void
sbp_relcache_callback(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != sbp_stream_relid)
		return;
	if (sbp_stream_cache)
		hash_destroy(sbp_stream_cache);
	sbp_stream_cache = NULL;
	sbp_stream_relid = InvalidOid;
	sbp_owner = InvalidOid;
}

void
sbp_streams_init(void)
{
	CacheRegisterRelcacheCallback(sbp_relcache_callback, (Datum) 0);
}

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

void
sbp_enter_owner(Oid *saved_user, int *saved_sec)
{
	Oid			owner = sbp_schema_owner();

	GetUserIdAndSecContext(saved_user, saved_sec);
	SetUserIdAndSecContext(owner, *saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
sbp_leave_owner(Oid saved_user, int saved_sec)
{
	SetUserIdAndSecContext(saved_user, saved_sec);
}

/*
 * Find a stream by name and check the caller may use it.  Returns false only
 * when missing_ok and the stream does not exist.
 */
bool
sbp_lookup_stream(const char *name, bool missing_ok, SbpStream *out)
{
	SbpStream  *entry;
	bool		found;

	if (sbp_stream_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = SBP_MAX_NAME_BYTES + 1;
		ctl.entrysize = sizeof(SbpStream);
		sbp_stream_cache = hash_create("signalr_bp streams", 64, &ctl,
									   HASH_ELEM | HASH_STRINGS);
	}

	entry = hash_search(sbp_stream_cache, name, HASH_FIND, &found);
	if (!found)
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(name)};
		Oid			saved_user;
		int			saved_sec;
		int			rc;
		SbpStream	fetched;

		memset(&fetched, 0, sizeof(fetched));
		sbp_enter_owner(&saved_user, &saved_sec);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args("SELECT id, durable, owner FROM signalr_bp.stream"
								   " WHERE name OPERATOR(pg_catalog.=) $1",
								   1, argtypes, values, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "stream lookup failed: %s", SPI_result_code_string(rc));
		found = SPI_processed > 0;
		if (found)
		{
			bool		isnull;
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;

			fetched.id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
			fetched.durable = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
			fetched.owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		}
		SPI_finish();
		sbp_leave_owner(saved_user, saved_sec);

		if (!found)
		{
			if (missing_ok)
				return false;
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("stream \"%s\" does not exist", name)));
		}
		/* SPI may have run invalidations that reset the cache: look again. */
		if (sbp_stream_cache == NULL)
			return sbp_lookup_stream(name, missing_ok, out);
		entry = hash_search(sbp_stream_cache, name, HASH_ENTER, NULL);
		entry->id = fetched.id;
		entry->durable = fetched.durable;
		entry->owner = fetched.owner;
		entry->catalog = sbp_stream_table();
	}

	if (!has_privs_of_role(GetUserId(), entry->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for stream \"%s\"", name),
				 errdetail("Only members of the stream's owning role may use it.")));
	memcpy(out, entry, sizeof(SbpStream));
	return true;
}

/* create_stream(name text, durable boolean, if_not_exists boolean) RETURNS integer */
Datum
sbp_create_stream(PG_FUNCTION_ARGS)
{
	char	   *name = sbp_stream_name_arg(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	bool		durable;
	bool		if_not_exists = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	Oid			argtypes[3] = {TEXTOID, BOOLOID, OIDOID};
	Datum		values[3];
	Oid			saved_user;
	int			saved_sec;
	int			rc;
	int32		id = 0;
	bool		created;
	bool		existing_durable = false;
	bool		isnull;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("durable must not be null")));
	durable = PG_GETARG_BOOL(1);
	sbp_require_primary();

	values[0] = CStringGetTextDatum(name);
	values[1] = BoolGetDatum(durable);
	values[2] = ObjectIdGetDatum(GetUserId());

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("INSERT INTO signalr_bp.stream (name, durable, owner)"
							   " VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING"
							   " RETURNING id",
							   3, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "stream insert failed: %s", SPI_result_code_string(rc));
	created = SPI_processed == 1;
	if (created)
		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	else
	{
		rc = SPI_execute_with_args("SELECT id, durable FROM signalr_bp.stream"
								   " WHERE name OPERATOR(pg_catalog.=) $1",
								   1, argtypes, values, NULL, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "stream lookup failed: %s", SPI_result_code_string(rc));
		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
		existing_durable = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (created && !durable)
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

	if (!created)
	{
		SbpStream	s;

		if (!if_not_exists)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("stream \"%s\" already exists", name)));
		if (existing_durable != durable)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("stream \"%s\" already exists as a %s stream", name,
							existing_durable ? "durable" : "fast")));
		/* the caller must be allowed to use the stream it asked for */
		sbp_lookup_stream(name, false, &s);
	}
	PG_RETURN_INT32(id);
}

/* drop_stream(name text, if_exists boolean) RETURNS boolean */
Datum
sbp_drop_stream(PG_FUNCTION_ARGS)
{
	char	   *name = sbp_stream_name_arg(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	bool		if_exists = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	SbpStream	s;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	Oid			saved_user;
	int			saved_sec;
	int			rc;

	sbp_require_primary();
	if (!sbp_lookup_stream(name, if_exists, &s))
		PG_RETURN_BOOL(false);
	values[0] = Int32GetDatum(s.id);

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("DELETE FROM signalr_bp.stream WHERE id OPERATOR(pg_catalog.=) $1",
							   1, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "stream delete failed: %s", SPI_result_code_string(rc));
	sbp_view_changed();
	rc = SPI_execute_with_args("DELETE FROM signalr_bp.fast_alive WHERE stream_id OPERATOR(pg_catalog.=) $1",
							   1, argtypes, values, NULL, false, 0);
	for (int d = 0; d < 2; d++)
		for (int slot = 0; slot < SBP_SEGMENTS; slot++)
		{
			char		sql[128];

			snprintf(sql, sizeof(sql),
					 "DELETE FROM %s WHERE stream_id OPERATOR(pg_catalog.=) $1",
					 sbp_segment_table(d == 0, slot));
			rc = SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 0);
			if (rc != SPI_OK_DELETE)
				elog(ERROR, "chunk delete failed: %s", SPI_result_code_string(rc));
		}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);

	/* other backends forget the name at their next command */
	CacheInvalidateRelcacheByRelid(sbp_stream_table());
	PG_RETURN_BOOL(true);
}

/* head(stream text) RETURNS bigint */
Datum
sbp_head(PG_FUNCTION_ARGS)
{
	char	   *name = sbp_stream_name_arg(PG_GETARG_TEXT_PP(0));
	SbpStream	s;
	Oid			saved_user;
	int			saved_sec;
	SbpStreamView view;
	int64		head;

	sbp_require_primary();
	sbp_lookup_stream(name, false, &s);
	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetLatestSnapshot());
	sbp_stream_view(s.id, s.name, SBP_NO_VIEW_MARK, &view);
	head = sbp_probe_head(s.id, s.durable, &view);
	PopActiveSnapshot();
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
	PG_RETURN_INT64(head);
}

/* channel(stream text) RETURNS text */
Datum
sbp_channel(PG_FUNCTION_ARGS)
{
	char	   *name = sbp_stream_name_arg(PG_GETARG_TEXT_PP(0));
	SbpStream	s;

	sbp_lookup_stream(name, false, &s);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("signalr_bp_%d", s.id)));
}
