/*
 * signalr_bp.c: module load, GUCs, and what preloading adds.
 *
 * Loaded per backend on first use, the module registers its transaction
 * callbacks, invalidation callbacks, object access hook and GUCs.  Loaded
 * through shared_preload_libraries it also reserves shared memory (commit
 * horizons, wake-ups, counters) and registers the launcher, which settles
 * asynchronous commits and runs the database worker (batched NOTIFY,
 * retention).
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "signalr_bp.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			sbp_max_message_size = 1024 * 1024;
int			sbp_chunk_size = 8000;
int			sbp_retention = 3600;
int			sbp_retention_size = 1024;
int			sbp_notify_interval = 5;
int			sbp_maintenance_interval = 1000;
int			sbp_poll_interval = 10;
int			sbp_max_streams = 1024;
int			sbp_batch_key_retention = 900;
char	   *sbp_database = NULL;

#ifdef SBP_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;

static void
sbp_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	sbp_shmem_request();
}
#endif

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
sbp_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	sbp_shmem_startup();
}

static void
sbp_define_gucs(void)
{
	DefineCustomIntVariable("signalr_bp.max_message_size",
							"Largest payload one message may carry.",
							NULL, &sbp_max_message_size, 1024 * 1024, 1,
							256 * 1024 * 1024, PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("signalr_bp.chunk_size",
							"Target size of the chunk row that packs consecutive messages.",
							"Chunks up to a page stay inline and uncompressed.",
							&sbp_chunk_size, 8000, 256, 8100, PGC_SUSET,
							GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("signalr_bp.retention",
							"Minimum time messages stay available for replay.",
							NULL, &sbp_retention, 3600, 3, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("signalr_bp.retention_size",
							"Size per durability class above which old segments are dropped early.",
							NULL, &sbp_retention_size, 1024, 1, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("signalr_bp.notify_interval",
							"Minimum time between two wake-up NOTIFY rounds of the worker.",
							NULL, &sbp_notify_interval, 5, 0, 10000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("signalr_bp.maintenance_interval",
							"Time between two retention passes of the worker.",
							NULL, &sbp_maintenance_interval, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("signalr_bp.poll_interval",
							"Polling period of waiting fetches when the module is not preloaded.",
							NULL, &sbp_poll_interval, 10, 1, 10000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("signalr_bp.batch_key_retention",
							"How long maintain() keeps the keys of applied send batches.",
							"A batch retried with a key still kept is not applied again.",
							&sbp_batch_key_retention, 900, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	/* sizing and the worker's database exist only when preloaded */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("signalr_bp.max_streams",
								"Streams tracked in shared memory (wake-ups and counters).",
								NULL, &sbp_max_streams, 1024, 16, 1024 * 1024,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomStringVariable("signalr_bp.database",
								   "Database in which the background worker sends wake-ups and applies retention.",
								   NULL, &sbp_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}
	MarkGUCPrefixReserved("signalr_bp");
}

void
_PG_init(void)
{
	sbp_define_gucs();
	sbp_guard_init();
	sbp_streams_init();
	sbp_publish_init();
	sbp_lifecycle_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

#ifdef SBP_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sbp_shmem_request_hook;
#else
	sbp_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sbp_shmem_startup_hook;
	sbp_register_worker();
}
