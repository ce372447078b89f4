/*
 * segments.c: what the commit path and the readers ask of the catalog and
 * the segment ring: cached SPI plans run under the caller's snapshot, and
 * chunk appends and scans that go to the segment tables directly.
 *
 * Callers are connected to SPI, run as the extension owner, and have pushed
 * the snapshot they want (a fresh one: see publish.c and fetch.c).  Every
 * query is schema-qualified, operators included, so no search_path matters.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "signalr_bp.h"

static SPIPlanPtr sbp_plans[SBP_PLAN_COUNT];

const char *
sbp_segment_table(bool durable, int slot)
{
	static const char *const names[2][SBP_SEGMENTS] = {
		{"signalr_bp.seg_f0", "signalr_bp.seg_f1", "signalr_bp.seg_f2", "signalr_bp.seg_f3"},
		{"signalr_bp.seg_d0", "signalr_bp.seg_d1", "signalr_bp.seg_d2", "signalr_bp.seg_d3"},
	};

	Assert(slot >= 0 && slot < SBP_SEGMENTS);
	return names[durable ? 1 : 0][slot];
}

/*
 * The OIDs of the segment tables and their indexes, looked up once per
 * backend rather than by name on every read and commit.  Forgotten when any
 * of them is invalidated (a TRUNCATE by retention too: a cheap look-up
 * again), so a re-created extension is found.
 */
typedef struct SbpSegmentOids
{
	Oid			relid;
	Oid			indexid;
} SbpSegmentOids;

static SbpSegmentOids sbp_segment_cache[2][SBP_SEGMENTS];

static void
sbp_segment_oids(bool durable, int slot, Oid *relid, Oid *indexid)
{
	SbpSegmentOids *c = &sbp_segment_cache[durable ? 1 : 0][slot];

	if (!OidIsValid(c->relid) || !OidIsValid(c->indexid))
	{
		const char *table = sbp_segment_table(durable, slot) + strlen("signalr_bp.");
		Oid			nsp = get_namespace_oid("signalr_bp", false);
		char		index_name[NAMEDATALEN];

		snprintf(index_name, sizeof(index_name), "%s_stream_last", table);
		c->relid = get_relname_relid(table, nsp);
		c->indexid = get_relname_relid(index_name, nsp);
		if (!OidIsValid(c->relid) || !OidIsValid(c->indexid))
		{
			c->relid = c->indexid = InvalidOid;
			elog(ERROR, "segment table signalr_bp.%s or its index is missing", table);
		}
	}
	*relid = c->relid;
	*indexid = c->indexid;
}

/* Relcache invalidation of relid (InvalidOid: all): drop cached OIDs if ours. */
void
sbp_segments_invalidate(Oid relid)
{
	for (int d = 0; d < 2; d++)
		for (int i = 0; i < SBP_SEGMENTS; i++)
			if (!OidIsValid(relid) || sbp_segment_cache[d][i].relid == relid ||
				sbp_segment_cache[d][i].indexid == relid)
			{
				memset(sbp_segment_cache, 0, sizeof(sbp_segment_cache));
				return;
			}
}

/*
 * Append the chunk [first, last] of a stream to a segment, without the
 * executor (direct_insert.c): one heap tuple and one index entry.
 */
void
sbp_append_chunk(bool durable, int slot, int32 stream_id, int64 first, int64 last,
				 bytea *data)
{
	Oid			relid;
	Oid			indexid;
	Relation	rel;
	Datum		values[4] = {
		Int32GetDatum(stream_id), Int64GetDatum(first), Int64GetDatum(last),
		PointerGetDatum(data)
	};

	sbp_segment_oids(durable, slot, &relid, &indexid);
	rel = table_open(relid, RowExclusiveLock);
	(void) sbp_insert_direct(rel, values, lengthof(values), NULL);
	table_close(rel, NoLock);
}

/*
 * Scan one segment's chunks of a stream with last_offset >= from, in offset
 * order, under the active snapshot, calling fn until it returns false.
 *
 * A direct ordered index scan rather than a query: the segment tables are
 * never analyzed (their contents churn by design), and a planner guessing
 * without statistics may sort a whole segment for every fetch.
 */
