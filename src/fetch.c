/*
 * fetch.c: reading streams -- fetch and fetch_packed, with long-poll waits.
 *
 * Chunks of one stream are read segment by segment in generation order and,
 * within a segment, in offset order.  Writers pick the current segment while
 * holding the stream's commit lock, so a newer segment never holds a smaller
 * offset of the same stream than an older one.  Reads use a fresh snapshot
 * (GetLatestSnapshot) whatever the caller's isolation level: a consumer always
 * sees every transaction committed before the call.
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
/*
 * libpq/libpq.h (pq_flush) includes libpq-be.h, which includes
 * <gssapi/gssapi.h> when the server was built with GSSAPI; server-dev
 * packages do not always bring those headers.  Nothing here uses GSSAPI.
 */
#undef ENABLE_GSS
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_fetch);
PG_FUNCTION_INFO_V1(sbp_fetch_packed);
PG_FUNCTION_INFO_V1(sbp_follow);

/*
 * One call returns at most this much: larger max_bytes and max_messages are
 * clamped (a request for "everything" is served in parts, not refused for
 * lack of memory).  The first message is always returned, whatever its size.
 */
#define SBP_MAX_FETCH_BYTES (64 * 1024 * 1024)
#define SBP_MAX_FETCH_MESSAGES 1000000
/* fetch_packed's header per message: int64 offset, int32 length */
#define SBP_PACKED_HEADER 12
/* A sleeping long poll looks this often whether DROP EXTENSION waits for it. */
#define SBP_DROP_CHECK_MS 1000

/* Where fetched messages go: rows of a tuplestore, or one packed buffer. */
typedef struct SbpSink
{
	Tuplestorestate *tupstore;	/* fetch */
	TupleDesc	tupdesc;
	StringInfo	packed;			/* fetch_packed */
	int64		max_messages;
	int64		max_bytes;
	int64		horizon;		/* deliver only offsets below this */
	bool		stop;			/* this read is complete */
	int64		count;
	int64		bytes;
	int64		next_offset;
} SbpSink;

/* Full: no more messages wanted, or the byte budget is spent. */
static bool
sbp_sink_full(SbpSink *sink)
{
	return sink->stop || sink->count >= sink->max_messages ||
		(sink->count > 0 && sink->bytes >= sink->max_bytes);
}

/*
 * What a message costs the byte budget: its payload, and for fetch_packed
 * its header too (so that empty messages cannot grow the value unbounded).
 */
static int64
sbp_sink_cost(SbpSink *sink, uint32 len)
{
	return (int64) len + (sink->packed ? SBP_PACKED_HEADER : 0);
}

/* Would this payload overrun the byte budget?  The first message always fits. */
static bool
sbp_sink_fits(SbpSink *sink, uint32 len)
{
	return sink->count == 0 || sink->bytes + sbp_sink_cost(sink, len) <= sink->max_bytes;
}

static void
sbp_sink_put(SbpSink *sink, int64 offset, const char *payload, uint32 len)
{
	if (sink->tupstore)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		bytea	   *b = (bytea *) palloc(VARHDRSZ + len);

		SET_VARSIZE(b, VARHDRSZ + len);
		memcpy(VARDATA(b), payload, len);
		values[0] = Int64GetDatum(offset);
		values[1] = PointerGetDatum(b);
		tuplestore_putvalues(sink->tupstore, sink->tupdesc, values, nulls);
		pfree(b);
	}
	else
	{
		uint64		o = pg_hton64((uint64) offset);
		uint32		l = pg_hton32(len);

		appendBinaryStringInfo(sink->packed, (char *) &o, sizeof(o));
		appendBinaryStringInfo(sink->packed, (char *) &l, sizeof(l));
		appendBinaryStringInfo(sink->packed, payload, len);
	}
	sink->count++;
	sink->bytes += sbp_sink_cost(sink, len);
	sink->next_offset = offset + 1;
}

