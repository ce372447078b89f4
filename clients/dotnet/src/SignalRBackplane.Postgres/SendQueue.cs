using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace SignalRBackplane.Postgres;

/// <summary>
/// The send path. Sends are coalesced into transactions (one send_batch call
/// per hub, each with its own batch key), executed one at a time on the
/// sender's own connection pool, in one round trip each. Every transaction
/// stays in the unconfirmed buffer until it is confirmed: at its commit for
/// Committed, else when the stream consumer reads one of its keyed envelopes
/// back (readers see only durable messages). After any error, and whenever
/// something may have lost a commit (the consumer reconnected, the registry
/// was lost), every unconfirmed transaction is sent again, in order, before
/// anything new; the keys make the engine drop the ones it already has.
/// What cannot be confirmed within SendTimeout is reported.
/// Locking: <c>_lock</c> guards the buffer (the sender loop, the consumer's
/// confirmations and the timer's expiry all take it, briefly); everything
/// else belongs to the sender loop.
/// </summary>
internal sealed class SendQueue
{
    private static readonly SendItem ResendMarker = new("", "", Array.Empty<byte>(), null, 0);
    // a commit is read back well within this once durable: when the consumer caught up
    // with the stream this long after a commit and did not see it, it was lost
    private static readonly TimeSpan ReadBackMargin = TimeSpan.FromSeconds(1);

