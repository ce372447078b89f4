/*
 * names.c: the rules every name obeys, and the primary-only guard.
 *
 * One helper, sbp_check_name(), checks every name a caller passes: stream
 * and application names here, and (through _check_name()) the SignalR
 * layer's server, hub, connection, group, user and invocation ids.  A name
 * is 1 to max bytes of valid text in the server encoding, without control
 * characters (C0, DEL, and C1: U+0080 to U+009F).  Stream names are
 * "<application>/<local>": the application part, up to the first "/", names
 * the application that owns the stream; "/" can appear in the local part but
 * never in an application name, so two applications' names cannot collide.
 * No shared state, no locks.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "signalr_bp.h"

PG_FUNCTION_INFO_V1(sbp_check_name_sql);

/* Does s (valid UTF-8) contain a C1 control character (U+0080 to U+009F)? */
static bool
sbp_has_c1_utf8(const char *s, int len)
{
	for (int i = 0; i + 1 < len; i++)
		if ((unsigned char) s[i] == 0xC2 &&
			(unsigned char) s[i + 1] >= 0x80 && (unsigned char) s[i + 1] <= 0x9F)
			return true;
	return false;
}

/*
 * Check a name of len bytes: what ("hub name") is its kind for the messages,
 * max_bytes its limit; flags SBP_NAME_NO_SLASH refuses "/".  Never returns on
 * a bad name.  The value is not quoted in messages: it may be what is wrong.
 */
void
sbp_check_name(const char *s, int len, const char *what, int max_bytes, int flags)
{
	const char *utf8;

	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("%s must not be empty", what)));
	if (len > max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s is too long", what),
				 errdetail("The value has %d bytes; the limit is %d.", len, max_bytes)));
	if (!pg_verifymbstr(s, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("%s is not valid in encoding \"%s\"", what, GetDatabaseEncodingName())));
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		/* server encodings are ASCII-safe: these bytes are always characters */
		if (c < 0x20 || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("%s must not contain control characters", what)));
		if (c == '/' && (flags & SBP_NAME_NO_SLASH))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("%s must not contain \"/\"", what)));
	}
	/* C1 controls: look at the text as UTF-8 (a no-op conversion in UTF-8 databases) */
	utf8 = pg_server_to_any(s, len, PG_UTF8);
	if (sbp_has_c1_utf8(utf8, utf8 == s ? len : (int) strlen(utf8)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("%s must not contain control characters", what)));
	if (utf8 != s)
		pfree((char *) utf8);
}

/*
 * _check_name(value text, what text, max_bytes integer, slash_ok boolean)
 * RETURNS void
 *
 * The SQL functions' way to the same rules.
 */
Datum
sbp_check_name_sql(PG_FUNCTION_ARGS)
{
	const char *what = PG_ARGISNULL(1) ? "name" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			flags = (!PG_ARGISNULL(3) && !PG_GETARG_BOOL(3)) ? SBP_NAME_NO_SLASH : 0;
	int32		max_bytes;
	text	   *value;

	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_bytes must be a positive number")));
	max_bytes = PG_GETARG_INT32(2);
	if (PG_ARGISNULL(0))
		sbp_check_name(NULL, 0, what, max_bytes, flags);
	value = PG_GETARG_TEXT_PP(0);
	sbp_check_name(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), what, max_bytes, flags);
	PG_RETURN_VOID();
}

/* Check an application-name argument and return it as a C string. */
char *
sbp_application_name_arg(text *name)
{
	if (name == NULL)
		sbp_check_name(NULL, 0, "application name", SBP_MAX_APP_NAME_BYTES, 0);
	sbp_check_name(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), "application name",
				   SBP_MAX_APP_NAME_BYTES, SBP_NAME_NO_SLASH);
	return text_to_cstring(name);
}

/*
 * Check a stream-name argument, "<application>/<local>", and split it.
 * Errors if it is not a valid name; says nothing about whether it exists.
 */
void
sbp_stream_name_parse(text *name, SbpStreamName *out)
{
	const char *s;
	int			len;
	const char *slash;
	int			applen;

	if (name == NULL)
		sbp_check_name(NULL, 0, "stream name", SBP_MAX_NAME_BYTES, 0);
	s = VARDATA_ANY(name);
	len = VARSIZE_ANY_EXHDR(name);
	sbp_check_name(s, len, "stream name", SBP_MAX_NAME_BYTES, 0);
	slash = memchr(s, '/', len);
	if (slash == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("stream name must start with its application's name"),
				 errhint("Stream names have the form \"<application>/<name>\".")));
	applen = slash - s;
	sbp_check_name(s, applen, "application name", SBP_MAX_APP_NAME_BYTES, 0);
	sbp_check_name(slash + 1, len - applen - 1, "local stream name",
				   SBP_MAX_LOCAL_NAME_BYTES, 0);

	memcpy(out->full, s, len);
	out->full[len] = '\0';
	memcpy(out->app, s, applen);
	out->app[applen] = '\0';
	memcpy(out->local, slash + 1, len - applen - 1);
	out->local[len - applen - 1] = '\0';
}

/* Local names starting with "$" belong to the extension (the SignalR stream). */
bool
sbp_stream_name_reserved(const SbpStreamName *name)
{
	return name->local[0] == '$';
}

/* Raise reserved_name for a caller that names a reserved stream where it may not. */
void
sbp_refuse_reserved(const SbpStreamName *name)
{
	if (sbp_stream_name_reserved(name))
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("stream name \"%s\" is reserved", name->full),
				 errdetail("Local stream names starting with \"$\" belong to signalr_bp itself.")));
}

/* Validate a stream-name argument and return it as a C string. */
char *
sbp_stream_name_arg(text *name)
{
	SbpStreamName parsed;

	sbp_stream_name_parse(name, &parsed);
	return pstrdup(parsed.full);
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