/* Unpack one chunk into the sink, skipping offsets below from. */
static void
sbp_unpack_chunk(SbpSink *sink, int64 first, int64 last, bytea *data, int64 from)
{
	const char *p = VARDATA_ANY(data);
	const char *end = p + VARSIZE_ANY_EXHDR(data);
	int64		offset = first;

	while (p < end && offset <= last && !sbp_sink_full(sink))
	{
		uint32		len;

		if (end - p < 4)
			elog(ERROR, "corrupt chunk at offset " INT64_FORMAT, offset);
		memcpy(&len, p, 4);
		len = pg_ntoh32(len);
		p += 4;
		if ((uint64) (end - p) < len)
			elog(ERROR, "corrupt chunk at offset " INT64_FORMAT, offset);
		if (offset >= sink->horizon)
		{
			sink->stop = true;	/* an earlier commit is still in flight */
			return;
		}
		if (offset >= from)
		{
			if (!sbp_sink_fits(sink, len))
			{
				sink->stop = true;
				return;
			}
			sbp_sink_put(sink, offset, p, len);
		}
		p += len;
		offset++;
	}
}

typedef struct SbpChunkArg
{
	SbpSink    *sink;
	int64		from;
	int			pos;			/* the segment's place in the view, oldest first */
	int			seen_pos;		/* the newest place a chunk was seen in, or -1 */
	int64		seen_first;		/* that chunk's first offset */
} SbpChunkArg;

static bool
sbp_take_chunk(void *arg, int64 first, int64 last, bytea *data)
{
	SbpChunkArg *a = arg;

	if (a->pos > a->seen_pos)
	{
		a->seen_pos = a->pos;
		a->seen_first = first;
	}
	sbp_unpack_chunk(a->sink, first, last, data, a->from);
	return !sbp_sink_full(a->sink);
}

/*
 * Where this backend's last read of a stream saw a chunk: a segment's place
 * in the view and the chunk's first offset, valid while the views are (mark).
 * Older segments hold only smaller offsets than any chunk of a newer one
 * (writers pick the segment under the commit lock), so a read from that
 * offset on skips them: a follower woken by each commit scans one segment,
 * not SBP_SEGMENTS (their index descents were half of a wake-up's cost).
 */
static struct
{
	uint64		mark;
	Oid			catalog;
	int32		stream_id;
	int			pos;
	int64		first;
}			sbp_read_hint;		/* catalog InvalidOid: none yet */

/*
 * Offsets below this are committed durably or aborted (PG_INT64_MAX without
 * shared state: a commit is visible only once it is durable then).  Slots
 * still waiting for their commit's LSN are settled here if the launcher is
 * absent or late.
 */
static int64
sbp_read_horizon(SbpStreamState *state)
{
	bool		waiting;
	int64		horizon;

	if (state == NULL)
		return PG_INT64_MAX;
	horizon = sbp_horizon(state, &waiting);
	if (waiting && sbp_settle_stream(state))
		horizon = sbp_horizon(state, NULL);
	return horizon;
}

/*
 * One read of the stream from `from`, under a fresh snapshot.  Returns the
 * number of messages put in the sink.  Raises SB001 when from is below the
 * retained range and SB002 when it is beyond the head.
 */
