/*
 * shmem.c: state shared by all backends when the module is preloaded.
 *
 * A hash of SbpStreamState keyed by (database, stream catalog, stream id),
 * of exactly signalr_bp.max_streams entries (HASH_FIXED_SIZE: it never takes
 * shared memory that the lock table or other extensions could use).
 *
 * Lifecycle.  An entry is created when a stream is created (reserve: when
 * the table is full, creating a stream fails) or, for streams older than the
 * server's start, when first used.  It is marked dropped when its stream is
 * dropped (at the dropping transaction's commit, by lifecycle.c) or when a
 * backend holding it finds the stream's row gone, and it is removed once
 * nobody uses it: no pins (a committer between its allocation and its
 * release, a reader during its call) and no slot waiting for an LSN.  So
 * dropped streams give their entries back and churn reuses them.
 *
 * Locking: sbp->lock (shared to find and pin, exclusive to insert, mark
 * dropped and remove) protects the hash's structure and the dropped flags;
 * pins are atomics, taken under the lock and given back without it (see
 * sbp_unpin_raw).  The allocation state and the inflight slots of an entry
 * are under its spinlock; counters are atomics.
 *
 * Durability.  A committer whose commit is not yet durable (asynchronous
 * commit, or a synchronous standby that has not confirmed it) leaves its
 * slot taken, waiting for its commit's LSN.  The launcher (worker.c) flushes
 * WAL up to the highest waiting LSN, waits for the synchronous standbys and
 * frees the slots (sbp_settle_durable).  A committer whose own commit is
 * durable frees the waiting slots below it; readers do the local flush
 * themselves when the launcher is not running or is late (sbp_settle_stream).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "signalr_bp.h"

/* A reader settles waiting slots itself once they wait this long. */
#define SBP_SETTLE_AFTER_MS 10

