/*
 * lifecycle.c: streams' shared state follows their creation and their drop.
 *
 * A row trigger on signalr_bp.stream (whatever inserts or deletes the row:
 * create_stream, drop_stream, dropping an application, a restore):
 *  - INSERT reserves the stream's shared entry at once, so that creating a
 *    stream fails cleanly (54000) when signalr_bp.max_streams entries are in
 *    use; the reservation is undone if the (sub)transaction rolls back;
 *  - DELETE discards what this transaction published to the stream, and
 *    schedules the entry's release for the commit.
 * The object access hook does the same for whole catalogs and databases:
 * DROP EXTENSION (the stream table is dropped) and DROP DATABASE.
 *
 * Releases take effect at commit (shmem.c marks the entries dropped, wakes
 * their long polls and frees them once nobody holds them); each action
 * remembers its subtransaction level, so that rolling back to a savepoint
 * undoes it.  The list lives in TopTransactionContext.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_stream_changed);

typedef enum SbpActionKind
{
	SBP_CREATED,				/* undo on abort */
	SBP_DELETED,				/* release on commit */
	SBP_CATALOG_DROPPED,		/* every stream of the catalog, on commit */
	SBP_DATABASE_DROPPED		/* every stream of the database, on commit */
} SbpActionKind;

typedef struct SbpAction
{
	SbpActionKind kind;
	Oid			dbid;
	Oid			catalog;
	int32		stream_id;
	int			level;			/* subtransaction nesting level */
} SbpAction;

static List *sbp_actions = NIL;
static object_access_hook_type prev_object_access_hook = NULL;

static void
sbp_add_action(SbpActionKind kind, Oid dbid, Oid catalog, int32 stream_id)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	SbpAction  *a = palloc(sizeof(SbpAction));

	a->kind = kind;
	a->dbid = dbid;
	a->catalog = catalog;
	a->stream_id = stream_id;
	a->level = GetCurrentTransactionNestLevel();
	sbp_actions = lappend(sbp_actions, a);
	MemoryContextSwitchTo(old);
}

/* Carry out an action now: the entries it names are gone. */
static void
sbp_apply(SbpAction *a)
{
	switch (a->kind)
	{
		case SBP_CREATED:
		case SBP_DELETED:
			sbp_state_mark_dropped(a->dbid, a->catalog, a->stream_id);
			break;
		case SBP_CATALOG_DROPPED:
			sbp_state_mark_dropped(a->dbid, a->catalog, 0);
			break;
		case SBP_DATABASE_DROPPED:
			sbp_state_mark_dropped(a->dbid, InvalidOid, 0);
			break;
	}
}

/* End of the transaction: releases on commit, undone reservations on abort. */
void
sbp_lifecycle_xact_event(bool commit)
{
	ListCell   *lc;

	foreach(lc, sbp_actions)
	{
		SbpAction  *a = (SbpAction *) lfirst(lc);

		if ((a->kind == SBP_CREATED) != commit)
			sbp_apply(a);
	}
	sbp_actions = NIL;
}

/*
 * End of a subtransaction: its actions pass to the parent, or, when it
 * rolls back, its drops never happened and its creations are undone now.
 */
void
sbp_lifecycle_subxact_event(bool commit, int level)
{
	ListCell   *lc;

	foreach(lc, sbp_actions)
	{
		SbpAction  *a = (SbpAction *) lfirst(lc);

		if (a->level < level)
			continue;
		if (commit)
			a->level = level - 1;
		else
		{
			if (a->kind == SBP_CREATED)
				sbp_apply(a);
			sbp_actions = foreach_delete_current(sbp_actions, lc);
		}
	}
}

/*
 * _stream_changed() RETURNS trigger: AFTER INSERT OR DELETE FOR EACH ROW on
 * signalr_bp.stream.
 */
Datum
sbp_stream_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	Relation	rel;
	bool		isnull;
	int32		stream_id;
	Oid			catalog;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_stream_changed() must be called as an AFTER ROW trigger")));
	rel = trig->tg_relation;
	catalog = RelationGetRelid(rel);
	stream_id = DatumGetInt32(heap_getattr(trig->tg_trigtuple,
										   SPI_fnumber(RelationGetDescr(rel), "id"),
										   RelationGetDescr(rel), &isnull));
	if (isnull)
		elog(ERROR, "signalr_bp.stream row without an id");

	if (TRIGGER_FIRED_BY_INSERT(trig->tg_event))
	{
		char	   *token = SPI_getvalue(trig->tg_trigtuple, RelationGetDescr(rel),
										 SPI_fnumber(RelationGetDescr(rel), "token"));

		if (token == NULL || strlen(token) != SBP_TOKEN_CHARS)
			elog(ERROR, "signalr_bp.stream row without a channel token");
		sbp_state_reserve(catalog, stream_id, token);
		sbp_add_action(SBP_CREATED, MyDatabaseId, catalog, stream_id);
	}
	else if (TRIGGER_FIRED_BY_DELETE(trig->tg_event))
	{
		sbp_publish_forget(stream_id);
		sbp_add_action(SBP_DELETED, MyDatabaseId, catalog, stream_id);
	}
	return PointerGetDatum(NULL);
}

/* Is relid the stream catalog of signalr_bp in this database? */
static bool
sbp_is_stream_catalog(Oid relid)
{
	char	   *name;
	char	   *nsp;
	bool		result;

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return false;
	name = get_rel_name(relid);
	nsp = get_namespace_name(get_rel_namespace(relid));
	result = name != NULL && nsp != NULL &&
		strcmp(name, "stream") == 0 && strcmp(nsp, "signalr_bp") == 0;
	return result;
}

/* DROP EXTENSION (the stream catalog goes) and DROP DATABASE release entries. */
static void
sbp_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId,
				  void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access != OAT_DROP)
		return;
	if (classId == DatabaseRelationId)
		sbp_add_action(SBP_DATABASE_DROPPED, objectId, InvalidOid, 0);
	else if (classId == RelationRelationId && subId == 0 && sbp_is_stream_catalog(objectId))
	{
		sbp_publish_forget_all();
		sbp_add_action(SBP_CATALOG_DROPPED, MyDatabaseId, objectId, 0);
	}
}

/* Install the object access hook (from _PG_init, when preloaded). */
void
sbp_lifecycle_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = sbp_object_access;
}