    private readonly PostgresBackplaneOptions _options;
    private readonly ILogger _logger;
    private NpgsqlDataSource _source;
    private readonly NpgsqlDataSource _unprepared;
    private readonly Outage _outage;
    private readonly Action _connectionError;
    private readonly Channel<SendItem> _channel = Channel.CreateUnbounded<SendItem>(
        new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _capacity;
    private readonly object _lock = new();
    private readonly LinkedList<SendUnit> _unconfirmed = new();
    private readonly Dictionary<Guid, SendUnit> _byKey = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly string _sql;
    private volatile bool _resend;
    private long _caughtUpAt;   // Stopwatch timestamp at which a fetch that read everything began
    private long _missingWarnedAt;   // Stopwatch timestamp of the last "did not come back" warning
    private Timer? _timer;
    private Task? _loop;
    private long _resent, _appliedOnRetry, _duplicates;

    // source: the sender's own pool, so that a restart is always an error here, never a silently fresh connection;
    // unprepared: the same without statement preparation, used once a pooler refused prepared statements;
    // connectionError: called after a send failed for want of PostgreSQL
    public SendQueue(PostgresBackplaneOptions options, NpgsqlDataSource source, NpgsqlDataSource unprepared,
                     ILogger logger, Action connectionError)
    {
        _options = options;
        _source = source;
        _unprepared = unprepared;
        _logger = logger;
        _connectionError = connectionError;
        _outage = new Outage("sender", options.ServerName, logger);
        _capacity = new SemaphoreSlim(Math.Max(1, options.MaxUnconfirmedSends));
        _sql = "SELECT signalr_bp.send_batch($1, $2, $3::signalr_bp.audience[], $4, $5, $6)";
    }

    /// <summary>
    /// Transactions sent again; of those, the ones the extension applied then (their first
    /// attempt never committed, or a crash lost its commit) and the ones it already had.
    /// </summary>
    public (long Resent, long AppliedOnRetry, long Duplicates) RetryCounts =>
        (Interlocked.Read(ref _resent), Interlocked.Read(ref _appliedOnRetry), Interlocked.Read(ref _duplicates));

    /// <summary>Sends waiting for confirmation (or for their turn).</summary>
    public int Unconfirmed => Math.Max(1, _options.MaxUnconfirmedSends) - _capacity.CurrentCount;

    public void Start()
    {
        _loop = Task.Run(RunAsync);
        _timer = new Timer(_ => OnTimer(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    /// <summary>
    /// Queues a send to an audience (signalr_bp.audience text form). The task
    /// completes as the send completion mode says; it faults when the send is
    /// refused or cannot be confirmed within SendTimeout (except Queued, whose
    /// failures are logged and counted).
    /// </summary>
    public Task SendAsync(string hub, string audience, byte[] payload, CancellationToken ct = default)
    {
        if (!_capacity.Wait(0))
            return SendWhenRoomAsync(hub, audience, payload, ct);
        return Enqueue(hub, audience, payload);
    }

    private async Task SendWhenRoomAsync(string hub, string audience, byte[] payload, CancellationToken ct)
    {
        await _capacity.WaitAsync(ct).ConfigureAwait(false);
        await Enqueue(hub, audience, payload).ConfigureAwait(false);
    }

    private Task Enqueue(string hub, string audience, byte[] payload)
    {
        var done = _options.SendCompletion == SendCompletion.Queued ? null
            : new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_channel.Writer.TryWrite(new SendItem(hub, audience, payload, done, Stopwatch.GetTimestamp())))
        {
            _capacity.Release();
            return Task.FromException(new InvalidOperationException("the backplane is stopping"));
        }
        Metrics.MessagesSent.Add(1);
        return done?.Task ?? Task.CompletedTask;
    }

    /// <summary>The stream consumer read an envelope carrying this batch key.</summary>
    public void Confirm(Guid key)
    {
        SendUnit? unit;
        lock (_lock)
        {
            if (!_byKey.TryGetValue(key, out unit) || unit.Node == null)
                return;
            RemoveLocked(unit);
        }
        // the commit's answer may have been lost on the way: the send is done all the same
        unit.Complete();
    }

    /// <summary>The consumer read everything committed before <paramref name="fetchStarted"/> (a Stopwatch timestamp).</summary>
    public void ConsumerCaughtUp(long fetchStarted) => Volatile.Write(ref _caughtUpAt, fetchStarted);

    /// <summary>Something may have lost commits (a crash, a failover): send every unconfirmed transaction again.</summary>
    public void RequestResend()
    {
        _resend = true;
        _channel.Writer.TryWrite(ResendMarker);
    }

    /// <summary>
    /// Sends what is queued, then waits up to <paramref name="drain"/> for the
    /// buffer to be confirmed, then stops; what is left is reported.
    /// </summary>
    public async Task StopAsync(TimeSpan drain)
    {
        _channel.Writer.TryComplete();
        var deadline = Stopwatch.GetTimestamp() + (long) (drain.TotalSeconds * Stopwatch.Frequency);
        if (_loop != null)
            await Task.WhenAny(_loop, Task.Delay(drain)).ConfigureAwait(false);
        while (Unconfirmed > 0 && Stopwatch.GetTimestamp() < deadline)
            await Task.Delay(20).ConfigureAwait(false);
        _stopping.Cancel();
        if (_loop != null)
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _timer?.Dispose();
        SendUnit[] left;
        lock (_lock)
            left = _unconfirmed.ToArray();
        foreach (var unit in left)
            Fail(unit, new InvalidOperationException("the backplane stopped before the send was confirmed"));
        while (_channel.Reader.TryRead(out var item))
            if (item != ResendMarker)
            {
                _capacity.Release();
                item.Done?.TrySetException(new InvalidOperationException("the backplane stopped before the send was made"));
            }
    }

    // ---- the sender loop ----

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<SendItem>();
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
            {
                if (_options.BatchWindow > TimeSpan.Zero)
                    await Task.Delay(_options.BatchWindow, _stopping.Token).ConfigureAwait(false);
                batch.Clear();
                while (batch.Count < _options.MaxBatchSize && reader.TryRead(out var item))
                    if (item != ResendMarker)
                        batch.Add(item);
                if (_resend)
                    await ResendAllAsync().ConfigureAwait(false);
                if (batch.Count == 0)
                    continue;
                var unit = new SendUnit(batch);
                lock (_lock)
                    AddLocked(unit);
                if (!await TrySendAsync(unit).ConfigureAwait(false))
                    await ResendAllAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    // sends every unconfirmed transaction again, in order, until all went through
    private async Task ResendAllAsync()
    {
        int failures = 0;
        while (_resend)
        {
            _stopping.Token.ThrowIfCancellationRequested();
            _resend = false;
            SendUnit[] pending;
            lock (_lock)
                pending = _unconfirmed.ToArray();
            bool ok = true;
            foreach (var unit in pending)
            {
                if (unit.Node == null)
                    continue;   // confirmed or reported meanwhile
                if (!await TrySendAsync(unit).ConfigureAwait(false))
                {
                    ok = false;
                    break;
                }
            }
            if (ok)
                continue;
            _resend = true;
            // at once after the first failure (a failover is usually over), then backing off
            var delay = failures == 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(failures, 5)));
            failures++;
            if (delay > TimeSpan.Zero)
                await Task.Delay(delay, _stopping.Token).ConfigureAwait(false);
        }
    }

    // false when PostgreSQL could not be reached (the transaction stays for a resend)
    private async Task<bool> TrySendAsync(SendUnit unit)
    {
        bool retry = unit.Attempts++ > 0;
        if (retry)
        {
            Metrics.Retries.Add(1);
            Interlocked.Increment(ref _resent);
        }
        int[] appended;
        try
        {
            appended = await ExecuteAsync(unit).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (_source != _unprepared && PreparationRefused(ex))
        {
            // the statement failed before it ran (its implicit transaction with it): send again, unprepared
            _logger.LogWarning("the sender of hub server {Server} cannot use prepared statements ({SqlState}: {Message}); " +
                               "a transaction-mode pooler without support for them? Sending without preparing from now on " +
                               "(set PrepareSends = false to skip this)", _options.ServerName, ex.SqlState, ex.MessageText);
            _source = _unprepared;
            unit.LastError = ex;
            _resend = true;
            return false;
        }
        catch (PostgresException ex) when (!Transient.Is(ex))
        {
            return await RefusedAsync(unit, ex).ConfigureAwait(false);
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested || ex is not OperationCanceledException)
        {
            unit.LastError = ex;
            _resend = true;
            _outage.Failed(ex);
            try
            {
                _connectionError();
            }
            catch (Exception inner)
            {
                _logger.LogDebug(inner, "reacting to a connection error failed");
            }
            return false;
        }
        _outage.Succeeded();
        Metrics.Batches.Add(1);
        foreach (int n in appended)
            if (n == 0)
            {
                Metrics.Duplicates.Add(1);
                Interlocked.Increment(ref _duplicates);
            }
            else if (retry)
                Interlocked.Increment(ref _appliedOnRetry);
        bool confirmed = _options.SendCompletion == SendCompletion.Committed;
        lock (_lock)
        {
            // the latest commit (or duplicate answer): it is read back after this
            unit.CommittedAt = Stopwatch.GetTimestamp();
            // a durable commit is its own confirmation
            if (confirmed && unit.Node != null)
                RemoveLocked(unit);
        }
        unit.Complete();
        return true;
    }

    // the SQL refused the transaction: find the send it refuses and report it alone
    private async Task<bool> RefusedAsync(SendUnit unit, PostgresException ex)
    {
        if (unit.Items.Count == 1)
        {
            Fail(unit, ex);
            return true;
        }
        var parts = new List<SendUnit>(unit.Items.Count);
        lock (_lock)
        {
            if (unit.Node == null)
                return true;
            // the transaction rolled back: its keys were never stored, fresh ones are fine
            var after = unit.Node;
            foreach (var item in unit.Items)
            {
                var part = new SendUnit(new List<SendItem> { item }, unit.Created);
                part.Node = _unconfirmed.AddAfter(after, part);
                after = part.Node;
                foreach (var call in part.Calls)
                    _byKey[call.Key] = part;
                parts.Add(part);
            }
            RemoveLocked(unit, releaseCapacity: false);
        }
        foreach (var part in parts)
            if (part.Node != null && !await TrySendAsync(part).ConfigureAwait(false))
                return false;
        return true;
    }

    // one transaction, one round trip: send_batch per hub
    private async Task<int[]> ExecuteAsync(SendUnit unit)
    {
        var ct = _stopping.Token;
        await using var conn = await _source.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(conn);
        // Accepted and Queued do not wait for the WAL flush: async_commit (one statement, not a set_config before it)
        bool asyncCommit = _options.SendCompletion != SendCompletion.Committed;
        foreach (var call in unit.Calls)
        {
            var cmd = new NpgsqlBatchCommand(_sql);
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ApplicationName });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = call.Hub });
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = call.Audiences, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = call.Payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = call.Key, NpgsqlDbType = NpgsqlDbType.Uuid });
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = asyncCommit });
            batch.BatchCommands.Add(cmd);
        }
        // one result set per send_batch call, in order
        var appended = new int[unit.Calls.Count];
        int set = 0;
        await using (var reader = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            do
            {
                if (set < appended.Length && await reader.ReadAsync(ct).ConfigureAwait(false))
                    appended[set] = reader.IsDBNull(0) ? 0 : Convert.ToInt32(reader.GetValue(0));
                set++;
            } while (await reader.NextResultAsync(ct).ConfigureAwait(false));
        }
        return appended;
    }

    // what a session that lost (or never had) the statement's preparation answers: 26000 (prepared
    // statement does not exist), 42P05 (already exists), 0A000 "cached plan must not change result type"
    private static bool PreparationRefused(PostgresException ex) =>
        ex.SqlState is "26000" or "42P05"
        || (ex.SqlState == "0A000" && ex.MessageText.Contains("cached plan", StringComparison.Ordinal));

    // ---- the buffer ----

    private void AddLocked(SendUnit unit)
    {
        unit.Node = _unconfirmed.AddLast(unit);
        foreach (var call in unit.Calls)
            _byKey[call.Key] = unit;
    }

    private void RemoveLocked(SendUnit unit, bool releaseCapacity = true)
    {
        if (unit.Node == null)
            return;
        _unconfirmed.Remove(unit.Node);
        unit.Node = null;
        foreach (var call in unit.Calls)
            _byKey.Remove(call.Key);
        if (releaseCapacity)
            _capacity.Release(unit.Items.Count);
    }

    // reports a transaction lost or refused: Error log, metric, the waiting callers' exception
    private void Fail(SendUnit unit, Exception error)
    {
        lock (_lock)
        {
            if (unit.Node == null)
                return;
            RemoveLocked(unit);
        }
        Metrics.SendsFailed.Add(unit.Items.Count, new KeyValuePair<string, object?>("server", _options.ServerName));
        _logger.LogError(error, "{Count} message(s) of hub {Hub} could not be sent: {Reason}",
                         unit.Items.Count, unit.Calls[0].Hub, error.Message);
        unit.Fail(error);
    }

    // every 250 ms: report what timed out; send again what the consumer should have seen by now
    private void OnTimer()
    {
        try
        {
            long now = Stopwatch.GetTimestamp();
            long caughtUp = Volatile.Read(ref _caughtUpAt);
            var expired = new List<SendUnit>();
            bool missing = false;
            lock (_lock)
            {
                foreach (var unit in _unconfirmed)
                {
                    if (Stopwatch.GetElapsedTime(unit.Created, now) > _options.SendTimeout)
                        expired.Add(unit);
                    else if (unit.CommittedAt != 0 && caughtUp > unit.CommittedAt
                             && Stopwatch.GetElapsedTime(unit.CommittedAt, caughtUp) > ReadBackMargin)
                        missing = true;
                }
            }
            foreach (var unit in expired)
                Fail(unit, new TimeoutException(
                    $"the send was not confirmed within {_options.SendTimeout.TotalSeconds:0.###} s" +
                    (unit.LastError != null ? $"; last error: {unit.LastError.Message}" : ""), unit.LastError));
            if (missing && !_resend)
            {
                // once in a while: until they come back or time out, this repeats every second or so
                if (_missingWarnedAt == 0 || Stopwatch.GetElapsedTime(_missingWarnedAt, now) > TimeSpan.FromSeconds(30))
                {
                    _missingWarnedAt = now;
                    _logger.LogWarning("committed sends of hub server {Server} did not come back from the stream; sending them again",
                                       _options.ServerName);
                }
                RequestResend();
            }
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "the send queue's timer failed");
        }
    }
}

