using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace SignalRBackplane.Postgres;

/// <summary>
/// One per process: registers this hub server, consumes its stream with a
/// dedicated session connection (long poll, resumed from the last offset after
/// any error, so nothing committed is lost), heartbeats, re-registers local
/// state when the registry was rebuilt, and batches concurrent sends.
/// Each hub's lifetime manager attaches to it by hub name.
/// </summary>
public sealed class PostgresBackplane : IHostedService, IAsyncDisposable
{
    internal static readonly Meter Meter = new("SignalRBackplane.Postgres");
    private static readonly Counter<long> MessagesSent = Meter.CreateCounter<long>("signalr_bp.messages.sent");
    private static readonly Counter<long> MessagesReceived = Meter.CreateCounter<long>("signalr_bp.messages.received");
    private static readonly Counter<long> Batches = Meter.CreateCounter<long>("signalr_bp.send.batches");
    private static readonly Counter<long> Reconnects = Meter.CreateCounter<long>("signalr_bp.consumer.reconnects");

    private readonly PostgresBackplaneOptions _options;
    private readonly ILogger _logger;
    private readonly NpgsqlDataSource _pool;
    private readonly ConcurrentDictionary<string, IBackplaneHub> _hubs = new();
    private readonly Channel<PendingSend> _sends = Channel.CreateUnbounded<PendingSend>(
        new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _consumer, _heartbeat, _sender;
    private string _stream = "";
    private int _epoch;
    private long _nextOffset;
    private bool _abandoned;

    /// <summary>Created once by dependency injection (<c>AddPostgresBackplane</c>).</summary>
    public PostgresBackplane(IOptions<PostgresBackplaneOptions> options, ILogger<PostgresBackplane> logger)
    {
        _options = options.Value;
        _logger = logger;
        _pool = NpgsqlDataSource.Create(_options.ConnectionString);
    }

    /// <summary>The signalr_bp application this server belongs to.</summary>
    public string Application => _options.ApplicationName;

    /// <summary>This hub server's name in the registry.</summary>
    public string ServerName => _options.ServerName;
    internal PostgresBackplaneOptions Options => _options;

    /// <summary>The last offset of this server's stream handed to the hubs, plus one.</summary>
    public long NextOffset => Interlocked.Read(ref _nextOffset);

    /// <summary>Completes when the server is registered and consuming.</summary>
    public Task Ready => _registered.Task;

    internal void Attach(string hub, IBackplaneHub manager) => _hubs[hub] = manager;

    /// <summary>Registers this hub server and starts consuming, heartbeating and sending.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_consumer != null)
            return;
        if (_options.CreateApplication)
            await EnsureApplicationAsync(cancellationToken);
        await RegisterAsync(cancellationToken);
        _nextOffset = await ScalarAsync<long>("SELECT signalr_bp.head($1)", cancellationToken, _stream);
        _consumer = Task.Run(ConsumeAsync);
        _heartbeat = Task.Run(HeartbeatAsync);
        _sender = Task.Run(SendLoopAsync);
        _registered.TrySetResult();
    }

