-- Roles.  Edit these files, not signalr_bp--<version>.sql: make assembles it
-- from sql/install/*.sql in name order.

-- Role hub servers log in as (or are granted).  Roles are cluster-wide, so it
-- may exist already from an installation in another database.
DO $$
BEGIN
	CREATE ROLE signalr_bp_hub NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
	NULL;
END
$$;
