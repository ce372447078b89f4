/*
 * publish.c: transactional append.
 *
 * publish() only buffers messages in the transaction's memory, per stream.
 * At pre-commit the buffer of each stream (in stream id order, so two
 * transactions never wait on each other in a cycle) is appended under an
 * exclusive per-stream transaction lock (the commit lock): offsets are
 * assigned and the messages are packed into chunk rows of the current
 * segment.  It is a lock per stream, taken only at commit, unlike NOTIFY's
 * cluster-wide one; producers of different streams never wait for each other,
 * and a producer's long transaction blocks nobody until it commits.
 *
 * Preloaded, the commit lock is released once the chunks are written and an
 * inflight slot in shared memory holds readers below the transaction's
 * offsets until its commit is visible *and durable*: an asynchronous commit
 * leaves its slot waiting for its commit LSN, which the launcher flushes and
 * has the synchronous standbys confirm (shmem.c).  Otherwise (not preloaded,
 * no free slot, no shared state) the lock is held until the commit is
 * visible, and a commit that appends to a durable stream is made synchronous
 * (synchronous_commit = on for that commit), so a reader never sees a
 * message a crash or a failover could take back.
 *
 * After commit, the stream's waiters are woken through shared memory and the
 * background worker is asked to send one batched NOTIFY.
 *
 * Savepoints: each buffered message remembers its subtransaction level;
 * rolling back to a savepoint drops the messages published since.  A stream
 * deleted by the same transaction takes its buffered messages with it.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_publish);
PG_FUNCTION_INFO_V1(sbp_publish_multi);
PG_FUNCTION_INFO_V1(sbp_publish_batch);

/* field4 of the advisory-style LOCKTAG of a stream's commit lock ('SB') */
#define SBP_LOCKTAG_FIELD4 0x5342

/* One stream's messages published by the current transaction. */
typedef struct SbpPending
{
	int32		stream_id;
	Oid			catalog;
	bool		durable;
	char	   *name;			/* for error messages */
	char		token[SBP_TOKEN_CHARS + 1];	/* for the shared state's wake-up channel */
	StringInfoData buf;			/* [uint32 length][payload] per message */
	int			nmsgs;
	int			cap;
	int		   *ends;			/* buf.len after each message */
	int		   *levels;			/* subtransaction nesting level of each */
	int			dropped_level;	/* > 0: this transaction deleted the stream */
	/* set at pre-commit */
	SbpStreamState *state;		/* shared state (pinned), or NULL */
	bool		allocated;		/* offsets taken from state */
	int			slot;			/* inflight slot, or -1 */
	int64		first;			/* first offset assigned */
} SbpPending;

static List *sbp_pending = NIL;	/* of SbpPending *, in TopTransactionContext */
static bool sbp_flushed = false;
static int	sbp_all_dropped_level = 0;	/* > 0: the stream catalog was dropped */