    /// <summary>Sends what is queued, stops, and deregisters (its connections leave presence at once).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping.IsCancellationRequested && !_abandoned)
            return;
        _sends.Writer.TryComplete();
        if (_sender != null)
            await _sender.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Cancel();
        foreach (var t in new[] { _consumer, _heartbeat })
            if (t != null)
                await t.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_abandoned)
            return;
        try
        {
            // graceful shutdown: the connections leave presence at once
            await ExecuteAsync("SELECT signalr_bp.deregister_server($1, $2)", cancellationToken,
                               _options.ApplicationName, _options.ServerName);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "deregistering hub server {Server} failed", _options.ServerName);
        }
    }

    /// <summary>Stops consuming and heartbeating without deregistering, as a crashed process would.</summary>
    internal async Task AbandonAsync()
    {
        _abandoned = true;
        _stopping.Cancel();
        foreach (var t in new[] { _consumer, _heartbeat })
            if (t != null)
                await t.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Stops (as <see cref="StopAsync"/>) and closes the connection pool.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        await _pool.DisposeAsync();
        _stopping.Dispose();
    }

    // ---- SQL ----

    internal async Task<T> ScalarAsync<T>(string sql, CancellationToken ct, params object?[] args)
    {
        await using var cmd = _pool.CreateCommand(sql);
        foreach (var a in args)
            cmd.Parameters.Add(Parameter(a));
        return (T) (await cmd.ExecuteScalarAsync(ct))!;
    }

    internal async Task ExecuteAsync(string sql, CancellationToken ct, params object?[] args)
    {
        await using var cmd = _pool.CreateCommand(sql);
        foreach (var a in args)
            cmd.Parameters.Add(Parameter(a));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    internal async Task<List<T>> ListAsync<T>(string sql, CancellationToken ct, params object?[] args)
    {
        await using var cmd = _pool.CreateCommand(sql);
        foreach (var a in args)
            cmd.Parameters.Add(Parameter(a));
        var list = new List<T>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            list.Add(reader.GetFieldValue<T>(0));
        return list;
    }

    private static NpgsqlParameter Parameter(object? value) => value switch
    {
        null => new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text },
        string[] a => new NpgsqlParameter { Value = a, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
        byte[][] a => new NpgsqlParameter { Value = a, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea },
        _ => new NpgsqlParameter { Value = value },
    };

    private async Task EnsureApplicationAsync(CancellationToken ct)
    {
        await ExecuteAsync(
            "SELECT signalr_bp.create_application($1, durable => $2, server_ttl => $3) " +
            "WHERE NOT EXISTS (SELECT FROM signalr_bp.application WHERE name = $1)",
            ct, _options.ApplicationName, _options.Durable, _options.ServerTtl);
    }

    private async Task RegisterAsync(CancellationToken ct)
    {
        await using var cmd = _pool.CreateCommand("SELECT stream, registry_epoch FROM signalr_bp.register_server($1, $2)");
        cmd.Parameters.Add(Parameter(_options.ApplicationName));
        cmd.Parameters.Add(Parameter(_options.ServerName));
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        _stream = reader.GetString(0);
        _epoch = reader.GetInt32(1);
        _logger.LogInformation("hub server {Server} registered in application {App}, stream {Stream}",
                               _options.ServerName, _options.ApplicationName, _stream);
    }

    // ---- consuming the stream ----

    private async Task ConsumeAsync()
    {
        var ct = _stopping.Token;
        var builder = new NpgsqlConnectionStringBuilder(_options.ConnectionString)
        {
            Pooling = false,                // a session of its own: never through a transaction pooler
            ApplicationName = "signalr_bp consumer " + _options.ServerName,
            KeepAlive = 15,
            CommandTimeout = (int) _options.PollWait.TotalSeconds + 30,
        };
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var conn = new NpgsqlConnection(builder.ConnectionString);
                await conn.OpenAsync(ct);
                await using var cmd = new NpgsqlCommand(
                    "SELECT next_offset, message_count, messages FROM signalr_bp.fetch_packed($1, $2, $3, $4)", conn);
                var from = cmd.Parameters.Add(new NpgsqlParameter { Value = _stream });
                var offset = new NpgsqlParameter<long> { TypedValue = NextOffset };
                cmd.Parameters.Add(offset);
                cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _options.FetchMaxBytes });
                cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = (int) _options.PollWait.TotalMilliseconds });
                await cmd.PrepareAsync(ct);
                while (!ct.IsCancellationRequested)
                {
                    offset.TypedValue = NextOffset;
                    from.Value = _stream;
                    long next;
                    byte[] messages;
                    await using (var reader = await cmd.ExecuteReaderAsync(ct))
                    {
                        await reader.ReadAsync(ct);
                        next = reader.GetInt64(0);
                        messages = reader.GetFieldValue<byte[]>(2);
                    }
                    await DispatchAsync(messages);
                    Interlocked.Exchange(ref _nextOffset, next);
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
                Interlocked.Exchange(ref _nextOffset, await ScalarAsync<long>("SELECT signalr_bp.head($1)", ct, _stream));
            }
            catch (PostgresException ex) when (ex.SqlState == "42704")
            {
                // our stream is gone: the server was reaped; register again
                _logger.LogWarning("hub server {Server} was removed; registering again", _options.ServerName);
                await ReRegisterAsync(ct);
            }
            catch (Exception ex)
            {
                Reconnects.Add(1);
                _logger.LogWarning(ex, "stream consumer of {Server} lost its connection; resuming from offset {Offset}",
                                   _options.ServerName, NextOffset);
                try { await Task.Delay(TimeSpan.FromMilliseconds(250), ct); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    private async Task DispatchAsync(byte[] packed)
    {
        int pos = 0;
        while (pos + 12 <= packed.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(packed.AsSpan(pos + 8));
            var envelope = Envelope.Parse(packed.AsMemory(pos + 12, len));
            pos += 12 + len;
            MessagesReceived.Add(1);
            // results and failures of client invocations name no hub: whoever asked takes them
            var targets = envelope.Hub.Length == 0 ? _hubs.Values.ToArray()
                : _hubs.TryGetValue(envelope.Hub, out var hub) ? new[] { hub } : Array.Empty<IBackplaneHub>();
            foreach (var target in targets)
            {
                try
                {
                    await target.DeliverAsync(envelope);
                }
                catch (Exception ex)
                {
                    _logger.LogError(ex, "delivering a {Kind} message of hub {Hub} failed", envelope.Kind, envelope.Hub);
                }
            }
        }
    }

    // ---- heartbeats and re-registration ----

    private async Task HeartbeatAsync()
    {
        var ct = _stopping.Token;
        using var timer = new PeriodicTimer(_options.HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    int epoch = await ScalarAsync<int>("SELECT signalr_bp.heartbeat($1, $2)", ct,
                                                       _options.ApplicationName, _options.ServerName);
                    if (epoch != _epoch)
                        await ReRegisterAsync(ct);
                }
                catch (PostgresException ex) when (ex.SqlState == "SB003")
                {
                    await ReRegisterAsync(ct);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    _logger.LogWarning(ex, "heartbeat of {Server} failed", _options.ServerName);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// After a reap, a crash or a failover the registry no longer knows this
    /// server: register it again and replay its connections and groups.
    /// </summary>
    private async Task ReRegisterAsync(CancellationToken ct)
    {
        string old = _stream;
        await RegisterAsync(ct);
        long head = await ScalarAsync<long>("SELECT signalr_bp.head($1)", ct, _stream);
        if (_stream != old || head < NextOffset)
            Interlocked.Exchange(ref _nextOffset, head);
        // the stream may still hold joined/left notices from before the loss:
        // let the consumer read them first, so the groups replayed are complete
        // (bounded: the consumer itself may be the caller, after a reap)
        var deadline = DateTime.UtcNow + _options.PollWait + TimeSpan.FromSeconds(1);
        while (NextOffset < head && DateTime.UtcNow < deadline)
            await Task.Delay(20, ct);
        foreach (var hub in _hubs.Values)
            await hub.ReRegisterAsync(ct);
        _logger.LogInformation("hub server {Server} registered again (registry epoch {Epoch})",
                               _options.ServerName, _epoch);
    }

    // ---- batched sends ----

    private sealed record PendingSend(string Hub, string Audience, byte[] Payload, TaskCompletionSource Done);

    /// <summary>Queue a send to an audience (signalr_bp.audience text form); concurrent sends go in one call.</summary>
    internal Task SendAsync(string hub, string audience, byte[] payload)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_sends.Writer.TryWrite(new PendingSend(hub, audience, payload, done)))
            return Task.FromException(new InvalidOperationException("the backplane is stopping"));
        MessagesSent.Add(1);
        return _options.SendCompletion == SendCompletion.Queued ? Task.CompletedTask : done.Task;
    }

    private async Task SendLoopAsync()
    {
        var reader = _sends.Reader;
        var batch = new List<PendingSend>();
        while (await reader.WaitToReadAsync())
        {
            if (_options.BatchWindow > TimeSpan.Zero)
                await Task.Delay(_options.BatchWindow);
            batch.Clear();
            while (batch.Count < _options.MaxBatchSize && reader.TryRead(out var s))
                batch.Add(s);
            // one call per hub: send_batch(app, hub, audiences, payloads)
            foreach (var group in batch.GroupBy(s => s.Hub))
            {
                var items = group.ToList();
                try
                {
                    await using var cmd = _pool.CreateCommand(
                        "SELECT signalr_bp.send_batch($1, $2, $3::signalr_bp.audience[], $4)");
                    cmd.Parameters.Add(Parameter(_options.ApplicationName));
                    cmd.Parameters.Add(Parameter(group.Key));
                    cmd.Parameters.Add(Parameter(items.Select(i => i.Audience).ToArray()));
                    cmd.Parameters.Add(Parameter(items.Select(i => i.Payload).ToArray()));
                    await cmd.ExecuteNonQueryAsync();
                    Batches.Add(1);
                    foreach (var i in items)
                        i.Done.TrySetResult();
                }
                catch (Exception ex)
                {
                    if (_options.SendCompletion == SendCompletion.Queued)
                        _logger.LogError(ex, "a batch of {Count} sends of hub {Hub} failed", items.Count, group.Key);
                    else
                        foreach (var i in items)
                            i.Done.TrySetException(ex);
                }
            }
        }
    }
}

/// <summary>What the backplane needs from a hub's lifetime manager.</summary>
internal interface IBackplaneHub
{
    Task DeliverAsync(Envelope envelope);
    Task ReRegisterAsync(CancellationToken ct);
}