static int64
sbp_read_once(const SbpStream *s, SbpStreamState *state, int64 from, SbpSink *sink)
{
	SbpStreamView view;
	uint64		mark;
	int64		low;
	int64		before = sink->count;
	SbpChunkArg arg;
	bool		hint_ok;
	int			start = 0;

	/* the horizon first, then the snapshot: all below it is decided and visible */
	sink->horizon = sbp_read_horizon(state);
	sink->stop = false;
	mark = sbp_view_mark();
	PushActiveSnapshot(GetLatestSnapshot());
	if (!sbp_stream_view_try(s->id, mark, &view))
	{
		if (state)
			sbp_state_gone(state);
		sbp_stream_dropped_error(s->name);
	}
	low = view.low_offset;
	if (from < low)
		ereport(ERROR,
				(errcode(ERRCODE_SBP_MESSAGES_LOST),
				 errmsg("messages before offset " INT64_FORMAT " of stream \"%s\" are no longer available",
						low, s->name),
				 errdetail("The consumer asked for offset " INT64_FORMAT ".%s", from,
						   s->durable ? " They were removed by retention." :
						   " They were removed by retention or lost in a server crash."),
				 errhint("Resynchronize the consumer's state, then resume from offset " INT64_FORMAT ".",
						 low)));

	/* the views this snapshot sees are those of mark: the hint may be used and kept */
	hint_ok = sbp_view_still_valid(mark);
	if (hint_ok && sbp_read_hint.mark == mark && sbp_read_hint.catalog == s->catalog &&
		sbp_read_hint.stream_id == s->id && from >= sbp_read_hint.first)
		start = sbp_read_hint.pos;
	arg.sink = sink;
	arg.from = from;
	arg.seen_pos = -1;
	for (int i = start; i < SBP_SEGMENTS && !sbp_sink_full(sink); i++)
	{
		arg.pos = i;
		sbp_scan_chunks(s->durable, view.slots[i], s->id, from, sbp_take_chunk, &arg);
	}
	if (hint_ok && arg.seen_pos >= 0)
	{
		sbp_read_hint.mark = mark;
		sbp_read_hint.catalog = s->catalog;
		sbp_read_hint.stream_id = s->id;
		sbp_read_hint.pos = arg.seen_pos;
		sbp_read_hint.first = arg.seen_first;
	}

	/*
	 * Nothing read: is from beyond the head?  Not if it is the start of the
	 * retained range, or not above the next offset the shared state knows
	 * of (an idle long poll at the head skips the probe).
	 */
	if (sink->count == before && from > low &&
		(sink->horizon == PG_INT64_MAX || from > sink->horizon))
	{
		int64		head = sbp_probe_head(s->id, s->durable, &view);

		if (from > head)
			ereport(ERROR,
					(errcode(ERRCODE_SBP_OFFSET_AHEAD),
					 errmsg("offset " INT64_FORMAT " is beyond the head of stream \"%s\"",
							from, s->name),
					 errdetail("The next message will get offset " INT64_FORMAT ".", head),
					 errhint("The stream lost committed messages (a crash of a fast stream, or a failover without synchronous replication); resynchronize the consumer.")));
	}
	PopActiveSnapshot();
	return sink->count - before;
}

/*
 * A consumer's backend allocates, fills and frees a result of up to max_bytes
 * (1 MB by default) several times per fetch: the sink, the result tuple and
 * the protocol buffers.  With glibc's defaults such blocks are mmapped or
 * trimmed back to the kernel when freed, and every fetch pays a page fault
 * per 4 kB again (a quarter of the server's CPU at 400,000 messages/s).
 * Keep them in the heap, for this backend only: it is a consumer's session.
 */
static void
sbp_consumer_malloc_tuning(void)
{
	static bool done = false;

	if (done)
		return;
	done = true;
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD)
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

