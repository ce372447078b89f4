-- The extension installs into its own schema with a fixed set of objects.
CREATE EXTENSION signalr_bp;
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
  FROM pg_extension WHERE extname = 'signalr_bp';
SELECT p.oid::regprocedure AS function, p.prosecdef, p.provolatile
  FROM pg_proc p WHERE p.pronamespace = 'signalr_bp'::regnamespace ORDER BY p.oid::regprocedure::text;
SELECT c.relname, c.relkind, c.relpersistence
  FROM pg_class c WHERE c.relnamespace = 'signalr_bp'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY 1;
-- every segment starts empty; the highest generation of each class is current
SELECT durable, slot, generation FROM signalr_bp.segment ORDER BY durable DESC, slot;
-- errors tests use this: run a statement, return its SQLSTATE and message
CREATE FUNCTION public.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- SignalR tests use these: an application stream's envelope (format in
-- src/signalr.c) as text, and what the stream received from offset n on
CREATE FUNCTION public.envelope(e bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	kinds text[] := '{all,connections,groups,users,invoke,result,failed,cancel,joined,left}';
	flags integer := get_byte(e, 2);
	pos integer := 3;
	key text := '';
	len integer;
	n integer;
	hub text;
	lists text[] := '{}';
	ids text[];
BEGIN
	IF flags & 1 = 1 THEN
		key := ' key=' || encode(substring(e from pos + 1 for 16), 'hex');
		pos := pos + 16;
	END IF;
	len := get_byte(e, pos) * 256 + get_byte(e, pos + 1);
	hub := convert_from(substring(e from pos + 3 for len), 'UTF8');
	pos := pos + 2 + len;
	FOR l IN 1..2 LOOP
		n := (get_byte(e, pos) << 24) + (get_byte(e, pos + 1) << 16) + (get_byte(e, pos + 2) << 8) + get_byte(e, pos + 3);
		pos := pos + 4;
		ids := '{}';
		FOR i IN 1..n LOOP
			len := get_byte(e, pos) * 256 + get_byte(e, pos + 1);
			ids := ids || convert_from(substring(e from pos + 3 for len), 'UTF8');
			pos := pos + 2 + len;
		END LOOP;
		lists[l] := ids::text;
	END LOOP;
	RETURN format('v%s %s%s%s %s %s%s: %s', get_byte(e, 0), kinds[get_byte(e, 1)],
				  CASE WHEN flags & 2 = 2 THEN ' unregistered' ELSE '' END, key,
				  CASE WHEN hub = '' THEN '-' ELSE hub END, lists[1],
				  CASE WHEN lists[2] = '{}' THEN '' ELSE ' except ' || lists[2] END,
				  convert_from(substring(e from pos + 1), 'UTF8'));
END $$;
CREATE FUNCTION public.received(app text, n bigint DEFAULT 0)
RETURNS SETOF text LANGUAGE sql AS $$
	SELECT msg_offset || ': ' || envelope(payload) FROM signalr_bp.fetch(app || '/$signalr', n) $$;
