-- pgTAP: publish/fetch behaviour seen from one session.
BEGIN;
SELECT plan(12);

SELECT lives_ok($$SELECT signalr_bp.create_application('tap')$$, 'create an application');
SELECT lives_ok($$SELECT signalr_bp.create_stream('tap/s')$$, 'create a stream');
SELECT throws_ok($$SELECT signalr_bp.create_stream('tap/s')$$, '42710', 'stream "tap/s" already exists');
SELECT throws_ok($$SELECT signalr_bp.publish('tap/missing', 'x')$$, '42704', 'stream "tap/missing" does not exist');
SELECT throws_ok($$SELECT signalr_bp.publish('nope/s', 'x')$$, '42704', 'stream "nope/s" does not exist');
SELECT throws_ok($$SELECT signalr_bp.publish('tap/s', NULL)$$, '22004', 'message payload must not be null');
SELECT throws_ok($$SELECT signalr_bp.publish('', 'x')$$, '42602', 'stream name must not be empty');
SELECT throws_ok($$SELECT signalr_bp.publish('tap/' || repeat('n', 253), 'x')$$, '42622', 'stream name is too long');
SELECT throws_ok($$SELECT signalr_bp.create_stream('tap/$x')$$, '42939', 'stream name "tap/$x" is reserved');
SELECT throws_ok($$SELECT * FROM signalr_bp.fetch('tap/s', 5)$$, 'SB002', NULL, 'resuming past the head is SB002');
-- inside this (uncommitted) transaction nothing is published yet: head stays 0
SELECT lives_ok($$SELECT signalr_bp.publish('tap/s', 'pending')$$, 'publish buffers');
SELECT is(signalr_bp.head('tap/s'), 0::bigint, 'uncommitted messages are invisible');

SELECT * FROM finish();
ROLLBACK;
