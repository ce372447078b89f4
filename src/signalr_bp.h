/*
 * signalr_bp.h: declarations shared by the extension's source files.
 *
 * Layout: signalr_bp.c (load, GUCs), guard.c (primary-only check and the
 * extension lock every entry point takes), names.c (name rules), applications.c
 * (application lookup, per-backend cache), streams.c (stream catalog,
 * per-backend cache, permissions), segments.c (catalog and segment
 * probes shared by writers and readers), publish.c (transaction buffer and
 * commit-time append), fetch.c (reads and long-poll), shmem.c (shared wake-up
 * state and counters), worker.c (batched NOTIFY and retention), stats.c.
 */
#ifndef SIGNALR_BP_H
#define SIGNALR_BP_H

#include "postgres.h"

#include "compat.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "utils/array.h"

/* GUCs (signalr_bp.c) */
extern int	sbp_max_message_size;
extern int	sbp_chunk_size;
extern int	sbp_retention;
extern int	sbp_retention_size;
extern int	sbp_notify_interval;
extern int	sbp_maintenance_interval;
extern int	sbp_poll_interval;
extern int	sbp_max_streams;
extern int	sbp_batch_key_retention;
extern char *sbp_database;

/* Number of segments in each durability class's ring (see the install script). */
#define SBP_SEGMENTS 4

/* Offsets of a fast stream's epoch live in [epoch << 40, (epoch + 1) << 40). */
#define SBP_EPOCH_SHIFT 40

/* SQLSTATEs clients act on: resume point gone, or ahead of what exists. */
#define ERRCODE_SBP_MESSAGES_LOST	MAKE_SQLSTATE('S','B','0','0','1')
#define ERRCODE_SBP_OFFSET_AHEAD	MAKE_SQLSTATE('S','B','0','0','2')

/* names.c: every name is checked by sbp_check_name() */
#define SBP_MAX_APP_NAME_BYTES 63
#define SBP_MAX_LOCAL_NAME_BYTES 192
/* a whole stream name, "<application>/<local>" */
#define SBP_MAX_NAME_BYTES (SBP_MAX_APP_NAME_BYTES + 1 + SBP_MAX_LOCAL_NAME_BYTES)
#define SBP_NAME_NO_SLASH 0x01

typedef struct SbpStreamName
{
	char		full[SBP_MAX_NAME_BYTES + 1];
	char		app[SBP_MAX_APP_NAME_BYTES + 1];
	char		local[SBP_MAX_LOCAL_NAME_BYTES + 1];
} SbpStreamName;

extern void sbp_check_name(const char *s, int len, const char *what, int max_bytes, int flags);
extern char *sbp_application_name_arg(text *name);
extern void sbp_stream_name_parse(text *name, SbpStreamName *out);
extern bool sbp_stream_name_reserved(const SbpStreamName *name);
extern void sbp_refuse_reserved(const SbpStreamName *name);
extern char *sbp_stream_name_arg(text *name);
extern void sbp_require_primary(void);

/* guard.c: primary only, and the extension lock that DROP EXTENSION waits for */
extern void sbp_guard(void);
extern void sbp_lock_extension(void);
extern bool sbp_extension_wanted(void);
extern bool sbp_extension_current(Oid ext);
extern void sbp_guard_init(void);

/* applications.c */
typedef struct SbpApplication
{
	char		name[SBP_MAX_APP_NAME_BYTES + 1];	/* cache key */
	int32		id;
	Oid			owner;
	int32		max_streams;
} SbpApplication;

extern bool sbp_lookup_application(const char *name, Oid user, bool missing_ok,
								   SbpApplication *out);
pg_noreturn extern void sbp_no_such_application(const char *name);
extern void sbp_applications_reset(void);

/* streams.c */
/* channel token: 16 random bytes in hex, stored with the stream */
#define SBP_TOKEN_CHARS 32

typedef struct SbpStream
{
	char		name[SBP_MAX_NAME_BYTES + 1];	/* cache key */
	int32		id;
	int32		app_id;
	bool		durable;
	bool		reserved;		/* local name starts with "$" */
	Oid			owner;			/* its application's owner */
	Oid			catalog;		/* signalr_bp.stream's OID: ids restart after re-creation */
	char		token[SBP_TOKEN_CHARS + 1];	/* wake-up channel: signalr_bp_<token> */
} SbpStream;

extern bool sbp_lookup_stream(const char *name, bool missing_ok, SbpStream *out);
extern void sbp_check_publishable(const SbpStream *s);
extern Oid	sbp_schema_owner(void);
extern Oid	sbp_stream_table(void);
extern void sbp_enter_owner(Oid *saved_user, int *saved_sec);
extern void sbp_leave_owner(Oid saved_user, int saved_sec);
extern void sbp_streams_init(void);