internal sealed class SendItem(string hub, string audience, byte[] payload, TaskCompletionSource? done, long enqueued)
{
    public string Hub { get; } = hub;
    public string Audience { get; } = audience;
    public byte[] Payload { get; } = payload;
    public TaskCompletionSource? Done { get; } = done;
    public long Enqueued { get; } = enqueued;
}

/// <summary>One hub's part of a send transaction: one send_batch call, one key.</summary>
internal sealed record HubCall(string Hub, Guid Key, string[] Audiences, byte[][] Payloads);

/// <summary>Sends committed together: one transaction, one send_batch call per hub.</summary>
internal sealed class SendUnit
{
    public SendUnit(List<SendItem> items, long created = 0)
    {
        Items = new List<SendItem>(items);
        Created = created != 0 ? created : items.Min(i => i.Enqueued);
        Calls = new List<HubCall>(1);
        // time-ordered keys (UUIDv7): sent_batch's primary key grows at its right edge instead of
        // touching a random leaf per send (and writing a full-page image of it after each checkpoint)
        foreach (var hub in Items.GroupBy(i => i.Hub))
            Calls.Add(new HubCall(hub.Key, Guid.CreateVersion7(), hub.Select(i => i.Audience).ToArray(),
                                  hub.Select(i => i.Payload).ToArray()));
    }

    public List<SendItem> Items { get; }
    public List<HubCall> Calls { get; }
    public long Created { get; }
    public long CommittedAt { get; set; }
    public int Attempts { get; set; }
    public LinkedListNode<SendUnit>? Node { get; set; }
    public Exception? LastError { get; set; }

    public void Complete()
    {
        foreach (var item in Items)
            item.Done?.TrySetResult();
    }

    public void Fail(Exception error)
    {
        foreach (var item in Items)
            item.Done?.TrySetException(error);
    }
}