void
sbp_scan_chunks(bool durable, int slot, int32 stream_id, int64 from,
				SbpChunkFn fn, void *arg)
{
	Oid			relid;
	Oid			indexid;
	Relation	rel;
	Relation	index;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;

	sbp_segment_oids(durable, slot, &relid, &indexid);
	rel = table_open(relid, AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(stream_id));
	ScanKeyInit(&keys[1], 3, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
	scan = systable_beginscan_ordered(rel, index, GetActiveSnapshot(), 2, keys);
	while ((tup = systable_getnext_ordered(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		int64		first = DatumGetInt64(heap_getattr(tup, 2, desc, &isnull));
		int64		last = DatumGetInt64(heap_getattr(tup, 3, desc, &isnull));
		Datum		raw = heap_getattr(tup, 4, desc, &isnull);
		bytea	   *data = DatumGetByteaPP(raw);
		bool		more = fn(arg, first, last, data);

		if ((Pointer) data != DatumGetPointer(raw))
			pfree(data);
		if (!more)
			break;
	}
	systable_endscan_ordered(scan);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* Index of a per-segment plan: base + class * SBP_SEGMENTS + slot. */
int
sbp_plan_slot(int base, bool durable, int slot)
{
	return base + (durable ? SBP_SEGMENTS : 0) + slot;
}

/* Prepare (once per backend) and return a kept plan. */
SPIPlanPtr
sbp_plan(int which, const char *sql, int nargs, Oid *argtypes)
{
	Assert(which >= 0 && which < SBP_PLAN_COUNT);
	if (sbp_plans[which] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		sbp_plans[which] = plan;
	}
	return sbp_plans[which];
}

PG_FUNCTION_INFO_V1(sbp_view_changed_sql);

/* _view_changed(): this transaction rotates segments (called by _rotate) */
Datum
sbp_view_changed_sql(PG_FUNCTION_ARGS)
{
	sbp_guard();
	sbp_view_changed();
	PG_RETURN_VOID();
}

/* The last view read by this backend, and the view generation it belongs to. */
static struct
{
	bool		valid;
	Oid			catalog;
	int32		stream_id;
	uint64		mark;
	SbpStreamView view;
}			sbp_view_cache;

/*
 * One round trip for what both paths need: the stream's retained range
 * start, its class's segment slots oldest first, and (fast streams) whether
 * its crash marker survives.
 *
 * The caller took sbp_view_mark() before the snapshot it reads under.  While
 * no transaction changed views since the remembered view was read, that view
 * is what this query would return, and the round trip is skipped: at 500,000
 * messages/s it cost more than the reads themselves.  Returns false when the
 * stream's row is not there: it was dropped.
 */
bool
sbp_stream_view_try(int32 stream_id, uint64 mark, SbpStreamView *view)
{
	Oid			catalog = sbp_stream_table();
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(stream_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum	   *slots;
	int			nslots;
	int			rc;

	if (sbp_view_cache.valid && sbp_view_cache.catalog == catalog &&
		sbp_view_cache.stream_id == stream_id &&
		sbp_view_still_valid(sbp_view_cache.mark))
	{
		*view = sbp_view_cache.view;
		return true;
	}

	rc = SPI_execute_plan(sbp_plan(SBP_PLAN_VIEW,
								   "SELECT s.low_offset,"
								   " (SELECT pg_catalog.array_agg(g.slot ORDER BY g.generation)"
								   "    FROM signalr_bp.segment g"
								   "   WHERE g.durable OPERATOR(pg_catalog.=) s.durable),"
								   " EXISTS (SELECT FROM signalr_bp.fast_alive a"
								   "   WHERE a.stream_id OPERATOR(pg_catalog.=) s.id)"
								   " FROM signalr_bp.stream s WHERE s.id OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						  values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "stream lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	view->low_offset = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 2, &isnull)),
					  INT4OID, 4, true, TYPALIGN_INT, &slots, NULL, &nslots);
	if (nslots != SBP_SEGMENTS)
		elog(ERROR, "segment ring has %d slots, expected %d", nslots, SBP_SEGMENTS);
	for (int i = 0; i < SBP_SEGMENTS; i++)
		view->slots[i] = DatumGetInt32(slots[i]);
	view->alive = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));

	sbp_view_cache.valid = mark != SBP_NO_VIEW_MARK;
	sbp_view_cache.catalog = catalog;
	sbp_view_cache.stream_id = stream_id;
	sbp_view_cache.mark = mark;
	sbp_view_cache.view = *view;
	return true;
}

/* The stream's row is gone: another transaction dropped it and committed. */
void
sbp_stream_dropped_error(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("stream \"%s\" was dropped by a concurrent transaction", name)));
}

/* sbp_stream_view_try(), with an error when the stream was dropped. */
void
sbp_stream_view(int32 stream_id, const char *name, uint64 mark, SbpStreamView *view)
{
	if (!sbp_stream_view_try(stream_id, mark, view))
		sbp_stream_dropped_error(name);
}

/*
 * Offset the next message of the stream gets: one past the newest chunk,
 * probing segments newest first, and never below low_offset.
 */
int64
sbp_probe_head(int32 stream_id, bool durable, const SbpStreamView *view)
{
	int64		head = view->low_offset;

	for (int i = SBP_SEGMENTS - 1; i >= 0; i--)
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(stream_id)};
		bool		isnull;
		Datum		max;
		int			rc;
		char		sql[160];

		snprintf(sql, sizeof(sql),
				 "SELECT pg_catalog.max(last_offset) FROM %s"
				 " WHERE stream_id OPERATOR(pg_catalog.=) $1",
				 sbp_segment_table(durable, view->slots[i]));
		rc = SPI_execute_plan(sbp_plan(sbp_plan_slot(SBP_PLAN_MAX, durable, view->slots[i]),
									   sql, 1, argtypes),
							  values, NULL, true, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "head probe failed: %s", SPI_result_code_string(rc));
		max = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			head = Max(head, DatumGetInt64(max) + 1);
			break;
		}
	}
	return head;
}
