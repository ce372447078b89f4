/*
 * worker.c: the background processes (need shared_preload_libraries).
 *
 * The launcher is a static worker, started after recovery (so also on a
 * promoted standby), connected to no database.  It
 *  - makes commits durable for readers: a committer whose commit is not
 *    durable yet (asynchronous commit) leaves its inflight slot waiting for
 *    the commit's LSN and sets the launcher's latch; the launcher flushes the
 *    WAL up to the highest waiting LSN, waits for the synchronous standbys
 *    and frees the slots (sbp_settle_durable), for every database.  It runs
 *    with synchronous_commit = on and ignores query cancels, so that the
 *    standby wait ends only when the standbys confirm (or at shutdown);
 *  - runs the database worker in signalr_bp.database and starts it again
 *    when it exits.  A database that does not exist is logged once, then
 *    looked for again quietly every second.
 *
 * The database worker loops:
 *  - wake-ups: the first commit after a round sets its latch; it sends one
 *    NOTIFY per stream that has news (payload: the durable head), in one
 *    transaction, at most once per notify_interval.  NOTIFY's cluster-wide
 *    commit lock is thus taken at most once per interval, never by producers;
 *  - retention: every maintenance_interval it runs signalr_bp.maintain(),
 *    under the extension lock (the one DROP EXTENSION takes), after looking
 *    the extension up again once the lock is granted: a DROP EXTENSION that
 *    races it is waited out and then seen, never reported as an error.
 *    While the extension's objects are of another version than the library
 *    (a new library before ALTER EXTENSION UPDATE) it logs that once and
 *    waits.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "signalr_bp.h"

/* How often the launcher looks for a missing database or dead worker. */
#define SBP_RETRY_MS 1000
/* A database worker that dies sooner than this is restarted later and later. */
#define SBP_QUICK_DEATH_MS 10000
#define SBP_MAX_BACKOFF_MS 60000

PGDLLEXPORT void sbp_launcher_main(Datum arg);
PGDLLEXPORT void sbp_worker_main(Datum arg);

/* Register the launcher (from _PG_init, when preloaded). */
void
sbp_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "signalr_bp");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "sbp_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "signalr_bp launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "signalr_bp launcher");
	RegisterBackgroundWorker(&worker);
}

/* Start the database worker; NULL when no background worker slot is free. */
static BackgroundWorkerHandle *
sbp_start_db_worker(void)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	worker.bgw_notify_pid = MyProcPid;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "signalr_bp");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "sbp_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "signalr_bp worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "signalr_bp worker");
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

/*
 * Does signalr_bp.database exist and accept connections?  pg_database is a
 * shared catalog; without a database only a heap scan can read it (as the
 * autovacuum launcher does).
 */
static bool
sbp_database_exists(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		exists = false;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!exists && HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		exists = strcmp(NameStr(db->datname), sbp_database) == 0 && db->datallowconn;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return exists;
}

static void
sbp_reload_if_asked(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

void
sbp_launcher_main(Datum arg)
{
	BackgroundWorkerHandle *handle = NULL;
	TimestampTz next_start = 0;
	TimestampTz started_at = 0;
	int			backoff = SBP_RETRY_MS;
	bool		missing_logged = false;
	bool		noslot_logged = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	/* only shutdown may end a wait for the synchronous standbys */
	pqsignal(SIGINT, SIG_IGN);
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	sbp_register_launcher_latch();

	for (;;)
	{
		TimestampTz now;
		long		timeout = SBP_RETRY_MS;

		CHECK_FOR_INTERRUPTS();
		sbp_reload_if_asked();
		sbp_settle_durable();

		now = GetCurrentTimestamp();
		if (handle != NULL)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
			{
				pfree(handle);
				handle = NULL;
				backoff = TimestampDifferenceExceeds(started_at, now, SBP_QUICK_DEATH_MS) ?
					SBP_RETRY_MS : Min(backoff * 2, SBP_MAX_BACKOFF_MS);
				next_start = TimestampTzPlusMilliseconds(now, backoff);
			}
		}
		/* a worker left by a previous launcher keeps running */
		if (handle == NULL && now >= next_start && !sbp_db_worker_running())
		{
			if (!sbp_database_exists())
			{
				if (!missing_logged)
					ereport(LOG,
							(errmsg("signalr_bp: database \"%s\" does not exist or does not accept connections", sbp_database),
							 errdetail("Wake-up NOTIFYs and retention are paused until it is created; readers are not affected."),
							 errhint("Create the database, or set signalr_bp.database and restart the server.")));
				missing_logged = true;
				next_start = TimestampTzPlusMilliseconds(now, SBP_RETRY_MS);
			}
			else if ((handle = sbp_start_db_worker()) == NULL)
			{
				if (!noslot_logged)
					ereport(LOG,
							(errmsg("signalr_bp: no background worker slot for the signalr_bp worker"),
							 errhint("Raise max_worker_processes.")));
				noslot_logged = true;
				next_start = TimestampTzPlusMilliseconds(now, SBP_RETRY_MS);
			}
			else
			{
				missing_logged = noslot_logged = false;
				started_at = now;
			}
		}
		if (handle == NULL && next_start > now)
			timeout = Min(timeout, (long) ((next_start - now) / 1000) + 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, SBP_WAIT_EVENT("SignalrBpLauncherMain"));
		ResetLatch(MyLatch);
	}
}

