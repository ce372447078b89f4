/*
 * shmem.c: state shared by all backends when the module is preloaded.
 *
 * A hash of SbpStreamState keyed by (database, stream id), sized by
 * signalr_bp.max_streams.  Locking: sbp->lock (shared to find, exclusive to
 * insert) protects the hash's structure only; the fields of an entry are
 * atomics, a condition variable, and the allocation state under its own
 * spinlock (see SbpStreamState).  Entries live
 * until the server restarts.  When the hash is full, new streams simply get
 * no shared state: their waits poll and their counters are not kept.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"

#include "signalr_bp.h"

typedef struct SbpShared
{
	LWLock	   *lock;
	pg_atomic_uint32 worker_procno;	/* SBP_INVALID_PROCNO when no worker runs */

	/*
	 * Stream views (segment ring order, low offsets, fast-stream markers)
	 * change only when a transaction rotates a segment, drops a stream or
	 * starts a fast stream's new epoch.  Such a transaction raises
	 * view_changing before its commit becomes visible, and moves view_gen
	 * and lowers view_changing after; backends reuse a view read under an
	 * older snapshot only while view_changing is 0 and view_gen has not
	 * moved since before that snapshot (see sbp_stream_view).
	 */
	pg_atomic_uint64 view_gen;
	pg_atomic_uint32 view_changing;
} SbpShared;

/* the leading fields of SbpStreamState */
typedef struct SbpKey
{
	Oid			dbid;
	Oid			catalog;
	int32		stream_id;
} SbpKey;

static SbpShared *sbp = NULL;
static HTAB *sbp_states = NULL;

bool
sbp_shmem_ready(void)
{
	return sbp != NULL;
}

void
sbp_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SbpShared)) +
						   hash_estimate_size(sbp_max_streams, sizeof(SbpStreamState)));
	RequestNamedLWLockTranche("signalr_bp", 1);
}