typedef struct SbpShared
{
	LWLock	   *lock;
	pg_atomic_uint32 worker_procno; /* database worker: NOTIFY, retention */
	pg_atomic_uint32 launcher_procno;	/* launcher: durability */
	pg_atomic_uint32 notify_wanted; /* a commit since the worker's last round */
	pg_atomic_uint32 nwaiting;	/* slots waiting for an LSN, all streams */
	pg_atomic_uint32 full_logged;	/* "no shared state" was logged */

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

/* Entries this backend pinned in the current transaction. */
static SbpStreamState **sbp_pinned = NULL;
static int	sbp_npinned = 0;
static int	sbp_pinned_cap = 0;

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
		pg_atomic_init_u32(&sbp->launcher_procno, SBP_INVALID_PROCNO);
		pg_atomic_init_u32(&sbp->notify_wanted, 0);
		pg_atomic_init_u32(&sbp->nwaiting, 0);
		pg_atomic_init_u32(&sbp->full_logged, 0);
		pg_atomic_init_u64(&sbp->view_gen, 0);
		pg_atomic_init_u32(&sbp->view_changing, 0);
	}
	ctl.keysize = sizeof(SbpKey);
	ctl.entrysize = sizeof(SbpStreamState);
	sbp_states = ShmemInitHash("signalr_bp streams", sbp_max_streams, sbp_max_streams,
							   &ctl, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
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

/* A fresh entry for key (caller holds sbp->lock exclusively). */
static void
sbp_state_init(SbpStreamState *st, const char *token)
{
	strlcpy(st->token, token, sizeof(st->token));
	st->dropped = false;
	pg_atomic_init_u32(&st->pins, 0);
	pg_atomic_init_u64(&st->head, 0);
	SpinLockInit(&st->mutex);
	st->alloc_known = false;
	st->nwaiting = 0;
	st->alloc_next = 0;
	for (int i = 0; i < SBP_MAX_INFLIGHT; i++)
	{
		st->inflight[i] = -1;
		st->inflight_lsn[i] = InvalidXLogRecPtr;
		st->inflight_since[i] = 0;
	}
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

/*
 * Remove a dropped entry nobody uses any more (caller holds sbp->lock
 * exclusively).  Slots waiting for their LSN hold back readers of a stream
 * that has none left: they go with it.  A slot still committing belongs to
 * a committer, which holds a pin.
 */
static void
sbp_free_if_unused(SbpStreamState *st)
{
	bool		busy = false;
	SbpKey		key;

	if (!st->dropped || pg_atomic_read_u32(&st->pins) != 0)
		return;
	SpinLockAcquire(&st->mutex);
	for (int i = 0; i < SBP_MAX_INFLIGHT && !busy; i++)
		busy = st->inflight[i] >= 0 && st->inflight_lsn[i] == InvalidXLogRecPtr;
	if (!busy && st->nwaiting > 0)
	{
		pg_atomic_fetch_sub_u32(&sbp->nwaiting, st->nwaiting);
		st->nwaiting = 0;
	}
	SpinLockRelease(&st->mutex);
	if (busy)
		return;
	memcpy(&key, st, sizeof(key));
	(void) hash_search(sbp_states, &key, HASH_REMOVE, NULL);
}

/*
 * Mark an entry dropped, wake its waiters, and free it if nobody holds it
 * (caller holds sbp->lock exclusively).  The barrier orders the flag before
 * the read of the pin count (see sbp_unpin_raw).
 */
static void
sbp_mark_dropped_locked(SbpStreamState *st)
{
	st->dropped = true;
	pg_memory_barrier();
	pg_atomic_fetch_add_u64(&st->changes, 1);
	ConditionVariableBroadcast(&st->cv);
	sbp_free_if_unused(st);
}

/* Tell waiters and the worker that something about the stream changed. */
static void
sbp_state_changed(SbpStreamState *st)
{
	pg_atomic_fetch_add_u64(&st->changes, 1);
	ConditionVariableBroadcast(&st->cv);
}

static void
sbp_remember_pin(SbpStreamState *st)
{
	if (sbp_npinned == sbp_pinned_cap)
	{
		sbp_pinned_cap = Max(8, sbp_pinned_cap * 2);
		sbp_pinned = sbp_pinned == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(*sbp_pinned) * sbp_pinned_cap) :
			repalloc(sbp_pinned, sizeof(*sbp_pinned) * sbp_pinned_cap);
	}
	sbp_pinned[sbp_npinned++] = st;
}

/*
 * The shared state of a stream of this database, pinned until
 * sbp_state_unpin() or the end of the transaction; NULL when not preloaded,
 * when the stream was dropped, or when it has none and token is NULL (only
 * find) or the table is full.  token: the stream's channel token, to create
 * the entry if it is missing.  A caller that creates the entry must read the
 * stream's row with a fresh snapshot afterwards and call sbp_state_gone() if
 * it is not there, so that an entry created from a stale lookup is given
 * back.
 */
SbpStreamState *
sbp_stream_state(Oid catalog, int32 stream_id, const char *token)
{
	SbpKey		key;
	SbpStreamState *st;
	bool		found;
	bool		pinned = false;

	if (sbp == NULL)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.catalog = catalog;
	key.stream_id = stream_id;

	LWLockAcquire(sbp->lock, LW_SHARED);
	st = hash_search(sbp_states, &key, HASH_FIND, &found);
	if (found && !st->dropped)
	{
		pg_atomic_fetch_add_u32(&st->pins, 1);
		pinned = true;
	}
	LWLockRelease(sbp->lock);
	if (pinned)
	{
		sbp_remember_pin(st);
		return st;
	}
	if (found || token == NULL)
		return NULL;

	LWLockAcquire(sbp->lock, LW_EXCLUSIVE);
	st = hash_search(sbp_states, &key, HASH_ENTER_NULL, &found);
	if (st != NULL && !found)
		sbp_state_init(st, token);
	if (st != NULL && st->dropped)
		st = NULL;
	if (st != NULL)
		pg_atomic_fetch_add_u32(&st->pins, 1);
	LWLockRelease(sbp->lock);
	if (st == NULL)
	{
		if (!found && pg_atomic_exchange_u32(&sbp->full_logged, 1) == 0)
			ereport(LOG,
					(errmsg("signalr_bp: no shared state left for a stream; its consumers poll and its counters are not kept"),
					 errdetail("All %d entries of signalr_bp.max_streams are in use.", sbp_max_streams),
					 errhint("Raise signalr_bp.max_streams above the number of streams (needs a restart).")));
		return NULL;
	}
	sbp_remember_pin(st);
	return st;
}

/*
 * Drop one pin, without the lock.  The pin count falls before dropped is
 * read here, and dropped is set before the pin count is read by whoever
 * marks the entry (sbp_mark_dropped_locked): so at least one of the two
 * sees both, and frees it.  Freeing goes by key, so a second attempt, or
 * one reading an entry already reused, finds nothing to do.
 */
static void
sbp_unpin_raw(SbpStreamState *st)
{
	SbpKey		key;

	memcpy(&key, st, sizeof(key));
	if (pg_atomic_sub_fetch_u32(&st->pins, 1) != 0)
		return;
	pg_memory_barrier();
	if (!((volatile SbpStreamState *) st)->dropped)
		return;
	LWLockAcquire(sbp->lock, LW_EXCLUSIVE);
	st = hash_search(sbp_states, &key, HASH_FIND, NULL);
	if (st != NULL)
		sbp_free_if_unused(st);
	LWLockRelease(sbp->lock);
}

/* Give back a pin taken by sbp_stream_state() (also from commit callbacks: never fails). */
void
sbp_state_unpin(SbpStreamState *st)
{
	for (int i = sbp_npinned - 1; i >= 0; i--)
		if (sbp_pinned[i] == st)
		{
			sbp_pinned[i] = sbp_pinned[--sbp_npinned];
			sbp_unpin_raw(st);
			return;
		}
	Assert(false);
}

/* End of transaction: give back what errors left pinned. */
void
sbp_shmem_end_of_xact(void)
{
	while (sbp_npinned > 0)
		sbp_unpin_raw(sbp_pinned[--sbp_npinned]);
}

/*
 * The caller (holding a pin) found the stream's row gone under a fresh
 * snapshot: the drop has committed, so the entry goes once unused.
 */
void
sbp_state_gone(SbpStreamState *st)
{
	LWLockAcquire(sbp->lock, LW_EXCLUSIVE);
	sbp_mark_dropped_locked(st);
	LWLockRelease(sbp->lock);
}

/*
 * A stream is being created: give it an entry now, or fail if there is no
 * room, so that every stream created since start has its shared state.
 */
void
sbp_state_reserve(Oid catalog, int32 stream_id, const char *token)
{
	SbpKey		key;
	SbpStreamState *st;
	bool		found;

	if (sbp == NULL)
		return;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.catalog = catalog;
	key.stream_id = stream_id;
	LWLockAcquire(sbp->lock, LW_EXCLUSIVE);
	st = hash_search(sbp_states, &key, HASH_ENTER_NULL, &found);
	if (st != NULL && !found)
		sbp_state_init(st, token);
	LWLockRelease(sbp->lock);
	if (st == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many streams with shared state"),
				 errdetail("All %d entries of signalr_bp.max_streams are in use, by the streams of every database of this server.",
						   sbp_max_streams),
				 errhint("Drop unused streams, or raise signalr_bp.max_streams (needs a restart).")));
}

