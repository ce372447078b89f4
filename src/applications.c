/*
 * applications.c: applications (signalr_bp.application) by name, and who may
 * use them.
 *
 * A role may use an application, its streams and its SignalR state iff it
 * has the privileges of the application's owner (has_privs_of_role).  An
 * application that does not exist and one the caller may not use give the
 * same error, so names of other applications cannot be probed.
 *
 * A per-backend cache maps names to (id, owner).  Statement-level triggers on
 * signalr_bp.application and signalr_bp.stream invalidate the stream table's
 * relcache entry, whose callback (streams.c) empties this cache too, and
 * every lookup first accepts pending invalidations: a cached owner never
 * outlives a committed change.  The permission check itself runs on every
 * call.  No shared state, no locks.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_app_id);
PG_FUNCTION_INFO_V1(sbp_may_use);

static HTAB *sbp_app_cache = NULL;

/* Forget every cached application (the relcache callback calls this). */
void
sbp_applications_reset(void)
{
	if (sbp_app_cache)
		hash_destroy(sbp_app_cache);
	sbp_app_cache = NULL;
}

/* The one error for an application that is missing or not the caller's. */
void
sbp_no_such_application(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("application \"%s\" does not exist", name),
			 errhint("Only roles with the privileges of an application's owner can use it.")));
}

/* Read one application's row (as the extension's owner); false if there is none. */
static bool
sbp_fetch_application(const char *name, SbpApplication *out)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	Oid			saved_user;
	int			saved_sec;
	bool		found;

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT id, owner, max_streams FROM signalr_bp.application"
							  " WHERE name OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "application lookup failed");
	found = SPI_processed == 1;
	if (found)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		out->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		out->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		out->max_streams = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
	return found;
}

/*
 * Find an application by (valid) name and check that user may use it.
 * Returns false, when missing_ok, if it does not exist or user may not use
 * it; otherwise raises the same error for both.
 */
bool
sbp_lookup_application(const char *name, Oid user, bool missing_ok, SbpApplication *out)
{
	SbpApplication *entry = NULL;
	SbpApplication fetched;

	/* a change committed by another backend is seen before the cache is used */
	AcceptInvalidationMessages();
	if (sbp_app_cache != NULL)
		entry = hash_search(sbp_app_cache, name, HASH_FIND, NULL);
	if (entry == NULL)
	{
		if (!sbp_fetch_application(name, &fetched))
		{
			if (missing_ok)
				return false;
			sbp_no_such_application(name);
		}
		/* created after SPI, which may have run invalidations that reset it */
		if (sbp_app_cache == NULL)
		{
			HASHCTL		ctl;

			ctl.keysize = SBP_MAX_APP_NAME_BYTES + 1;
			ctl.entrysize = sizeof(SbpApplication);
			sbp_app_cache = hash_create("signalr_bp applications", 16, &ctl,
										HASH_ELEM | HASH_STRINGS);
		}
		entry = hash_search(sbp_app_cache, name, HASH_ENTER, NULL);
		entry->id = fetched.id;
		entry->owner = fetched.owner;
		entry->max_streams = fetched.max_streams;
	}

	if (!has_privs_of_role(user, entry->owner))
	{
		if (missing_ok)
			return false;
		sbp_no_such_application(name);
	}
	memcpy(out, entry, sizeof(SbpApplication));
	return true;
}

/*
 * _app_id(app text) RETURNS integer
 *
 * The application's id, if the role that called into the extension (the
 * outer user: SECURITY DEFINER functions do not change it) may use it.
 */
Datum
sbp_app_id(PG_FUNCTION_ARGS)
{
	char	   *name;
	SbpApplication app;

	sbp_guard();
	name = sbp_application_name_arg(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	sbp_lookup_application(name, GetOuterUserId(), false, &app);
	PG_RETURN_INT32(app.id);
}

/* _may_use(owner regrole) RETURNS boolean: has the current user the owner's privileges? */
Datum
sbp_may_use(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(has_privs_of_role(GetUserId(), PG_GETARG_OID(0)));
}
