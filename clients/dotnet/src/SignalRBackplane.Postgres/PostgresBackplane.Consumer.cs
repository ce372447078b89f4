using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace SignalRBackplane.Postgres;

// The stream consumer: one session follows the application stream from this
// server's offset (one statement per PollWait, a row per read), hands each
// envelope to its hub's lifetime manager (which filters with its local
// connections and never waits for a client), and tells
// the send queue which batch keys came back. After any error it reconnects at
// once and resumes from its offset; nothing committed is skipped.
public sealed partial class PostgresBackplane
{
    private string _stream = "";
    private long _nextOffset;

    private async Task ConsumeAsync()
    {
        var ct = _stopping.Token;
        var outage = new Outage("stream consumer", _options.ServerName, _logger);
        int failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var conn = await _consumerSource.OpenConnectionAsync(ct);
                // one statement per PollWait, a row per read (follow, in the select list, sends each row
                // as it is read); not prepared: a transaction-mode pooler may run each statement on
                // another server session
                await using var cmd = new NpgsqlCommand("SELECT signalr_bp.follow($1, $2, $3, $4)", conn);
                var stream = new NpgsqlParameter<string> { TypedValue = _stream };
                var offset = new NpgsqlParameter<long> { TypedValue = NextOffset };
                cmd.Parameters.Add(stream);
                cmd.Parameters.Add(offset);
                cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _options.FetchMaxBytes });
                cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = (int) _options.PollWait.TotalMilliseconds });
                while (!ct.IsCancellationRequested)
                {
                    offset.TypedValue = NextOffset;
                    stream.TypedValue = _stream;
                    // every commit before this was read once the next row (or the statement's end) is here
                    long started = Stopwatch.GetTimestamp();
                    await using (var reader = await cmd.ExecuteReaderAsync(ct))
                    {
                        if (failures > 0)
                        {
                            // back after an error: a restart or failover may have lost the registry
                            // and commits not yet durable; check both now, not at the next heartbeat
                            failures = 0;
                            outage.Succeeded();
                            CheckRegistrySoon();
                            _sends.RequestResend();
                        }
                        while (await reader.ReadAsync(ct))
                        {
                            // [int64 next_offset], then fetch_packed's messages
                            var row = reader.GetFieldValue<byte[]>(0);
                            if (row.Length < 8)
                                throw new InvalidDataException($"a read of {_stream} returned a malformed row");
                            long next = BinaryPrimitives.ReadInt64BigEndian(row);
                            Dispatch(row, 8);
                            Interlocked.Exchange(ref _nextOffset, next);
                            // a read that was not cut short by max_bytes read everything committed when it began
                            if (row.Length - 8 < _options.FetchMaxBytes / 2)
                                _sends.ConsumerCaughtUp(started);
                            started = Stopwatch.GetTimestamp();
                        }
                    }
                    // the statement ended after a read that found nothing more
                    _sends.ConsumerCaughtUp(started);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (PostgresException ex) when (ex.SqlState is "SB001" or "SB002")
            {
                // the stream cannot give what we asked for: say so, and go on from its head
                _logger.LogError(ex, "hub server {Server} lost messages of its stream", _options.ServerName);
                try
                {
                    Interlocked.Exchange(ref _nextOffset, await ScalarAsync<long>("SELECT signalr_bp.head($1)", ct, _stream));
                    _sends.RequestResend();
                }
                catch (Exception inner) when (!ct.IsCancellationRequested)
                {
                    _logger.LogDebug(inner, "reading the head of {Stream} failed", _stream);
                }
            }
            catch (Exception ex)
            {
                if (ct.IsCancellationRequested)
                    return;
                Metrics.Reconnects.Add(1);
                outage.Failed(ex);
                if (failures > 0)
                    _logger.LogDebug(ex, "stream consumer of {Server} failed again; resuming from offset {Offset}",
                                     _options.ServerName, NextOffset);
                ForgetHostStates();
                // at once the first time (a terminated session, a failover), then backing off
                var delay = failures == 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(failures, 5)));
                failures++;
                try
                {
                    await Task.Delay(delay, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    // writers with messages staged by the read being dispatched (the consumer's alone)
    private readonly List<ConnectionWriter> _staged = new();

    // [int64 offset][int32 length][envelope] per message, from start; a connection's messages
    // of one read go out in one write
    private void Dispatch(byte[] packed, int start)
    {
        int pos = start, count = 0;
        var hubs = _hubs;
        while (pos + 12 <= packed.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(packed.AsSpan(pos + 8));
            if (len < 0 || packed.Length - pos - 12 < len)
            {
                _logger.LogError("a fetch of {Stream} returned a malformed batch", _stream);
                break;
            }
            var data = packed.AsMemory(pos + 12, len);
            pos += 12 + len;
            count++;
            Envelope envelope;
            try
            {
                envelope = Envelope.Parse(data);
            }
            catch (InvalidDataException ex)
            {
                _logger.LogError(ex, "skipped an unreadable envelope of {Stream}", _stream);
                continue;
            }
            if (envelope.BatchKey is Guid key)
                _sends.Confirm(key);
            // results and failures of client invocations name no hub: whoever asked takes them
            if (envelope.Hub.Length == 0)
            {
                foreach (var hub in _hubList)
                    Deliver(hub, envelope);
            }
            else if (hubs.TryGetValue(envelope.Hub, out var hub))
                Deliver(hub, envelope);
        }
        foreach (var writer in _staged)
            writer.WriteStaged();
        _staged.Clear();
        if (count > 0)
            Metrics.MessagesReceived.Add(count);
    }

    private void Deliver(IBackplaneHub hub, in Envelope envelope)
    {
        try
        {
            hub.Deliver(envelope, _staged);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "delivering a {Kind} message of hub {Hub} failed", envelope.Kind, envelope.Hub);
        }
    }
}
