/*
 * shmem.c: state shared by all backends when the module is preloaded.
 *
 * A hash of SbpStreamState keyed by (database, stream id), sized by
 * signalr_bp.max_streams.  Locking: sbp->lock (shared to find, exclusive to
 * insert) protects the hash's structure only; every field of an entry is an
 * atomic or a condition variable, updated without that lock.  Entries live
 * until the server restarts.  When the hash is full, new streams simply get
 * no shared state: their waits poll and their counters are not kept.
 */
#include "postgres.h"

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
	}
	ctl.keysize = sizeof(SbpKey);
	ctl.entrysize = sizeof(SbpStreamState);
	sbp_states = ShmemInitHash("signalr_bp streams", sbp_max_streams, sbp_max_streams,
							   &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* The shared state of a stream of this database, or NULL (not preloaded, or full). */
SbpStreamState *
sbp_stream_state(Oid catalog, int32 stream_id, bool create)
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
	if (st != NULL || !create)
		return st;

	LWLockAcquire(sbp->lock, LW_EXCLUSIVE);
	st = hash_search(sbp_states, &key, HASH_ENTER_NULL, &found);
	if (st != NULL && !found)
	{
		pg_atomic_init_u64(&st->head, 0);
		pg_atomic_init_u32(&st->head_known, 0);
		pg_atomic_init_u64(&st->commits, 0);
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
