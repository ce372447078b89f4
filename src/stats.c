/*
 * stats.c: the counters behind the signalr_bp.streams view.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_stream_stats);

typedef struct SbpStatsOut
{
	Tuplestorestate *tupstore;
	TupleDesc	tupdesc;
} SbpStatsOut;

static void
sbp_stats_row(SbpStreamState *st, void *arg)
{
	SbpStatsOut *out = (SbpStatsOut *) arg;
	Datum		values[10];
	bool		nulls[10] = {0};
	uint64		last = pg_atomic_read_u64(&st->last_fetch_offset);

	values[0] = Int32GetDatum(st->stream_id);
	values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&st->head));
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&st->messages));
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&st->bytes));
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&st->commits));
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&st->wakeups));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&st->fetches));
	values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&st->replays));
	if (last == PG_UINT64_MAX)
		nulls[8] = nulls[9] = true;
	else
	{
		values[8] = Int64GetDatum((int64) last);
		values[9] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&st->last_fetch_at));
	}
	tuplestore_putvalues(out->tupstore, out->tupdesc, values, nulls);
}

/* _stream_stats() RETURNS SETOF record: shared counters of this database's streams */
Datum
sbp_stream_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SbpStatsOut out;
	TupleDesc	tupdesc;
	MemoryContext old;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	out.tupdesc = CreateTupleDescCopy(tupdesc);
	out.tupstore = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);

	sbp_foreach_state(MyDatabaseId, sbp_stream_table(), sbp_stats_row, &out);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = out.tupstore;
	rsinfo->setDesc = out.tupdesc;
	return (Datum) 0;
}