static SbpPending *
sbp_pending_for(const SbpStream *s)
{
	ListCell   *lc;
	SbpPending *p;
	MemoryContext old;

	foreach(lc, sbp_pending)
	{
		p = (SbpPending *) lfirst(lc);
		if (p->stream_id == s->id)
			return p;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc0(sizeof(SbpPending));
	p->stream_id = s->id;
	p->catalog = s->catalog;
	p->slot = -1;
	p->durable = s->durable;
	p->name = pstrdup(s->name);
	memcpy(p->token, s->token, sizeof(p->token));
	initStringInfo(&p->buf);
	p->cap = 16;
	p->ends = palloc(sizeof(int) * p->cap);
	p->levels = palloc(sizeof(int) * p->cap);
	sbp_pending = lappend(sbp_pending, p);
	MemoryContextSwitchTo(old);
	return p;
}

/* A caller's payload: not NULL, within signalr_bp.max_message_size. */
void
sbp_check_payload(bytea *payload)
{
	Size		len;

	if (payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message payload must not be null")));
	len = VARSIZE_ANY_EXHDR(payload);
	if (len > (Size) sbp_max_message_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("message payload is too large"),
				 errdetail("The payload has %zu bytes; signalr_bp.max_message_size is %d.",
						   len, sbp_max_message_size)));
}

/*
 * Buffer one message.  What one transaction buffers for one stream is
 * bounded (SBP_MAX_PENDING_BYTES, SBP_MAX_PENDING_MESSAGES), so that a huge
 * batch fails with a clear error rather than running out of memory.
 */
static void
sbp_append(SbpPending *p, bytea *payload)
{
	uint32		len = VARSIZE_ANY_EXHDR(payload);
	uint32		belen = pg_hton32(len);

	if ((Size) p->buf.len + sizeof(belen) + len > SBP_MAX_PENDING_BYTES ||
		p->nmsgs >= SBP_MAX_PENDING_MESSAGES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too much published to stream \"%s\" in one transaction", p->name),
				 errdetail("One transaction may publish up to %d messages and %d MB to one stream.",
						   SBP_MAX_PENDING_MESSAGES, SBP_MAX_PENDING_BYTES / (1024 * 1024)),
				 errhint("Publish in smaller transactions.")));
	if (p->nmsgs == p->cap)
	{
		p->cap *= 2;
		p->ends = repalloc(p->ends, sizeof(int) * p->cap);
		p->levels = repalloc(p->levels, sizeof(int) * p->cap);
	}
	appendBinaryStringInfo(&p->buf, (char *) &belen, sizeof(belen));
	appendBinaryStringInfo(&p->buf, VARDATA_ANY(payload), len);
	p->ends[p->nmsgs] = p->buf.len;
	p->levels[p->nmsgs] = GetCurrentTransactionNestLevel();
	p->nmsgs++;
}

/* First thing in every publish function: primary, extension lock, writable. */
static void
sbp_publish_checks(void)
{
	sbp_guard();
	PreventCommandIfReadOnly("signalr_bp.publish()");
}

/* Flatten a one-dimensional array argument, refusing NULL elements. */
static void
sbp_array_arg(ArrayType *arr, Oid elemtype, const char *what, Datum **elems, int *n)
{
	bool	   *nulls;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, elems, &nulls, n);
	for (int i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what)));
}

/*
 * Append a message the extension built itself (a SignalR envelope around a
 * payload that its caller checked with sbp_check_payload): the envelope's
 * own header and lists do not count against signalr_bp.max_message_size,
 * only against the per-transaction bounds.  The caller runs as the
 * extension's owner and has checked its own caller's access.
 */
void
sbp_publish_internal(const char *stream, bytea *message)
{
	SbpStream	s;

	sbp_publish_checks();
	sbp_lookup_stream(stream, false, &s);
	sbp_check_publishable(&s);
	sbp_append(sbp_pending_for(&s), message);
}

/* publish(stream text, payload bytea) RETURNS void */
Datum
sbp_publish(PG_FUNCTION_ARGS)
{
	char	   *name;
	bytea	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_BYTEA_PP(1);
	SbpStream	s;

	sbp_publish_checks();
	name = sbp_stream_name_arg(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	sbp_check_payload(payload);
	sbp_lookup_stream(name, false, &s);
	sbp_check_publishable(&s);
	sbp_append(sbp_pending_for(&s), payload);
	PG_RETURN_VOID();
}

/* publish(streams text[], payload bytea) RETURNS void */
Datum
sbp_publish_multi(PG_FUNCTION_ARGS)
{
	bytea	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_BYTEA_PP(1);
	Datum	   *names;
	int			n;
	SbpPending **targets;
	int			ntargets = 0;

	sbp_publish_checks();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("streams must not be null")));
	sbp_check_payload(payload);
	sbp_array_arg(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, "streams", &names, &n);

	/* resolve every name before appending anything; a stream named twice gets it once */
	targets = palloc(sizeof(SbpPending *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		SbpStream	s;
		SbpPending *p;
		bool		dup = false;

		sbp_lookup_stream(sbp_stream_name_arg(DatumGetTextPP(names[i])), false, &s);
		sbp_check_publishable(&s);
		p = sbp_pending_for(&s);
		for (int j = 0; j < ntargets && !dup; j++)
			dup = targets[j] == p;
		if (!dup)
			targets[ntargets++] = p;
	}
	for (int i = 0; i < ntargets; i++)
		sbp_append(targets[i], payload);
	PG_RETURN_VOID();
}