/* publish.c */
/* What one transaction may publish to one stream (beyond: 54000). */
#define SBP_MAX_PENDING_BYTES (512 * 1024 * 1024)
#define SBP_MAX_PENDING_MESSAGES 10000000
extern void sbp_publish_init(void);
extern void sbp_check_payload(bytea *payload);
extern void sbp_publish_internal(const char *stream, bytea *message);
extern void sbp_publish_forget(int32 stream_id);
extern void sbp_publish_forget_all(void);

/* lifecycle.c: streams' shared state follows their creation and drop */
extern void sbp_lifecycle_xact_event(bool commit);
extern void sbp_lifecycle_subxact_event(bool commit, int level);
extern void sbp_lifecycle_init(void);

/* segments.c: catalog and segment probes (caller runs SPI with a snapshot) */
enum
{
	SBP_PLAN_VIEW,
	SBP_PLAN_MAX,				/* + 2 * SBP_SEGMENTS per-segment plans */
	SBP_PLAN_COUNT = SBP_PLAN_MAX + 2 * SBP_SEGMENTS
};

typedef struct SbpStreamView
{
	int64		low_offset;
	int			slots[SBP_SEGMENTS];	/* oldest generation first */
	bool		alive;			/* fast streams: crash marker present */
} SbpStreamView;

extern const char *sbp_segment_table(bool durable, int slot);
extern int	sbp_plan_slot(int base, bool durable, int slot);
extern SPIPlanPtr sbp_plan(int which, const char *sql, int nargs, Oid *argtypes);
extern void sbp_stream_view(int32 stream_id, const char *name, uint64 mark, SbpStreamView *view);
extern bool sbp_stream_view_try(int32 stream_id, uint64 mark, SbpStreamView *view);
pg_noreturn extern void sbp_stream_dropped_error(const char *name);
extern int64 sbp_probe_head(int32 stream_id, bool durable, const SbpStreamView *view);
typedef bool (*SbpChunkFn) (void *arg, int64 first, int64 last, bytea *data);
extern void sbp_scan_chunks(bool durable, int slot, int32 stream_id, int64 from,
							SbpChunkFn fn, void *arg);
extern void sbp_append_chunk(bool durable, int slot, int32 stream_id, int64 first,
							 int64 last, bytea *data);
extern void sbp_segments_invalidate(Oid relid);

/* direct_insert.c: a row and its index entries without the executor */
#include "storage/itemptr.h"
#include "utils/relcache.h"
extern bool sbp_insert_direct(Relation rel, Datum *values, int nvalues, ItemPointer tid);

/* shmem.c: per-stream state shared by all backends (only when preloaded) */
#define SBP_MAX_INFLIGHT 32

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "storage/spin.h"

typedef struct SbpStreamState
{
	Oid			dbid;			/* hash key: database, */
	Oid			catalog;		/* its signalr_bp.stream table, */
	int32		stream_id;		/* and the stream */
	char		token[SBP_TOKEN_CHARS + 1];	/* set once at creation: wake-up channel */
	bool		dropped;		/* the stream is gone: free once unused (sbp lock) */
	pg_atomic_uint32 pins;		/* backends holding the entry (shmem.c) */
	pg_atomic_uint64 head;		/* highest end offset committed since start */

	/*
	 * Offset allocation, under mutex.  A committer takes the stream's commit
	 * lock, takes offsets from alloc_next, records its first offset in a free
	 * inflight slot, writes its chunks and releases the lock before its WAL
	 * flush, so concurrent committers share flushes.  Readers stop below the
	 * smallest inflight offset (the horizon): a transaction that got later
	 * offsets but became visible first is never delivered before it.  A slot
	 * whose transaction committed without making its commit durable (an
	 * asynchronous commit, or one a synchronous standby has not confirmed)
	 * stays taken, with the commit's LSN in inflight_lsn, until that LSN is
	 * flushed and replicated: readers see only durable messages.
	 */
	slock_t		mutex;
	bool		alloc_known;	/* alloc_next is set (by a commit since start) */
	int			nwaiting;		/* slots waiting for their LSN */
	int64		alloc_next;
	int64		inflight[SBP_MAX_INFLIGHT];	/* first offset; -1: free */
	XLogRecPtr	inflight_lsn[SBP_MAX_INFLIGHT];	/* 0: committing; else waiting */
	TimestampTz inflight_since[SBP_MAX_INFLIGHT];	/* when it began waiting */
	pg_atomic_uint64 commits;	/* committing transactions */
	pg_atomic_uint64 changes;	/* moves when readers may have more: waiters' wake-up check */
	pg_atomic_uint64 messages;
	pg_atomic_uint64 bytes;
	pg_atomic_uint64 wakeups;	/* NOTIFYs sent by the worker */
	pg_atomic_uint64 fetches;
	pg_atomic_uint64 replays;	/* fetches starting below an offset already served */
	pg_atomic_uint64 served;	/* highest next_offset handed to a consumer */
	pg_atomic_uint64 last_fetch_offset;	/* PG_UINT64_MAX until the first fetch */
	pg_atomic_uint64 last_fetch_at;	/* TimestampTz */
	pg_atomic_uint32 notify_pending;
	ConditionVariable cv;		/* broadcast when changes moves */
} SbpStreamState;