/*
 * Streams are gone (their drop committed): mark their entries dropped, wake
 * their waiters and free what nobody uses.  catalog InvalidOid: every stream
 * of the database; stream_id 0: every stream of the catalog.
 */
void
sbp_state_mark_dropped(Oid dbid, Oid catalog, int32 stream_id)
{
	HASH_SEQ_STATUS seq;
	SbpStreamState *st;

	if (sbp == NULL)
		return;
	LWLockAcquire(sbp->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, sbp_states);
	while ((st = hash_seq_search(&seq)) != NULL)
	{
		if (st->dbid != dbid ||
			(OidIsValid(catalog) && st->catalog != catalog) ||
			(stream_id != 0 && st->stream_id != stream_id))
			continue;
		/* removing the element just returned is allowed during a scan */
		sbp_mark_dropped_locked(st);
	}
	LWLockRelease(sbp->lock);
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
			st->inflight_lsn[i] = InvalidXLogRecPtr;
			slot = i;
		}
	SpinLockRelease(&st->mutex);
	return slot;
}

/*
 * The transaction that took [first, first + n) ended (after its commit became
 * visible and durable, or on abort).  An aborted allocation that nobody
 * followed is given back, so offsets stay dense in all but a rare race.
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
	sbp_state_changed(st);
}

/*
 * The transaction holding slot committed, but its commit is durable only
 * once lsn is flushed and confirmed by the synchronous standbys: keep the
 * slot (readers stop below it) and ask the launcher to settle it.
 */
void
sbp_alloc_wait(SbpStreamState *st, int slot, XLogRecPtr lsn)
{
	uint32		procno;

	SpinLockAcquire(&st->mutex);
	st->inflight_lsn[slot] = lsn;
	st->inflight_since[slot] = GetCurrentTransactionStopTimestamp();
	st->nwaiting++;
	SpinLockRelease(&st->mutex);
	pg_atomic_fetch_add_u32(&sbp->nwaiting, 1);
	procno = pg_atomic_read_u32(&sbp->launcher_procno);
	if (procno != SBP_INVALID_PROCNO)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
}

/*
 * Commits up to lsn are durable: free the stream's slots waiting for them,
 * wake its readers and have its LISTENers notified.
 */
