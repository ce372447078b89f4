/*
 * worker.c: the background worker (needs shared_preload_libraries).
 *
 * It connects to signalr_bp.database and loops:
 *  - wake-ups: producers set its latch after each commit; it sends one
 *    NOTIFY per stream that received commits since the last round, in one
 *    transaction, then sleeps notify_interval.  NOTIFY's cluster-wide commit
 *    lock is thus taken at most once per interval, never by producers.
 *  - retention: every maintenance_interval it runs signalr_bp.maintain().
 * It is a static worker started after recovery finishes, so it also starts
 * on a standby that gets promoted.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
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
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "signalr_bp.h"

PGDLLEXPORT void sbp_worker_main(Datum arg);

void
sbp_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "signalr_bp");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "sbp_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "signalr_bp worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "signalr_bp worker");
	RegisterBackgroundWorker(&worker);
}

typedef struct SbpWakeList
{
	int			n;
	int			cap;
	char	  (*tokens)[SBP_TOKEN_CHARS + 1];
	uint64	   *heads;
} SbpWakeList;

static void
sbp_collect_pending(SbpStreamState *st, void *arg)
{
	SbpWakeList *w = (SbpWakeList *) arg;

	if (pg_atomic_read_u32(&st->notify_pending) == 0 ||
		pg_atomic_exchange_u32(&st->notify_pending, 0) == 0)
		return;
	if (w->n == w->cap)
	{
		w->cap = Max(16, w->cap * 2);
		w->tokens = w->tokens ? repalloc(w->tokens, sizeof(*w->tokens) * w->cap) : palloc(sizeof(*w->tokens) * w->cap);
		w->heads = w->heads ? repalloc(w->heads, sizeof(uint64) * w->cap) : palloc(sizeof(uint64) * w->cap);
	}
	memcpy(w->tokens[w->n], st->token, sizeof(st->token));
	w->heads[w->n] = pg_atomic_read_u64(&st->head);
	w->n++;
	pg_atomic_fetch_add_u64(&st->wakeups, 1);
}

/* One round of wake-ups: returns true if it sent any. */
static bool
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
			snprintf(payload, sizeof(payload), UINT64_FORMAT, w.heads[i]);
			Async_Notify(channel, payload);
		}
		CommitTransactionCommand();
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(cxt);
	return w.n > 0;
}

/* Retention pass, if the extension is installed in this database. */
static void
sbp_maintain(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		if (OidIsValid(get_extension_oid("signalr_bp", true)))
		{
			pgstat_report_activity(STATE_RUNNING, "SELECT signalr_bp.maintain()");
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (SPI_execute("SELECT signalr_bp.maintain()", false, 0) != SPI_OK_SELECT)
				elog(ERROR, "signalr_bp.maintain() failed");
			SPI_finish();
		}
		PopActiveSnapshot();
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
		TimestampTz now = GetCurrentTimestamp();
		long		timeout;

		if (now >= next_maintenance)
		{
			sbp_maintain();
			next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   sbp_maintenance_interval);
		}
		timeout = (long) ((next_maintenance - GetCurrentTimestamp()) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 1), SBP_WAIT_EVENT("SignalrBpWorkerMain"));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* batch: whatever commits arrive during the pause go in the next round */
		if (sbp_send_wakeups(round_cxt) && sbp_notify_interval > 0)
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sbp_notify_interval, SBP_WAIT_EVENT("SignalrBpNotifyPause"));
	}
}
