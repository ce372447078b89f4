/*
 * guard.c: what every entry point of the extension checks first.
 *
 * sbp_guard() refuses to run on a standby (SQLSTATE 25006, "signalr_bp
 * requires a primary server": names.c) and then takes the extension lock:
 * AccessShareLock on the pg_extension object of signalr_bp, the object DROP
 * EXTENSION locks in AccessExclusiveLock mode before it touches any member.
 * Holding it until the transaction ends means a call never sees a
 * half-dropped extension (no "could not open relation with OID", no deadlock
 * against DROP EXTENSION on the member tables): DROP waits for the calls in
 * progress, and calls that start after it wait for it and then find the
 * extension gone (SQLSTATE 42704).  A long poll keeps the lock (and the
 * relation locks of its reads) while it sleeps, and ends early, with what it
 * has, when someone waits for the extension lock (sbp_extension_wanted).
 *
 * The extension's OID is cached per backend and forgotten when the stream
 * table is invalidated (DROP EXTENSION drops it): after the lock is granted,
 * pending invalidations have been processed, so a cached OID that survived
 * them is still the extension's.
 *
 * The library works only with the SQL objects of its own version: its
 * queries name their columns.  Between installing a new library (and
 * restarting) and ALTER EXTENSION signalr_bp UPDATE, the database still has
 * the previous version's objects; the guard then refuses every call with
 * one clear error (55000) instead of letting it fail on a missing column,
 * or worse, call a C function through an older declaration.  The version is
 * read when the OID is cached, and a mismatch is never cached.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_guard_sql);

static Oid	sbp_ext_oid = InvalidOid;
static Oid	sbp_ext_table = InvalidOid; /* signalr_bp.stream when cached */
static Oid	sbp_ext_locked = InvalidOid;	/* the OID last locked */

/* Forget the cached extension OID when its stream table goes away. */
static void
sbp_guard_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == sbp_ext_table)
	{
		sbp_ext_oid = InvalidOid;
		sbp_ext_table = InvalidOid;
	}
}

/* Register the invalidation callback (from _PG_init). */
void
sbp_guard_init(void)
{
	CacheRegisterRelcacheCallback(sbp_guard_relcache_callback, (Datum) 0);
}

/* The extension's OID as the catalog says now, or InvalidOid. */
static Oid
sbp_find_extension(void)
{
	Oid			ext = get_extension_oid("signalr_bp", true);
	Oid			nsp;

	if (!OidIsValid(ext))
		return InvalidOid;
	nsp = get_namespace_oid("signalr_bp", true);
	sbp_ext_table = OidIsValid(nsp) ? get_relname_relid("stream", nsp) : InvalidOid;
	return ext;
}

/* The version pg_extension records for the extension (palloc'd), or NULL. */
static char *
sbp_extension_version(Oid ext)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/* Are the extension's SQL objects of this library's version? */
bool
sbp_extension_current(Oid ext)
{
	char	   *version = sbp_extension_version(ext);

	return version != NULL && strcmp(version, SBP_VERSION) == 0;
}

/* Fail: the extension's objects are of another version than the library. */
static void
sbp_extension_outdated(Oid ext)
{
	char	   *version = sbp_extension_version(ext);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"signalr_bp\" is version \"%s\" in this database but its library is version \"%s\"",
					version ? version : "?", SBP_VERSION),
			 errhint("Run ALTER EXTENSION signalr_bp UPDATE in this database, or install the library of the extension's version.")));
}

static void
sbp_extension_gone(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("extension \"signalr_bp\" does not exist"),
			 errdetail("It was dropped while this call was running or waiting.")));
}

/*
 * Take the extension lock (AccessShareLock, until the transaction ends) and
 * make sure the extension still exists once it is granted.
 */
void
sbp_lock_extension(void)
{
	Oid			ext = sbp_ext_oid;

	if (!OidIsValid(ext))
	{
		ext = sbp_find_extension();
		if (!OidIsValid(ext))
			sbp_extension_gone();
	}
	/* processes the invalidations of a DROP EXTENSION that committed first */
	LockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
	if (ext != sbp_ext_oid)
	{
		if (sbp_find_extension() != ext)
		{
			UnlockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
			sbp_extension_gone();
		}
		if (!sbp_extension_current(ext))
		{
			UnlockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
			sbp_extension_outdated(ext);
		}
		sbp_ext_oid = ext;
	}
	sbp_ext_locked = ext;
}

/*
 * Is another transaction waiting for the extension lock (DROP EXTENSION)?
 * Asked by long polls, which then end at once so that the drop can go on.
 */
bool
sbp_extension_wanted(void)
{
	LOCKTAG		tag;

	if (!OidIsValid(sbp_ext_locked))
		return false;
	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, ExtensionRelationId, sbp_ext_locked, 0);
	return LockHasWaiters(&tag, AccessShareLock, false);
}

/* The check at the top of every function that touches the extension's state. */
void
sbp_guard(void)
{
	sbp_require_primary();
	sbp_lock_extension();
}

/*
 * _guard() RETURNS void: the same for the SQL and PL/pgSQL functions, as
 * their first statement.
 */
Datum
sbp_guard_sql(PG_FUNCTION_ARGS)
{
	sbp_guard();
	PG_RETURN_VOID();
}
