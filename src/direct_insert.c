/*
 * direct_insert.c: a row and its index entries written without the executor.
 *
 * The commit path appends a chunk per transaction and claims a batch key per
 * send; through SPI each cost an executor start, a plan cache lookup and a
 * permission check, a large part of a small send's backend time.  Both
 * tables are the extension's own: plain columns, no triggers, no
 * constraints beyond NOT NULL (every value given is set), indexes without
 * expressions or predicates.  heap_insert() toasts and WAL-logs as the
 * executor's insert would.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "catalog/index.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

#include "signalr_bp.h"

/*
 * Inserts a row (values for all columns, none null) into rel, opened with
 * RowExclusiveLock, and into each of its indexes.  Unique indexes are
 * checked without waiting or raising an error: false when one may already
 * hold the row's key (the row is in then; the caller deletes it by *tid).
 */
bool
sbp_insert_direct(Relation rel, Datum *values, int nvalues, ItemPointer tid)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		nulls[MaxHeapAttributeNumber] = {false};
	HeapTuple	tup;
	TupleTableSlot *slot;
	List	   *indexes;
	ListCell   *lc;
	bool		unique = true;

	if (desc->natts != nvalues)
		elog(ERROR, "table \"%s\" does not have the columns this module writes",
			 RelationGetRelationName(rel));
	tup = heap_form_tuple(desc, values, nulls);
	simple_heap_insert(rel, tup);
	if (tid)
		*tid = tup->t_self;
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tup, slot, false);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(index);
		Datum		ivalues[INDEX_MAX_KEYS];
		bool		inulls[INDEX_MAX_KEYS];

		if (info->ii_Expressions != NIL || info->ii_Predicate != NIL)
			elog(ERROR, "index \"%s\" has expressions or a predicate",
				 RelationGetRelationName(index));
		FormIndexDatum(info, slot, NULL, ivalues, inulls);
		/* the result means something only under UNIQUE_CHECK_PARTIAL (btree says false otherwise) */
		if (!index_insert(index, ivalues, inulls, &tup->t_self, rel,
						  info->ii_Unique ? UNIQUE_CHECK_PARTIAL : UNIQUE_CHECK_NO, false, info)
			&& info->ii_Unique)
			unique = false;
		index_close(index, NoLock);
	}
	list_free(indexes);
	ExecDropSingleTupleTableSlot(slot);
	heap_freetuple(tup);
	return unique;
}