typedef struct SbpWakeList
{
	int			n;
	int			cap;
	char		(*tokens)[SBP_TOKEN_CHARS + 1];
	int64	   *heads;
} SbpWakeList;

static void
sbp_collect_pending(SbpStreamState *st, void *arg)
{
	SbpWakeList *w = (SbpWakeList *) arg;
	int64		head;

	if (pg_atomic_read_u32(&st->notify_pending) == 0 ||
		pg_atomic_exchange_u32(&st->notify_pending, 0) == 0)
		return;
	if (w->n == w->cap)
	{
		w->cap = Max(16, w->cap * 2);
		w->tokens = w->tokens ? repalloc(w->tokens, sizeof(*w->tokens) * w->cap) : palloc(sizeof(*w->tokens) * w->cap);
		w->heads = w->heads ? repalloc(w->heads, sizeof(int64) * w->cap) : palloc(sizeof(int64) * w->cap);
	}
	/* announce the durable head: what a fetch can deliver now */
	head = sbp_horizon(st, NULL);
	if (head == PG_INT64_MAX)
		head = (int64) pg_atomic_read_u64(&st->head);
	memcpy(w->tokens[w->n], st->token, sizeof(st->token));
	w->heads[w->n] = head;
	w->n++;
	pg_atomic_fetch_add_u64(&st->wakeups, 1);
}

/* One round of wake-ups. */
static void
sbp_send_wakeups(MemoryContext cxt)
{
	SbpWakeList w = {0};
	MemoryContext old = MemoryContextSwitchTo(cxt);

	sbp_foreach_state(MyDatabaseId, InvalidOid, sbp_collect_pending, &w);
	if (w.n > 0)
	{
		StartTransactionCommand();
		for (int i = 0; i < w.n; i++)
		{
			char		channel[NAMEDATALEN];
			char		payload[32];

			snprintf(channel, sizeof(channel), "signalr_bp_%s", w.tokens[i]);
			snprintf(payload, sizeof(payload), INT64_FORMAT, w.heads[i]);
			Async_Notify(channel, payload);
		}
		CommitTransactionCommand();
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(cxt);
}

/*
 * Retention pass, if the extension is installed in this database: under
 * the extension lock, so that a DROP EXTENSION either waits for it or has
 * committed before it looks.
 */
static void
sbp_maintain(void)
{
	static bool outdated_logged = false;
	static Oid	current_ext = InvalidOid;	/* found of the library's version */
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		Oid			ext = get_extension_oid("signalr_bp", true);

		if (OidIsValid(ext))
		{
			LockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
			if (get_extension_oid("signalr_bp", true) != ext)
				ext = InvalidOid;
		}
		/*
		 * The previous version's objects, until ALTER EXTENSION UPDATE.
		 * Checked until found current, then again only for another
		 * extension (a later update needs a newer library, hence a
		 * restart).
		 */
		if (OidIsValid(ext) && ext != current_ext)
		{
			if (sbp_extension_current(ext))
			{
				current_ext = ext;
				outdated_logged = false;
			}
			else
			{
				if (!outdated_logged)
					ereport(LOG,
							(errmsg("signalr_bp worker: retention waits for ALTER EXTENSION signalr_bp UPDATE in database \"%s\"",
									sbp_database),
							 errdetail("The extension's objects are of another version than the library (%s).",
									   SBP_VERSION)));
				outdated_logged = true;
				ext = InvalidOid;
			}
		}
		if (OidIsValid(ext))
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			pgstat_report_activity(STATE_RUNNING, "SELECT signalr_bp.maintain()");
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (SPI_execute("SELECT signalr_bp.maintain()", false, 0) != SPI_OK_SELECT)
				elog(ERROR, "signalr_bp.maintain() failed");
			SPI_finish();
			PopActiveSnapshot();
		}
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* log and carry on: a lock timeout just means "try next time" */
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
sbp_worker_main(Datum arg)
{
	MemoryContext round_cxt;
	TimestampTz next_maintenance = 0;
	TimestampTz next_notify = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(sbp_database, NULL, 0);
	sbp_register_worker_latch();
	round_cxt = AllocSetContextCreate(TopMemoryContext, "signalr_bp worker round",
									  ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("signalr_bp worker started in database \"%s\"", sbp_database)));

	for (;;)
	{
		TimestampTz now;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		sbp_reload_if_asked();

		/* batch: commits that arrive during the pause go in the next round */
		now = GetCurrentTimestamp();
		if (now >= next_notify && sbp_notify_wanted())
		{
			sbp_send_wakeups(round_cxt);
			next_notify = TimestampTzPlusMilliseconds(now, sbp_notify_interval);
		}
		if (now >= next_maintenance)
		{
			sbp_maintain();
			next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   sbp_maintenance_interval);
		}

		now = GetCurrentTimestamp();
		timeout = (long) ((next_maintenance - now) / 1000);
		if (sbp_notify_pending_peek())
			timeout = Min(timeout, (long) ((next_notify - now) / 1000));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 1), SBP_WAIT_EVENT("SignalrBpWorkerMain"));
		ResetLatch(MyLatch);
	}
}
