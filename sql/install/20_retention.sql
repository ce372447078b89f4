-- Retention: segment rotation and maintain() (not a hot path: SQL).

-- Tells backends that remember stream views (segment order, low offsets)
-- to read them again once this transaction commits.
CREATE FUNCTION signalr_bp._view_changed()
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'sbp_view_changed_sql';

-- Rotate one class's ring when its current segment is older than
-- retention / 3 or larger than retention_size / 3: the oldest segment (whose
-- newest chunk is at least `retention` old) is truncated and becomes current.
-- Streams' low_offset moves past what was dropped, in the same transaction.
CREATE FUNCTION signalr_bp._rotate(p_durable boolean, p_force boolean)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_cur     record;
	v_old     record;
	v_prefix  text := CASE WHEN p_durable THEN 'seg_d' ELSE 'seg_f' END;
	-- the GUCs print with units ('1h', '1GB'); fall back to their defaults
	-- when the module has not been loaded into this session yet
	v_ret     interval := COALESCE(pg_catalog.current_setting('signalr_bp.retention', true), '1h')::interval;
	v_size    bigint := pg_catalog.pg_size_bytes(
					COALESCE(pg_catalog.current_setting('signalr_bp.retention_size', true), '1GB'));
	v_oldrel  regclass;
BEGIN
	PERFORM signalr_bp._guard();
	SELECT slot, generation, opened_at INTO v_cur
	  FROM signalr_bp.segment WHERE durable OPERATOR(pg_catalog.=) p_durable
	 ORDER BY generation DESC LIMIT 1;
	IF NOT p_force
	   AND ((pg_catalog.now() OPERATOR(pg_catalog.-) v_cur.opened_at)
			OPERATOR(pg_catalog.<) (v_ret OPERATOR(pg_catalog./) 3))
	   AND (pg_catalog.pg_total_relation_size(
			  pg_catalog.format('signalr_bp.%s%s', v_prefix, v_cur.slot)::regclass)
			OPERATOR(pg_catalog.<) (v_size OPERATOR(pg_catalog./) 3))
	THEN
		RETURN false;
	END IF;

	SELECT slot, generation INTO v_old
	  FROM signalr_bp.segment WHERE durable OPERATOR(pg_catalog.=) p_durable
	 ORDER BY generation LIMIT 1 FOR UPDATE;
	v_oldrel := pg_catalog.format('signalr_bp.%s%s', v_prefix, v_old.slot)::regclass;

	-- Two steps, so that readers never queue behind a long exclusive lock.
	-- SHARE waits out any writer still in the oldest segment but lets readers
	-- in; the low offsets move past it while they keep reading.  Then ACCESS
	-- EXCLUSIVE only for the TRUNCATE itself.  Each lock wait is short: new
	-- readers queue behind a waiting exclusive lock, so give up and retry on
	-- the next pass rather than stall them.
	SET LOCAL lock_timeout = '200ms';
	EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE MODE', v_oldrel);

	-- one index probe per stream rather than a scan of the whole segment
	EXECUTE pg_catalog.format(
		'UPDATE signalr_bp.stream s
			SET low_offset = m.next_offset
		   FROM (SELECT st.id,
						(SELECT c.last_offset OPERATOR(pg_catalog.+) 1
						   FROM %s c
						  WHERE c.stream_id OPERATOR(pg_catalog.=) st.id
						  ORDER BY c.last_offset DESC LIMIT 1) AS next_offset
				   FROM signalr_bp.stream st) m
		  WHERE s.id OPERATOR(pg_catalog.=) m.id
			AND s.low_offset OPERATOR(pg_catalog.<) m.next_offset', v_oldrel);

	SET LOCAL lock_timeout = '20ms';
	EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_oldrel);
	EXECUTE pg_catalog.format('TRUNCATE %s', v_oldrel);
	UPDATE signalr_bp.segment
	   SET generation = v_cur.generation OPERATOR(pg_catalog.+) 1,
		   opened_at = pg_catalog.now()
	 WHERE durable OPERATOR(pg_catalog.=) p_durable
	   AND slot OPERATOR(pg_catalog.=) v_old.slot;
	PERFORM signalr_bp._view_changed();
	RETURN true;
END
$$;

CREATE FUNCTION signalr_bp.maintain(force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_rotated integer := 0;
BEGIN
	PERFORM signalr_bp._guard();
	IF force IS NULL THEN
		RAISE EXCEPTION 'force must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM signalr_bp.reap();
	PERFORM signalr_bp._forget_batch_keys();
	IF signalr_bp._rotate(true, force) THEN v_rotated := v_rotated OPERATOR(pg_catalog.+) 1; END IF;
	IF signalr_bp._rotate(false, force) THEN v_rotated := v_rotated OPERATOR(pg_catalog.+) 1; END IF;
	RETURN v_rotated;
END
$$;
COMMENT ON FUNCTION signalr_bp.maintain(boolean) IS
'apply retention: rotate segments that are due (all of them with force); returns how many rotated';
