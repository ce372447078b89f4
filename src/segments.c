/*
 * segments.c: what the commit path and the readers ask of the catalog and
 * the segment ring, as cached SPI plans run under the caller's snapshot.
 *
 * Callers are connected to SPI, run as the extension owner, and have pushed
 * the snapshot they want (a fresh one: see publish.c and fetch.c).  Every
 * query is schema-qualified, operators included, so no search_path matters.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"

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

/*
 * One round trip for what both paths need: the stream's retained range
 * start, its class's segment slots oldest first, and (fast streams) whether
 * its crash marker survives.  Errors if the stream was dropped meanwhile.
 */
void
sbp_stream_view(int32 stream_id, const char *name, SbpStreamView *view)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(stream_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum	   *slots;
	int			nslots;
	int			rc;

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
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" was dropped by a concurrent transaction", name)));
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