void
sbp_release_durable(SbpStreamState *st, XLogRecPtr lsn)
{
	int			freed = 0;

	/*
	 * Unlocked first look, for synchronous committers: a slot that starts
	 * waiting meanwhile is the launcher's to settle.
	 */
	if (((volatile SbpStreamState *) st)->nwaiting == 0)
		return;
	SpinLockAcquire(&st->mutex);
	if (st->nwaiting > 0)
		for (int i = 0; i < SBP_MAX_INFLIGHT; i++)
			if (st->inflight[i] >= 0 && st->inflight_lsn[i] != InvalidXLogRecPtr &&
				st->inflight_lsn[i] <= lsn)
			{
				st->inflight[i] = -1;
				st->inflight_lsn[i] = InvalidXLogRecPtr;
				st->nwaiting--;
				freed++;
			}
	SpinLockRelease(&st->mutex);
	if (freed == 0)
		return;
	pg_atomic_fetch_sub_u32(&sbp->nwaiting, freed);
	sbp_state_changed(st);
	sbp_notify_worker(st);
}

/*
 * Readers deliver offsets below this: everything under it has committed
 * durably or aborted.  *waiting: a committed slot still waits for its LSN.
 */
int64
sbp_horizon(SbpStreamState *st, bool *waiting)
{
	int64		h;

	SpinLockAcquire(&st->mutex);
	h = st->alloc_known ? st->alloc_next : PG_INT64_MAX;
	for (int i = 0; i < SBP_MAX_INFLIGHT; i++)
		if (st->inflight[i] >= 0 && st->inflight[i] < h)
			h = st->inflight[i];
	if (waiting)
		*waiting = st->nwaiting > 0;
	SpinLockRelease(&st->mutex);
	return h;
}

/* Are commits durable only once synchronous standbys confirm them? */
bool
sbp_standbys_named(void)
{
	return max_wal_senders > 0 && SyncRepStandbyNames != NULL &&
		SyncRepStandbyNames[0] != '\0';
}

/* Is the launcher (which settles waiting slots) running? */
bool
sbp_launcher_running(void)
{
	return sbp != NULL &&
		pg_atomic_read_u32(&sbp->launcher_procno) != SBP_INVALID_PROCNO;
}

/*
 * A reader's fallback for slots waiting on a late or absent launcher:
 * flush the WAL up to them and, when no synchronous standby must confirm
 * them, free them.  Returns true if it freed any.
 */
bool
sbp_settle_stream(SbpStreamState *st)
{
	XLogRecPtr	target = InvalidXLogRecPtr;
	TimestampTz oldest = 0;

	SpinLockAcquire(&st->mutex);
	if (st->nwaiting > 0)
		for (int i = 0; i < SBP_MAX_INFLIGHT; i++)
			if (st->inflight[i] >= 0 && st->inflight_lsn[i] != InvalidXLogRecPtr)
			{
				target = Max(target, st->inflight_lsn[i]);
				if (oldest == 0 || st->inflight_since[i] < oldest)
					oldest = st->inflight_since[i];
			}
	SpinLockRelease(&st->mutex);
	if (target == InvalidXLogRecPtr)
		return false;
	if (sbp_launcher_running() &&
		!TimestampDifferenceExceeds(oldest, GetCurrentTimestamp(), SBP_SETTLE_AFTER_MS))
		return false;
	XLogFlush(target);
	if (sbp_standbys_named())
		return false;
	sbp_release_durable(st, target);
	return true;
}

/* The highest LSN a slot of the stream waits for, into *(XLogRecPtr *) arg. */
static void
sbp_settle_collect(SbpStreamState *st, void *arg)
{
	XLogRecPtr *target = arg;

	SpinLockAcquire(&st->mutex);
	if (st->nwaiting > 0)
		for (int i = 0; i < SBP_MAX_INFLIGHT; i++)
			if (st->inflight[i] >= 0)
				*target = Max(*target, st->inflight_lsn[i]);
	SpinLockRelease(&st->mutex);
}

static void
sbp_settle_release(SbpStreamState *st, void *arg)
{
	sbp_release_durable(st, *(XLogRecPtr *) arg);
}

static void sbp_foreach_all(bool dropped_too, void (*fn) (SbpStreamState *, void *), void *arg);

/*
 * The launcher's job: make every waiting commit durable -- flush the WAL up
 * to the highest waiting LSN, wait for the synchronous standbys (the caller
 * runs with synchronous_commit on and does not take query cancels, so a
 * return without ProcDiePending means confirmed) -- then free their slots.
 * Commits that arrive meanwhile set the latch that the standby wait resets:
 * look again before sleeping (a few rounds here, then through the latch).
 */
