/*
 * compat.h: the only place that tests PG_VERSION_NUM (PostgreSQL 14 to 18).
 */
#ifndef SBP_COMPAT_H
#define SBP_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 140000
#error "signalr_bp requires PostgreSQL 14 or later"
#endif

/* PG15 added the shmem_request_hook; before it, space is requested in _PG_init. */
#if PG_VERSION_NUM >= 150000
#define SBP_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/* PG15 renamed EmitWarningsOnPlaceholders. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* PG17 gave extensions named wait events; older servers use PG_WAIT_EXTENSION. */
#if PG_VERSION_NUM >= 170000
#include "utils/wait_event.h"
#define SBP_WAIT_EVENT(name) sbp_wait_event(name)
static inline uint32
sbp_wait_event(const char *name)
{
	static uint32 id = 0;

	if (id == 0)
		id = WaitEventExtensionNew(name);
	return id;
}
#else
#include "pgstat.h"
#define SBP_WAIT_EVENT(name) PG_WAIT_EXTENSION
#endif

/* PG17 replaced PGPROC.pgprocno with ProcNumber. */
#include "storage/proc.h"
#if PG_VERSION_NUM >= 170000
#define SBP_MY_PROCNO MyProcNumber
#define SBP_INVALID_PROCNO INVALID_PROC_NUMBER
#else
#define SBP_MY_PROCNO (MyProc->pgprocno)
#define SBP_INVALID_PROCNO INVALID_PGPROCNO
#endif
#ifndef GetPGProcByNumber
#define GetPGProcByNumber(n) (&ProcGlobal->allProcs[(n)])
#endif

#endif							/* SBP_COMPAT_H */
