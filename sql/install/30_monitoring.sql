-- Monitoring: the streams view.

CREATE VIEW signalr_bp.streams AS
SELECT v.name, v.durable, v.owner, v.low_offset, v.head,
	   CASE WHEN v.last_fetch_offset IS NULL THEN NULL
			ELSE GREATEST(v.head OPERATOR(pg_catalog.-) v.last_fetch_offset, 0)
	   END AS backlog,
	   v.last_fetch_at, v.messages, v.bytes, v.commits, v.wakeups, v.fetches, v.replays
  FROM (SELECT s.name, s.durable, pg_catalog.pg_get_userbyid(s.owner) AS owner,
			   s.low_offset, signalr_bp.head(s.name) AS head,
			   st.last_fetch_offset, st.last_fetch_at, st.messages, st.bytes,
			   st.commits, st.wakeups, st.fetches, st.replays
		  FROM signalr_bp.stream s
		  LEFT JOIN signalr_bp._stream_stats() st
				 ON st.stream_id OPERATOR(pg_catalog.=) s.id) v;
COMMENT ON VIEW signalr_bp.streams IS
'per stream: retained range, head, consumer backlog and activity, counters since server start';