void
sbp_settle_durable(void)
{
	if (sbp == NULL)
		return;
	for (int round = 0; pg_atomic_read_u32(&sbp->nwaiting) > 0; round++)
	{
		XLogRecPtr	target = InvalidXLogRecPtr;

		if (round == 8)
		{
			SetLatch(MyLatch);
			return;
		}
		sbp_foreach_all(false, sbp_settle_collect, &target);
		if (target == InvalidXLogRecPtr)
			return;
		XLogFlush(target);
		HOLD_INTERRUPTS();
		SyncRepWaitForLSN(target, false);
		RESUME_INTERRUPTS();
		if (ProcDiePending)
			return;
		sbp_foreach_all(false, sbp_settle_release, &target);
	}
}

/* Walk every entry under the shared lock (dropped ones too, if asked). */
static void
sbp_foreach_all(bool dropped_too, void (*fn) (SbpStreamState *, void *), void *arg)
{
	HASH_SEQ_STATUS seq;
	SbpStreamState *st;

	LWLockAcquire(sbp->lock, LW_SHARED);
	hash_seq_init(&seq, sbp_states);
	while ((st = hash_seq_search(&seq)) != NULL)
		if (dropped_too || !st->dropped)
			fn(st, arg);
	LWLockRelease(sbp->lock);
}

typedef struct SbpForeach
{
	Oid			dbid;
	Oid			catalog;
	void		(*fn) (SbpStreamState *, void *);
	void	   *arg;
} SbpForeach;

static void
sbp_foreach_filter(SbpStreamState *st, void *arg)
{
	SbpForeach *f = arg;

	if (st->dbid == f->dbid && (!OidIsValid(f->catalog) || st->catalog == f->catalog))
		f->fn(st, f->arg);
}

/* Call fn on every live stream state of a database (and catalog, unless invalid). */
void
sbp_foreach_state(Oid dbid, Oid catalog, void (*fn) (SbpStreamState *, void *), void *arg)
{
	SbpForeach	f = {dbid, catalog, fn, arg};

	if (sbp == NULL)
		return;
	sbp_foreach_all(false, sbp_foreach_filter, &f);
}

/* Set the worker's latch (cheap: one latch set, coalesced by the kernel). */
static void
sbp_wake_worker(void)
{
	uint32		procno;

	if (sbp == NULL)
		return;
	procno = pg_atomic_read_u32(&sbp->worker_procno);
	if (procno != SBP_INVALID_PROCNO)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
}

/*
 * The stream has news for its LISTENers.  Only the first of the commits
 * since the worker's last round sets its latch.
 */
void
sbp_notify_worker(SbpStreamState *st)
{
	pg_atomic_write_u32(&st->notify_pending, 1);
	/* the worker clears notify_wanted, then reads notify_pending */
	pg_memory_barrier();
	if (pg_atomic_read_u32(&sbp->notify_wanted) == 0 &&
		pg_atomic_exchange_u32(&sbp->notify_wanted, 1) == 0)
		sbp_wake_worker();
}

/* The worker, before a round: has any stream news since the last one? */
bool
sbp_notify_wanted(void)
{
	return pg_atomic_exchange_u32(&sbp->notify_wanted, 0) != 0;
}

/* The same, without taking the news (for the worker's sleep). */
bool
sbp_notify_pending_peek(void)
{
	return pg_atomic_read_u32(&sbp->notify_wanted) != 0;
}

/* Is a database worker running? */
bool
sbp_db_worker_running(void)
{
	return pg_atomic_read_u32(&sbp->worker_procno) != SBP_INVALID_PROCNO;
}

static void
sbp_worker_gone(int code, Datum arg)
{
	pg_atomic_write_u32(&sbp->worker_procno, SBP_INVALID_PROCNO);
}

/* Called by the database worker once connected: producers will set its latch. */
void
sbp_register_worker_latch(void)
{
	if (sbp == NULL)
		return;
	pg_atomic_write_u32(&sbp->worker_procno, SBP_MY_PROCNO);
	before_shmem_exit(sbp_worker_gone, (Datum) 0);
}

static void
sbp_launcher_gone(int code, Datum arg)
{
	pg_atomic_write_u32(&sbp->launcher_procno, SBP_INVALID_PROCNO);
}

/* Called by the launcher: committers whose commit must be settled set its latch. */
void
sbp_register_launcher_latch(void)
{
	if (sbp == NULL)
		return;
	pg_atomic_write_u32(&sbp->launcher_procno, SBP_MY_PROCNO);
	before_shmem_exit(sbp_launcher_gone, (Datum) 0);
}