/* Read, and if nothing is there, wait up to wait_ms for a commit to the stream. */
static void
sbp_read_wait(const SbpStream *s, int64 from, int32 wait_ms, SbpSink *sink)
{
	SbpStreamState *state;
	TimestampTz deadline = GetCurrentTimestamp() + (TimestampTz) Max(wait_ms, 0) * 1000;
	Oid			saved_user;
	int			saved_sec;

	if (from < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("from_offset must not be negative")));
	/* pinned until the end of the call (or of the transaction, on error) */
	state = sbp_stream_state(s->catalog, s->id, s->token);
	sink->next_offset = from;
	sbp_consumer_malloc_tuning();

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (;;)
	{
		uint64		changes = state ? pg_atomic_read_u64(&state->changes) : 0;
		long		remaining;

		if (sbp_read_once(s, state, from, sink) > 0 || wait_ms <= 0)
			break;
		remaining = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (remaining <= 0)
			break;

		/*
		 * A long poll holds the extension lock and its reads' relation
		 * locks: when DROP EXTENSION (or anyone) waits for the extension
		 * lock, end now with nothing rather than hold it up until the
		 * deadline.  Checked at least every SBP_DROP_CHECK_MS.
		 */
		if (sbp_extension_wanted())
			break;
		remaining = Min(remaining, SBP_DROP_CHECK_MS);
		if (state)
		{
			bool		waiting;

			/*
			 * Commits waiting to be durable are settled by the launcher,
			 * which wakes us; without it, readers settle them (when no
			 * synchronous standby must confirm them): look again soon.
			 */
			(void) sbp_horizon(state, &waiting);
			if (waiting && !sbp_launcher_running() && !sbp_standbys_named())
				remaining = Min(remaining, sbp_poll_interval);
			ConditionVariablePrepareToSleep(&state->cv);
			if (pg_atomic_read_u64(&state->changes) == changes)
				(void) ConditionVariableTimedSleep(&state->cv, remaining,
												   SBP_WAIT_EVENT("SignalrBpFetchWait"));
			ConditionVariableCancelSleep();
		}
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(remaining, sbp_poll_interval),
							 SBP_WAIT_EVENT("SignalrBpFetchWait"));
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);

	if (state)
	{
		uint64		served = pg_atomic_read_u64(&state->served);

		pg_atomic_fetch_add_u64(&state->fetches, 1);
		if ((uint64) from < served)
			pg_atomic_fetch_add_u64(&state->replays, 1);
		while ((uint64) sink->next_offset > served &&
			   !pg_atomic_compare_exchange_u64(&state->served, &served,
											   (uint64) sink->next_offset))
			;
		pg_atomic_write_u64(&state->last_fetch_offset, (uint64) sink->next_offset);
		pg_atomic_write_u64(&state->last_fetch_at, (uint64) GetCurrentTimestamp());
		sbp_state_unpin(state);
	}
}

/*
 * The durable head of a stream: the offset its next message will get, or
 * the first offset of a commit that is not yet durable (or still
 * committing).  Every offset below it is durable and visible.
 */
int64
sbp_stream_head(const SbpStream *s)
{
	SbpStreamState *state = sbp_stream_state(s->catalog, s->id, NULL);
	int64		horizon = sbp_read_horizon(state);
	SbpStreamView view;
	Oid			saved_user;
	int			saved_sec;
	int64		head;

	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetLatestSnapshot());
	sbp_stream_view(s->id, s->name, SBP_NO_VIEW_MARK, &view);
	head = Min(sbp_probe_head(s->id, s->durable, &view), horizon);
	PopActiveSnapshot();
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
	if (state)
		sbp_state_unpin(state);
	return head;
}

static void
sbp_fetch_args(FunctionCallInfo fcinfo, SbpStream *s, int64 *from, int32 *limit,
			   int32 *wait_ms, const char *limit_name)
{
	char	   *name;

	sbp_guard();
	name = sbp_stream_name_arg(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("from_offset must not be null")));
	for (int i = 2; i <= 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", i == 2 ? limit_name : "wait_ms")));
	if (PG_GETARG_INT32(2) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a positive number", limit_name)));
	if (PG_GETARG_INT32(3) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wait_ms must not be negative")));
	*from = PG_GETARG_INT64(1);
	*limit = PG_GETARG_INT32(2);
	*wait_ms = PG_GETARG_INT32(3);
	sbp_lookup_stream(name, false, s);
}

/* fetch(stream, from_offset, max_messages, wait_ms) RETURNS TABLE(msg_offset, payload) */
Datum
sbp_fetch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SbpStream	s;
	int64		from;
	int32		limit;
	int32		wait_ms;
	SbpSink		sink = {0};
	MemoryContext oldcxt;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	sbp_fetch_args(fcinfo, &s, &from, &limit, &wait_ms, "max_messages");

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	sink.tupdesc = CreateTupleDescCopy(tupdesc);
	sink.tupstore = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);
	sink.max_messages = Min(limit, SBP_MAX_FETCH_MESSAGES);
	sink.max_bytes = PG_INT64_MAX;

	sbp_read_wait(&s, from, wait_ms, &sink);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = sink.tupstore;
	rsinfo->setDesc = sink.tupdesc;
	return (Datum) 0;
}

