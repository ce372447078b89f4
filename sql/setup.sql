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
