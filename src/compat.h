/*
 * compat.h: the only place that tests PG_VERSION_NUM (PostgreSQL 14 to 18).
 */
#ifndef SBP_COMPAT_H
#define SBP_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 140000
#error "signalr_bp requires PostgreSQL 14 or later"
#endif

/*
 * PG18 replaced the pg_attribute_noreturn() suffix with a pg_noreturn prefix
 * (C11 _Noreturn) and removed the suffix; older servers get the prefix from
 * the old attribute, which GCC and clang accept before a declaration too.
 */
#if PG_VERSION_NUM < 180000 && !defined(pg_noreturn)
#define pg_noreturn pg_attribute_noreturn()
#endif

/* PG15 added the shmem_request_hook; before it, space is requested in _PG_init. */
#if PG_VERSION_NUM >= 150000
#define SBP_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/* PG15 renamed EmitWarningsOnPlaceholders. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * PG17 gave extensions named wait events; older servers use PG_WAIT_EXTENSION.
 * Each distinct name gets its own id, allocated on first use in a process.
 */
#if PG_VERSION_NUM >= 170000
#include "utils/wait_event.h"
#define SBP_WAIT_EVENT(name) sbp_wait_event(name)
#define SBP_MAX_WAIT_EVENTS 8
static inline uint32
sbp_wait_event(const char *name)
{
	static const char *names[SBP_MAX_WAIT_EVENTS];
	static uint32 ids[SBP_MAX_WAIT_EVENTS];

	for (int i = 0; i < SBP_MAX_WAIT_EVENTS; i++)
	{
		if (names[i] == NULL)
		{
			ids[i] = WaitEventExtensionNew(name);
			names[i] = name;
			return ids[i];
		}
		if (strcmp(names[i], name) == 0)
			return ids[i];
	}
	return PG_WAIT_EXTENSION;
}
#else
#include "pgstat.h"
#define SBP_WAIT_EVENT(name) PG_WAIT_EXTENSION
#endif

/*
 * PG17 replaced PGPROC.pgprocno (int, invalid = INT32_MAX) with ProcNumber
 * (int, invalid = -1).  The worker's number is kept in a pg_atomic_uint32, so
 * both are handled as uint32 with one invalid value on every version.
 */
#include "storage/proc.h"
#if PG_VERSION_NUM >= 170000
#define SBP_MY_PROCNO ((uint32) MyProcNumber)
#else
#define SBP_MY_PROCNO ((uint32) MyProc->pgprocno)
#endif
#define SBP_INVALID_PROCNO PG_UINT32_MAX
#ifndef GetPGProcByNumber
#define GetPGProcByNumber(n) (&ProcGlobal->allProcs[(n)])
#endif

/* PG15 gave GetFlushRecPtr() a timeline argument. */
#include "access/xlog.h"
#if PG_VERSION_NUM >= 150000
#define SBP_FLUSH_REC_PTR() GetFlushRecPtr(NULL)
#else
#define SBP_FLUSH_REC_PTR() GetFlushRecPtr()
#endif

#endif							/* SBP_COMPAT_H */
