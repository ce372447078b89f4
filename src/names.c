/*
 * names.c: rules for stream names, and the primary-only guard.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "signalr_bp.h"

/* Validate a stream-name argument and return it as a C string. */
char *
sbp_stream_name_arg(text *name)
{
	char	   *s;
	int			len;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	s = text_to_cstring(name);
	len = strlen(s);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("stream name must not be empty")));
	if (len > SBP_MAX_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("stream name is too long"),
				 errdetail("The name has %d bytes; the limit is %d.",
						   len, SBP_MAX_NAME_BYTES)));
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("stream name must not contain control characters")));
	}
	return s;
}

/* Streams live on the primary: refuse on a hot standby with a clear message. */
void
sbp_require_primary(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("signalr_bp requires a primary server"),
				 errdetail("This server is a standby in recovery."),
				 errhint("Connect to the primary (the -rw service on CloudNativePG).")));
}