/*
 * Read (as sbp_read_wait) into one bytea of packed messages, after `header`
 * bytes left for the caller; the varlena header is reserved up front, so
 * the result needs no copy.  message_count is an integer: at most
 * PG_INT32_MAX messages.
 */
static bytea *
sbp_read_packed(const SbpStream *s, int64 from, int32 limit, int32 wait_ms, int header,
				SbpSink *sink)
{
	StringInfoData buf;
	bytea	   *out;

	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ + header);
	sink->packed = &buf;
	sink->max_messages = PG_INT32_MAX;
	sink->max_bytes = Min(limit, SBP_MAX_FETCH_BYTES);
	sbp_read_wait(s, from, wait_ms, sink);
	sink->packed = NULL;
	out = (bytea *) buf.data;
	SET_VARSIZE(out, buf.len);
	return out;
}

/* fetch_packed(stream, from_offset, max_bytes, wait_ms) RETURNS (next_offset, message_count, messages) */
Datum
sbp_fetch_packed(PG_FUNCTION_ARGS)
{
	SbpStream	s;
	int64		from;
	int32		limit;
	int32		wait_ms;
	SbpSink		sink = {0};
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	bytea	   *out;

	sbp_fetch_args(fcinfo, &s, &from, &limit, &wait_ms, "max_bytes");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	out = sbp_read_packed(&s, from, limit, wait_ms, 0, &sink);
	values[0] = Int64GetDatum(sink.next_offset);
	values[1] = Int32GetDatum((int32) sink.count);
	values[2] = PointerGetDatum(out);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* follow's state across its rows */
typedef struct SbpFollow
{
	SbpStream	stream;
	int64		next;			/* the offset the next row starts at */
	int32		limit;
	TimestampTz deadline;
} SbpFollow;

/*
 * follow(stream, from_offset, max_bytes, wait_ms) RETURNS SETOF bytea
 *
 * fetch_packed as a stream of rows: for wait_ms, a row each time committed
 * messages are read, [int64 next_offset] then fetch_packed's messages.  A
 * consumer pays one statement per wait_ms instead of one per wake-up: called
 * in the select list, each row is flushed to the client before the next read
 * (elsewhere the rows are collected and arrive at the end, still correct).
 * The statement holds its snapshot's xmin for up to wait_ms, as a long poll
 * of fetch_packed does.
 */
Datum
sbp_follow(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	SbpFollow  *f;
	SbpSink		sink = {0};
	long		remaining;
	bytea	   *out;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		int32		wait_ms;

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		f = palloc0(sizeof(SbpFollow));
		sbp_fetch_args(fcinfo, &f->stream, &f->next, &f->limit, &wait_ms, "max_bytes");
		f->deadline = GetCurrentTimestamp() + (TimestampTz) wait_ms * 1000;
		funcctx->user_fctx = f;
		MemoryContextSwitchTo(oldcxt);
	}
	/* the previous row (or the row description) is in the output buffer: send it now */
	if (whereToSendOutput == DestRemote)
		pq_flush();
	funcctx = SRF_PERCALL_SETUP();
	f = (SbpFollow *) funcctx->user_fctx;

	remaining = (long) ((f->deadline - GetCurrentTimestamp()) / 1000);
	/* the first row may also be a plain read: go on only while time is left */
	if (remaining <= 0 && funcctx->call_cntr > 0)
		SRF_RETURN_DONE(funcctx);
	out = sbp_read_packed(&f->stream, f->next, f->limit, (int32) Max(remaining, 0),
						  sizeof(int64), &sink);
	if (sink.count == 0)
		SRF_RETURN_DONE(funcctx);
	f->next = sink.next_offset;
	{
		uint64		n = pg_hton64((uint64) sink.next_offset);

		memcpy(VARDATA(out), &n, sizeof(n));
	}
	SRF_RETURN_NEXT(funcctx, PointerGetDatum(out));
}
