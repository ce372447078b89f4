-- The GUCs refuse values out of range.  Only these statements: PostgreSQL 17
-- added units to the range in the message, so this test has a second
-- expected file (guc_range_1.out) and nothing else should need one.
LOAD 'signalr_bp';
SET signalr_bp.max_message_size = 0;
SET signalr_bp.chunk_size = 100000;
SET signalr_bp.poll_interval = 0;