/* publish_batch(stream text, payloads bytea[]) RETURNS void */
Datum
sbp_publish_batch(PG_FUNCTION_ARGS)
{
	char	   *name;
	Datum	   *payloads;
	int			n;
	SbpStream	s;
	SbpPending *p;

	sbp_publish_checks();
	name = sbp_stream_name_arg(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payloads must not be null")));
	sbp_array_arg(PG_GETARG_ARRAYTYPE_P(1), BYTEAOID, "payloads", &payloads, &n);
	for (int i = 0; i < n; i++)
		sbp_check_payload(DatumGetByteaPP(payloads[i]));
	sbp_lookup_stream(name, false, &s);
	sbp_check_publishable(&s);
	p = sbp_pending_for(&s);
	for (int i = 0; i < n; i++)
		sbp_append(p, DatumGetByteaPP(payloads[i]));
	PG_RETURN_VOID();
}

/*
 * A fast stream whose marker row is gone lost its unlogged segments in a
 * crash (or this server was promoted): start a new epoch above every offset
 * the old one could have handed out, and make that the retained range's
 * start.  Returns the new low offset.
 */
static int64
sbp_fast_new_epoch(SbpPending *p)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(p->stream_id)};
	bool		isnull;
	int64		low;
	int			rc;

	rc = SPI_execute_with_args("UPDATE signalr_bp.stream"
							   " SET epoch = epoch OPERATOR(pg_catalog.+) 1,"
							   " low_offset = (epoch OPERATOR(pg_catalog.+) 1)::bigint"
							   " OPERATOR(pg_catalog.<<) 40"
							   " WHERE id OPERATOR(pg_catalog.=) $1 RETURNING low_offset",
							   1, argtypes, values, NULL, false, 1);
	if (rc != SPI_OK_UPDATE_RETURNING || SPI_processed != 1)
		elog(ERROR, "fast stream epoch update failed: %s", SPI_result_code_string(rc));
	low = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	sbp_view_changed();
	rc = SPI_execute_with_args("INSERT INTO signalr_bp.fast_alive (stream_id) VALUES ($1)"
							   " ON CONFLICT DO NOTHING",
							   1, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "fast stream marker insert failed: %s", SPI_result_code_string(rc));
	ereport(LOG,
			(errmsg("signalr_bp: fast stream \"%s\" lost its messages in a crash; offsets resume at " INT64_FORMAT,
					p->name, low)));
	return low;
}

static void
sbp_insert_chunk(SbpPending *p, int slot, int64 first, int64 last, int from, int to)
{
	bytea	   *data = palloc(VARHDRSZ + (to - from));

	SET_VARSIZE(data, VARHDRSZ + (to - from));
	memcpy(VARDATA(data), p->buf.data + from, to - from);
	sbp_append_chunk(p->durable, slot, p->stream_id, first, last, data);
	pfree(data);
}

/*
 * This commit appends to a durable stream with no inflight slot to hold
 * readers back until it is durable: make it synchronous (as SET LOCAL
 * synchronous_commit = on would; undone at the end of the transaction).
 */