#include "access/xact.h"

#define SBP_NO_VIEW_MARK PG_UINT64_MAX
extern void sbp_view_changed(void);
extern uint64 sbp_view_mark(void);
extern bool sbp_view_still_valid(uint64 mark);
extern void sbp_view_xact_event(XactEvent event);

extern bool sbp_shmem_ready(void);
extern SbpStreamState *sbp_stream_state(Oid catalog, int32 stream_id, const char *token);
extern void sbp_state_unpin(SbpStreamState *st);
extern void sbp_state_gone(SbpStreamState *st);
extern void sbp_state_reserve(Oid catalog, int32 stream_id, const char *token);
extern void sbp_state_mark_dropped(Oid dbid, Oid catalog, int32 stream_id);
extern void sbp_shmem_end_of_xact(void);
extern bool sbp_alloc_known(SbpStreamState *st);
extern int	sbp_alloc(SbpStreamState *st, int64 floor, bool reset, int64 n, int64 *first);
extern void sbp_alloc_release(SbpStreamState *st, int slot, int64 first, int64 n,
							  bool committed);
extern void sbp_alloc_wait(SbpStreamState *st, int slot, XLogRecPtr lsn);
extern void sbp_release_durable(SbpStreamState *st, XLogRecPtr lsn);
extern int64 sbp_horizon(SbpStreamState *st, bool *waiting);
extern bool sbp_settle_stream(SbpStreamState *st);
extern void sbp_settle_durable(void);
extern void sbp_notify_worker(SbpStreamState *st);
extern bool sbp_notify_wanted(void);
extern bool sbp_notify_pending_peek(void);
extern bool sbp_db_worker_running(void);
extern void sbp_register_worker_latch(void);
extern void sbp_register_launcher_latch(void);
extern bool sbp_launcher_running(void);
extern bool sbp_standbys_named(void);
extern void sbp_shmem_request(void);
extern void sbp_shmem_startup(void);
extern void sbp_foreach_state(Oid dbid, Oid catalog,
							  void (*fn) (SbpStreamState *, void *), void *arg);

/* fetch.c */
extern int64 sbp_stream_head(const SbpStream *s);

/* worker.c */
extern void sbp_register_worker(void);

/* audience.c: the audience type's parts, for sends */
typedef struct SbpName
{
	const char *s;
	int			len;
} SbpName;

extern Datum sbp_audience_from_arrays(int kind, ArrayType *targets, ArrayType *excluded);
extern void sbp_audience_parts(Datum audience, int *kind, SbpName **names,
							   int *ntargets, int *nexcluded);

/* signalr.c: applications and the envelope of the application stream */
#define SBP_SIGNALR_STREAM "$signalr"	/* local name of an application's stream */

/* envelope kinds (version 2) */
#define SBP_ENV_ALL			1
#define SBP_ENV_CONNECTIONS	2
#define SBP_ENV_GROUPS		3
#define SBP_ENV_USERS		4
#define SBP_ENV_INVOKE		5
#define SBP_ENV_RESULT		6
#define SBP_ENV_FAILED		7
#define SBP_ENV_CANCEL		8
#define SBP_ENV_JOINED		9
#define SBP_ENV_LEFT		10

/* envelope flags */
#define SBP_ENV_KEYED			0x01	/* a 16-byte batch key follows the flags */
#define SBP_ENV_UNREGISTERED	0x02	/* joined: the registry did not know the connection */

/* limits of the SignalR layer's names, in bytes */
#define SBP_HUB_NAME_MAX		256
#define SBP_CONNECTION_ID_MAX	256
#define SBP_GROUP_NAME_MAX		1024
#define SBP_USER_ID_MAX			1024

typedef struct SbpApp
{
	int32		id;
	Oid			owner;
	char	   *stream;			/* the application stream's name */
} SbpApp;

extern void sbp_resolve_app(text *name, Oid user, SbpApp *app);
extern void sbp_envelope_start(StringInfo buf, int kind, int flags, const uint8 *key,
							   const char *hub, int hublen);
extern void sbp_envelope_list(StringInfo buf, const SbpName *names, int n);
extern void sbp_envelope_finish(StringInfo buf, const char *payload, int len);
extern void sbp_signalr_append(SbpApp *app, StringInfo envelope);

#endif							/* SIGNALR_BP_H */
