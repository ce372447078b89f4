/*
 * stats.c: the counters behind the signalr_bp.streams view.
 *
 * They live in the streams' shared state (shmem.c): atomics, read without
 * locks.  A caller sees the counters of the streams it may use only.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/timestamp.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_stream_stats);

/*
 * _stream_stats(stream text) RETURNS record: the stream's counters since
 * server start, or NULL when it has no shared state (not preloaded, or no
 * commit or fetch since start).
 */
Datum
sbp_stream_stats(PG_FUNCTION_ARGS)
{
	char	   *name;
	SbpStream	s;
	SbpStreamState *st;
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {0};
	uint64		last;

	sbp_guard();
	name = sbp_stream_name_arg(PG_GETARG_TEXT_PP(0));
	sbp_lookup_stream(name, false, &s);
	st = sbp_stream_state(s.catalog, s.id, NULL);
	if (st == NULL)
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	last = pg_atomic_read_u64(&st->last_fetch_offset);
	values[0] = Int64GetDatum((int64) pg_atomic_read_u64(&st->messages));
	values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&st->bytes));
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&st->commits));
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&st->wakeups));
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&st->fetches));
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&st->replays));
	if (last == PG_UINT64_MAX)
		nulls[6] = nulls[7] = true;
	else
	{
		values[6] = Int64GetDatum((int64) last);
		values[7] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&st->last_fetch_at));
	}
	sbp_state_unpin(st);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