static void
sbp_force_sync_commit(void)
{
	if (synchronous_commit >= SYNCHRONOUS_COMMIT_REMOTE_FLUSH)
		return;
	(void) set_config_option("synchronous_commit", "on", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	/* a setting of higher priority may have refused it: flush locally at least */
	ForceSyncCommit();
}

/*
 * Assign offsets to one stream's messages and write them as chunks.
 *
 * Preloaded, the offsets come from the stream's shared allocation state and
 * the commit lock is released as soon as the chunks are written: the WAL
 * flush (and any synchronous-standby wait) happens outside it, so committers
 * of one stream share flushes, and readers' horizon keeps delivery in offset
 * order.  Otherwise -- not preloaded, shared state full, no free inflight
 * slot, or a new fast-stream epoch written by this transaction -- the lock is
 * held until the commit is visible, and the head is read from the segments.
 */
static void
sbp_flush_one(SbpPending *p)
{
	LOCKTAG		tag;
	SbpStreamView view;
	uint64		mark;
	SbpStreamState *st;
	bool		new_epoch = false;
	int			slot;
	int			start = 0;
	int			first_msg = 0;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) p->stream_id, 0, SBP_LOCKTAG_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	st = p->state = sbp_stream_state(p->catalog, p->stream_id, p->token);

	/* the previous holder's chunks are visible to a new snapshot */
	mark = sbp_view_mark();
	PushActiveSnapshot(GetLatestSnapshot());
	if (!sbp_stream_view_try(p->stream_id, mark, &view))
	{
		if (st)
			sbp_state_gone(st);
		sbp_stream_dropped_error(p->name);
	}
	if (!p->durable && !view.alive)
	{
		view.low_offset = sbp_fast_new_epoch(p);
		new_epoch = true;
	}
	if (st == NULL)
		p->first = new_epoch ? view.low_offset :
			sbp_probe_head(p->stream_id, p->durable, &view);
	else
	{
		int64		floor = view.low_offset;

		if (!new_epoch && !sbp_alloc_known(st))
			floor = sbp_probe_head(p->stream_id, p->durable, &view);
		p->slot = sbp_alloc(st, floor, new_epoch, p->nmsgs, &p->first);
		p->allocated = true;	/* from here on, commit or abort releases it */
	}
	PopActiveSnapshot();
	slot = view.slots[SBP_SEGMENTS - 1];

	/* toasting a large chunk may look for an active snapshot; pre-commit has none */
	PushActiveSnapshot(GetTransactionSnapshot());
	for (int i = 0; i < p->nmsgs; i++)
	{
		bool		last = i == p->nmsgs - 1;

		/* close the chunk before it outgrows chunk_size, or at the end */
		if (last || p->ends[i + 1] - start > sbp_chunk_size)
		{
			sbp_insert_chunk(p, slot, p->first + first_msg, p->first + i, start, p->ends[i]);
			start = p->ends[i];
			first_msg = i + 1;
		}
	}
	PopActiveSnapshot();

	if (p->slot >= 0 && !new_epoch)
		LockRelease(&tag, ExclusiveLock, false);
	else if (p->durable)
		sbp_force_sync_commit();
}

static int
sbp_pending_cmp(const ListCell *a, const ListCell *b)
{
	int32		x = ((SbpPending *) lfirst(a))->stream_id;
	int32		y = ((SbpPending *) lfirst(b))->stream_id;

	return (x > y) - (x < y);
}

static void
sbp_pre_commit(void)
{
	ListCell   *lc;
	Oid			saved_user;
	int			saved_sec;

	if (sbp_pending == NIL)
		return;
	list_sort(sbp_pending, sbp_pending_cmp);
	sbp_flushed = true;			/* an error from here on must release allocations */
	sbp_enter_owner(&saved_user, &saved_sec);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, sbp_pending)
	{
		SbpPending *p = (SbpPending *) lfirst(lc);

		if (p->nmsgs > 0 && p->dropped_level == 0 && sbp_all_dropped_level == 0)
			sbp_flush_one(p);
	}
	SPI_finish();
	sbp_leave_owner(saved_user, saved_sec);
}

/*
 * Is the commit that just became visible durable?  With synchronous_commit
 * on (or remote_apply), the commit record was flushed and confirmed by the
 * synchronous standbys before it became visible; local and remote_write
 * flushed it locally only; off did not even do that.
 */
static bool
sbp_commit_durable(void)
{
	if (synchronous_commit >= SYNCHRONOUS_COMMIT_REMOTE_FLUSH)
		return true;
	if (sbp_standbys_named())
		return false;
	if (synchronous_commit > SYNCHRONOUS_COMMIT_OFF)
		return true;
	return SBP_FLUSH_REC_PTR() >= XactLastCommitEnd;
}

/*
 * After commit: free the inflight slots, or leave them waiting for the
 * commit's LSN when it is not durable yet; update counters, wake waiters and
 * the worker.
 */