void
sbp_shmem_startup(void)
{
	bool		found;
	HASHCTL		ctl;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sbp = ShmemInitStruct("signalr_bp", sizeof(SbpShared), &found);
	if (!found)
	{
		sbp->lock = &(GetNamedLWLockTranche("signalr_bp"))->lock;
		pg_atomic_init_u32(&sbp->worker_procno, SBP_INVALID_PROCNO);
		pg_atomic_init_u64(&sbp->view_gen, 0);
		pg_atomic_init_u32(&sbp->view_changing, 0);
	}
	ctl.keysize = sizeof(SbpKey);
	ctl.entrysize = sizeof(SbpStreamState);
	sbp_states = ShmemInitHash("signalr_bp streams", sbp_max_streams, sbp_max_streams,
							   &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* This transaction changes stream views: set by rotation, drop, new epochs. */
static bool sbp_view_dirty = false;
static bool sbp_view_raised = false;

void
sbp_view_changed(void)
{
	sbp_view_dirty = true;
}

/*
 * The view generation to remember with a view read under a snapshot taken
 * after this call, or SBP_NO_VIEW_MARK when views must not be cached: not
 * preloaded, or this transaction changed views itself (its snapshots see
 * its own changes before anyone else's counters move).
 */
uint64
sbp_view_mark(void)
{
	if (sbp == NULL || sbp_view_dirty)
		return SBP_NO_VIEW_MARK;
	return pg_atomic_read_u64(&sbp->view_gen);
}

/* May a view remembered with mark be used under the current snapshot? */
bool
sbp_view_still_valid(uint64 mark)
{
	if (sbp == NULL || sbp_view_dirty || mark == SBP_NO_VIEW_MARK)
		return false;
	pg_memory_barrier();
	if (pg_atomic_read_u32(&sbp->view_changing) != 0)
		return false;
	return pg_atomic_read_u64(&sbp->view_gen) == mark;
}

/* Transaction events, from the module's transaction callback. */
void
sbp_view_xact_event(XactEvent event)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (sbp_view_dirty && sbp != NULL && !sbp_view_raised)
			{
				pg_atomic_fetch_add_u32(&sbp->view_changing, 1);
				sbp_view_raised = true;
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (sbp_view_dirty)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that rotated segments or dropped streams of signalr_bp")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if (sbp_view_dirty && sbp != NULL)
				pg_atomic_fetch_add_u64(&sbp->view_gen, 1);
			if (sbp_view_raised)
				pg_atomic_fetch_sub_u32(&sbp->view_changing, 1);
			sbp_view_dirty = false;
			sbp_view_raised = false;
			break;
		default:
			break;
	}
}

/*
 * The shared state of a stream of this database, or NULL (not preloaded, or
 * full).  token: the stream's channel token, to create the entry if it is
 * missing; NULL only finds it.
 */
SbpStreamState *
sbp_stream_state(Oid catalog, int32 stream_id, const char *token)
{
	SbpKey		key;
	SbpStreamState *st;
	bool		found;

	if (sbp == NULL)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.catalog = catalog;
	key.stream_id = stream_id;

	LWLockAcquire(sbp->lock, LW_SHARED);
	st = hash_search(sbp_states, &key, HASH_FIND, NULL);
	LWLockRelease(sbp->lock);
	if (st != NULL || token == NULL)
		return st;

	LWLockAcquire(sbp->lock, LW_EXCLUSIVE);
	st = hash_search(sbp_states, &key, HASH_ENTER_NULL, &found);
	if (st != NULL && !found)
	{
		pg_atomic_init_u64(&st->head, 0);
		strlcpy(st->token, token, sizeof(st->token));
		SpinLockInit(&st->mutex);
		st->alloc_known = false;
		st->alloc_next = 0;
		for (int i = 0; i < SBP_MAX_INFLIGHT; i++)
			st->inflight[i] = -1;
		pg_atomic_init_u64(&st->commits, 0);
		pg_atomic_init_u64(&st->changes, 0);
		pg_atomic_init_u64(&st->messages, 0);
		pg_atomic_init_u64(&st->bytes, 0);
		pg_atomic_init_u64(&st->wakeups, 0);
		pg_atomic_init_u64(&st->fetches, 0);
		pg_atomic_init_u64(&st->replays, 0);
		pg_atomic_init_u64(&st->served, 0);
		pg_atomic_init_u64(&st->last_fetch_offset, PG_UINT64_MAX);
		pg_atomic_init_u64(&st->last_fetch_at, 0);
		pg_atomic_init_u32(&st->notify_pending, 0);
		ConditionVariableInit(&st->cv);
	}
	LWLockRelease(sbp->lock);
	return st;
}

/* Has a commit since server start set the stream's next offset? */
bool
sbp_alloc_known(SbpStreamState *st)
{
	bool		known;

	SpinLockAcquire(&st->mutex);
	known = st->alloc_known;
	SpinLockRelease(&st->mutex);
	return known;
}

/*
 * Take n offsets (caller holds the stream's commit lock).  floor: the lowest
 * acceptable first offset (the probed head when !alloc_known, low_offset
 * otherwise); reset: start at floor whatever came before (a new fast-stream
 * epoch).  Returns the inflight slot recorded, or -1 when all are taken: the
 * caller must then keep the commit lock until its transaction ends.
 */
int
sbp_alloc(SbpStreamState *st, int64 floor, bool reset, int64 n, int64 *first)
{
	int			slot = -1;

	SpinLockAcquire(&st->mutex);
	if (reset || !st->alloc_known || st->alloc_next < floor)
		st->alloc_next = floor;
	st->alloc_known = true;
	*first = st->alloc_next;
	st->alloc_next += n;
	for (int i = 0; i < SBP_MAX_INFLIGHT && slot < 0; i++)
		if (st->inflight[i] < 0)
		{
			st->inflight[i] = *first;
			slot = i;
		}
	SpinLockRelease(&st->mutex);
	return slot;
}

/*
 * The transaction that took [first, first + n) ended (after its commit became
 * visible, or on abort).  An aborted allocation that nobody followed is given
 * back, so offsets stay dense in all but a rare race.
 */
void
sbp_alloc_release(SbpStreamState *st, int slot, int64 first, int64 n, bool committed)
{
	SpinLockAcquire(&st->mutex);
	if (slot >= 0)
		st->inflight[slot] = -1;
	if (!committed && st->alloc_next == first + n)
		st->alloc_next = first;
	SpinLockRelease(&st->mutex);
	pg_atomic_fetch_add_u64(&st->changes, 1);
	ConditionVariableBroadcast(&st->cv);
}

/* Readers deliver offsets below this: everything under it has committed or aborted. */
int64
sbp_horizon(SbpStreamState *st)
{
	int64		h;

	SpinLockAcquire(&st->mutex);
	h = st->alloc_known ? st->alloc_next : PG_INT64_MAX;
	for (int i = 0; i < SBP_MAX_INFLIGHT; i++)
		if (st->inflight[i] >= 0 && st->inflight[i] < h)
			h = st->inflight[i];
	SpinLockRelease(&st->mutex);
	return h;
}

/* Call fn on every stream state of a database (and catalog, unless invalid). */
void
sbp_foreach_state(Oid dbid, Oid catalog, void (*fn) (SbpStreamState *, void *), void *arg)
{
	HASH_SEQ_STATUS seq;
	SbpStreamState *st;

	if (sbp == NULL)
		return;
	LWLockAcquire(sbp->lock, LW_SHARED);
	hash_seq_init(&seq, sbp_states);
	while ((st = hash_seq_search(&seq)) != NULL)
		if (st->dbid == dbid && (!OidIsValid(catalog) || st->catalog == catalog))
			fn(st, arg);
	LWLockRelease(sbp->lock);
}

/* Ask the worker to send wake-ups (cheap: one latch set, coalesced by the kernel). */
void
sbp_wake_worker(void)
{
	uint32		procno;

	if (sbp == NULL)
		return;
	procno = pg_atomic_read_u32(&sbp->worker_procno);
	if (procno != SBP_INVALID_PROCNO)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
}

static void
sbp_worker_gone(int code, Datum arg)
{
	pg_atomic_write_u32(&sbp->worker_procno, SBP_INVALID_PROCNO);
}

/* Called by the worker once connected: producers will set its latch. */
void
sbp_register_worker_latch(void)
{
	if (sbp == NULL)
		return;
	pg_atomic_write_u32(&sbp->worker_procno, SBP_MY_PROCNO);
	before_shmem_exit(sbp_worker_gone, (Datum) 0);
}
