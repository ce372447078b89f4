-- Monitoring: the streams view.
--
-- It shows the streams of the applications the current role may use, and
-- nothing of the others: the filter runs first (a materialized CTE, in a
-- security_barrier view), so neither head() and _stream_stats() nor a
-- caller's own leaky WHERE clause ever see another application's rows.

CREATE VIEW signalr_bp.streams WITH (security_barrier) AS
WITH mine AS MATERIALIZED (
	SELECT a.name OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) s.local_name AS name,
		   a.name AS application, s.durable, pg_catalog.pg_get_userbyid(a.owner) AS owner,
		   s.low_offset
	  FROM signalr_bp.stream s
	  JOIN signalr_bp.application a ON a.id OPERATOR(pg_catalog.=) s.app_id
	 WHERE signalr_bp._may_use(a.owner)
)
SELECT v.name, v.application, v.durable, v.owner, v.low_offset, v.head,
	   CASE WHEN v.last_fetch_offset IS NULL THEN NULL
			ELSE GREATEST(v.head OPERATOR(pg_catalog.-) v.last_fetch_offset, 0)
	   END AS backlog,
	   v.last_fetch_at, v.messages, v.bytes, v.commits, v.wakeups, v.fetches, v.replays
  FROM (SELECT m.name, m.application, m.durable, m.owner, m.low_offset,
			   signalr_bp.head(m.name) AS head,
			   st.last_fetch_offset, st.last_fetch_at, st.messages, st.bytes,
			   st.commits, st.wakeups, st.fetches, st.replays
		  FROM mine m
		  LEFT JOIN LATERAL signalr_bp._stream_stats(m.name) st ON true) v;
COMMENT ON VIEW signalr_bp.streams IS
'per stream of the caller''s applications: retained range, head, consumer backlog and activity, counters since server start';

GRANT SELECT ON signalr_bp.streams TO signalr_bp_hub;