static void
sbp_post_commit(void)
{
	ListCell   *lc;
	int			durable = -1;	/* not computed yet */

	if (!sbp_flushed)
		return;
	foreach(lc, sbp_pending)
	{
		SbpPending *p = (SbpPending *) lfirst(lc);
		SbpStreamState *st = p->state;
		uint64		end = (uint64) (p->first + p->nmsgs);
		uint64		head;

		if (st == NULL)
			continue;
		if (p->allocated)
		{
			if (p->durable && durable < 0)
				durable = sbp_commit_durable() ? 1 : 0;
			if (p->durable && p->slot >= 0 && durable == 0)
				sbp_alloc_wait(st, p->slot, XactLastCommitEnd);
			else
			{
				sbp_alloc_release(st, p->slot, p->first, p->nmsgs, true);
				/* commits below a durable one are durable too */
				if (p->durable)
					sbp_release_durable(st, XactLastCommitEnd);
				sbp_notify_worker(st);
			}
			head = pg_atomic_read_u64(&st->head);
			while (head < end && !pg_atomic_compare_exchange_u64(&st->head, &head, end))
				;
			pg_atomic_fetch_add_u64(&st->messages, p->nmsgs);
			pg_atomic_fetch_add_u64(&st->bytes, p->buf.len - 4 * p->nmsgs);
			pg_atomic_fetch_add_u64(&st->commits, 1);
		}
		sbp_state_unpin(st);
	}
}

/* A transaction that had taken offsets aborted: free them for the next one. */
static void
sbp_post_abort(void)
{
	ListCell   *lc;

	if (!sbp_flushed)
		return;
	foreach(lc, sbp_pending)
	{
		SbpPending *p = (SbpPending *) lfirst(lc);

		if (p->state == NULL)
			continue;
		if (p->allocated)
			sbp_alloc_release(p->state, p->slot, p->first, p->nmsgs, false);
		sbp_state_unpin(p->state);
	}
}

/*
 * The transaction deleted a stream (lifecycle.c's row trigger): what it
 * published to it goes with it.  Rolling back to a savepoint brings it back.
 */
void
sbp_publish_forget(int32 stream_id)
{
	ListCell   *lc;

	foreach(lc, sbp_pending)
	{
		SbpPending *p = (SbpPending *) lfirst(lc);

		if (p->stream_id == stream_id && p->dropped_level == 0)
			p->dropped_level = GetCurrentTransactionNestLevel();
	}
}

/* The transaction dropped the stream catalog itself (DROP EXTENSION). */
void
sbp_publish_forget_all(void)
{
	if (sbp_all_dropped_level == 0)
		sbp_all_dropped_level = GetCurrentTransactionNestLevel();
}

/*
 * The module's transaction callback: the commit path, then what the
 * transaction did to streams' shared state (lifecycle.c), then the pins
 * errors left behind (shmem.c).
 */
static void
sbp_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT)
		sbp_pre_commit();
	/* after the flush, which may start a fast stream's new epoch */
	sbp_view_xact_event(event);
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (sbp_pending != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has published signalr_bp messages")));
			break;
		case XACT_EVENT_COMMIT:
			sbp_post_commit();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			sbp_post_abort();
			break;
		default:
			return;
	}
	if (event == XACT_EVENT_PRE_PREPARE)
		return;
	sbp_pending = NIL;
	sbp_flushed = false;
	sbp_all_dropped_level = 0;
	sbp_lifecycle_xact_event(event == XACT_EVENT_COMMIT);
	sbp_shmem_end_of_xact();
}

/* Rolling back to a savepoint drops what was published since; releasing keeps it. */
static void
sbp_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	sbp_lifecycle_subxact_event(event == SUBXACT_EVENT_COMMIT_SUB, level);
	if (sbp_all_dropped_level >= level)
		sbp_all_dropped_level = event == SUBXACT_EVENT_ABORT_SUB ? 0 : level - 1;
	foreach(lc, sbp_pending)
	{
		SbpPending *p = (SbpPending *) lfirst(lc);

		if (p->dropped_level >= level)
			p->dropped_level = event == SUBXACT_EVENT_ABORT_SUB ? 0 : level - 1;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			while (p->nmsgs > 0 && p->levels[p->nmsgs - 1] >= level)
				p->nmsgs--;
			p->buf.len = p->nmsgs > 0 ? p->ends[p->nmsgs - 1] : 0;
		}
		else
		{
			for (int i = p->nmsgs - 1; i >= 0 && p->levels[i] == level; i--)
				p->levels[i] = level - 1;
		}
	}
}

void
sbp_publish_init(void)
{
	RegisterXactCallback(sbp_xact_callback, NULL);
	RegisterSubXactCallback(sbp_subxact_callback, NULL);
}
