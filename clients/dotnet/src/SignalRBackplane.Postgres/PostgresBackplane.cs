using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace SignalRBackplane.Postgres;

/// <summary>
/// One per process: registers this hub server, consumes the application's
/// stream (PostgresBackplane.Consumer.cs), keeps the registration alive and
/// rebuilds it when the registry was lost (PostgresBackplane.Registry.cs), and
/// owns the send queue (SendQueue.cs). Each hub's lifetime manager attaches to
/// it by hub name.
/// Three connection pools: the sender's (only it uses them, so a restart is
/// always seen as an error), the consumer's session (unpooled), and one for
/// everything else (registry, groups, presence, client results).
/// </summary>
public sealed partial class PostgresBackplane : IHostedService, IAsyncDisposable
{
    private readonly PostgresBackplaneOptions _options;
    private readonly ILogger _logger;
    private readonly NpgsqlDataSource _pool;
    private readonly NpgsqlDataSource _sendSource;
    private readonly NpgsqlDataSource _sendSourceUnprepared;
    private readonly NpgsqlDataSource _consumerSource;
    private readonly SendQueue _sends;
    private readonly object _hubsLock = new();
    private Dictionary<string, IBackplaneHub> _hubs = new();
    private IBackplaneHub[] _hubList = Array.Empty<IBackplaneHub>();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _consumer, _heartbeat;
    private Timer? _writeWatchdog;
    private bool _abandoned, _stopped;

    /// <summary>Created once by dependency injection (<c>AddPostgresBackplane</c>).</summary>
    public PostgresBackplane(IOptions<PostgresBackplaneOptions> options, ILogger<PostgresBackplane> logger)
    {
        _options = options.Value;
        _logger = logger;
        var settings = ConnectionStrings.WithDefaults(_options.ConnectionString);
        _pool = NpgsqlDataSource.Create(settings);
        var send = new NpgsqlConnectionStringBuilder(settings.ConnectionString)
        {
            ApplicationName = "signalr_bp sender " + _options.ServerName,
        };
        // the same sessions without preparation: the fallback behind a pooler that cannot carry it
        _sendSourceUnprepared = NpgsqlDataSource.Create(send);
        if (_options.PrepareSends && send.MaxAutoPrepare == 0)
        {
            send.MaxAutoPrepare = 4;
            send.AutoPrepareMinUsages = 2;
        }
        _sendSource = _options.PrepareSends ? NpgsqlDataSource.Create(send) : _sendSourceUnprepared;
        var consume = new NpgsqlConnectionStringBuilder(settings.ConnectionString)
        {
            Pooling = false,                // a session of its own, held for as long as it works
            ApplicationName = "signalr_bp consumer " + _options.ServerName,
            CommandTimeout = (int) Math.Ceiling(_options.PollWait.TotalSeconds) + 30,
        };
        _consumerSource = NpgsqlDataSource.Create(consume);
        _sends = new SendQueue(_options, _sendSource, _sendSourceUnprepared, logger, OnSendConnectionError);
    }

    /// <summary>The signalr_bp application this server belongs to.</summary>
    public string Application => _options.ApplicationName;

    /// <summary>This hub server's name in the registry.</summary>
    public string ServerName => _options.ServerName;
    internal PostgresBackplaneOptions Options => _options;

    /// <summary>The offset of the application stream up to which the hubs have been handed every message.</summary>
    public long NextOffset => Interlocked.Read(ref _nextOffset);

    /// <summary>Completes when the server is registered and consuming.</summary>
    public Task Ready => _registered.Task;

    /// <summary>Sends kept until confirmed (or waiting for their turn).</summary>
    public int UnconfirmedSends => _sends.Unconfirmed;

    internal (long Resent, long AppliedOnRetry, long Duplicates) RetryCounts => _sends.RetryCounts;

    internal void Attach(string hub, IBackplaneHub manager)
    {
        lock (_hubsLock)
        {
            var hubs = new Dictionary<string, IBackplaneHub>(_hubs) { [hub] = manager };
            _hubs = hubs;
            _hubList = hubs.Values.ToArray();
        }
    }

    /// <summary>Registers this hub server and starts consuming, heartbeating and sending.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_consumer != null)
            return;
        if (_options.CreateApplication)
            await EnsureApplicationAsync(cancellationToken);
        await RegisterAsync(cancellationToken);
        _nextOffset = await ScalarAsync<long>("SELECT signalr_bp.head($1)", cancellationToken, _stream);
        _sends.Start();
        _consumer = Task.Run(ConsumeAsync);
        _heartbeat = Task.Run(HeartbeatAsync);
        _writeWatchdog = new Timer(_ => CheckHungWrites(), null, TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(500));
        _registered.TrySetResult();
    }

    /// <summary>Sends what is queued, stops, and deregisters (its connections leave presence at once).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopped)
            return;
        _stopped = true;
        if (_consumer != null && !_abandoned)
        {
            // what was sent is committed and read back before the consumer stops
            var drain = TimeSpan.FromSeconds(Math.Min(5, _options.SendTimeout.TotalSeconds));
            await _sends.StopAsync(drain).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        _stopping.Cancel();
        _writeWatchdog?.Dispose();
        foreach (var t in new[] { _consumer, _heartbeat })
            if (t != null)
                await t.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_abandoned || _consumer == null)
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

    /// <summary>Stops consuming, sending and heartbeating without deregistering, as a crashed process would.</summary>
    internal async Task AbandonAsync()
    {
        _abandoned = true;
        _stopping.Cancel();
        await _sends.StopAsync(TimeSpan.Zero).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var t in new[] { _consumer, _heartbeat })
            if (t != null)
                await t.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Stops (as <see cref="StopAsync"/>) and closes the connection pool.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        await _pool.DisposeAsync();
        await _sendSource.DisposeAsync();
        if (_sendSourceUnprepared != _sendSource)
            await _sendSourceUnprepared.DisposeAsync();
        await _consumerSource.DisposeAsync();
        _stopping.Dispose();
    }

    // ---- sending ----

    /// <summary>Queues a send to an audience (signalr_bp.audience text form); see SendQueue.</summary>
    internal Task SendAsync(string hub, string audience, byte[] payload, CancellationToken ct = default) =>
        _sends.SendAsync(hub, audience, payload, ct);

    // a send failed for want of PostgreSQL: stale pooled connections and cached host states go,
    // and the registry is checked at once (a restart or failover empties it)
    private void OnSendConnectionError()
    {
        _sendSource.Clear();
        _sendSourceUnprepared.Clear();
        ForgetHostStates();
        CheckRegistrySoon();
    }

    // after a failover the cached "standby" state of the new primary would keep Npgsql away from it
    private void ForgetHostStates()
    {
        foreach (var source in new[] { _pool, _sendSource, _sendSourceUnprepared, _consumerSource })
            if (source is NpgsqlMultiHostDataSource multi)
                multi.ClearDatabaseStates();
    }

    private void CheckHungWrites()
    {
        long now = Stopwatch.GetTimestamp();
        foreach (var hub in _hubList)
        {
            try
            {
                hub.CheckHungWrites(now);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "checking writes to slow clients failed");
            }
        }
    }

    // ---- SQL ----

    /// <summary>
    /// Runs a registry or client-result call, again while PostgreSQL cannot be
    /// reached (a restart, a failover) for up to <see cref="PostgresBackplaneOptions.SendTimeout"/>;
    /// when this server's registration is gone (SB003, the registry was lost) it registers
    /// again first. Other errors, and the last transient one, are thrown.
    /// </summary>
    internal async Task<T> Resilient<T>(Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        long deadline = Stopwatch.GetTimestamp() + (long) (_options.SendTimeout.TotalSeconds * Stopwatch.Frequency);
        for (int attempt = 0; ; attempt++)
        {
            int registrations = Registrations;
            try
            {
                return await call(ct);
            }
            catch (PostgresException ex) when (ex.SqlState == "SB003" && Stopwatch.GetTimestamp() < deadline)
            {
                try
                {
                    await RegisterAgainAsync($"hub server \"{_options.ServerName}\" is not registered", registrations, ct);
                    continue;
                }
                catch (Exception inner) when (Transient.Is(inner) && !ct.IsCancellationRequested)
                {
                    // PostgreSQL went away again: wait below, then try the call again
                }
            }
            catch (Exception ex) when (Transient.Is(ex) && !ct.IsCancellationRequested && !_stopping.IsCancellationRequested
                                       && Stopwatch.GetTimestamp() < deadline)
            {
                ForgetHostStates();
                CheckRegistrySoon();
            }
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(500, 25 << Math.Min(attempt, 5))), ct);
        }
    }

    internal Task ResilientExecute(string sql, CancellationToken ct, params object?[] args) =>
        Resilient(async c =>
        {
            await ExecuteAsync(sql, c, args);
            return true;
        }, ct);

    internal Task<T> ResilientScalar<T>(string sql, CancellationToken ct, params object?[] args) =>
        Resilient(c => ScalarAsync<T>(sql, c, args), ct);

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

    /// <summary>
    /// For a statement whose caller must not see an exception (a client's
    /// answer to a client result: SignalR would close that client's
    /// connection) and that may run twice: retried through a restart or
    /// failover for up to SendTimeout, then logged at Error. Never throws.
    /// </summary>
    internal async Task ExecuteRetryingAsync(string what, string sql, params object?[] args)
    {
        try
        {
            await ResilientExecute(sql, _stopping.Token, args);
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested)
        {
            _logger.LogError(ex, "{What} of hub server {Server} failed", what, _options.ServerName);
        }
        catch (OperationCanceledException)
        {
        }
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
        try
        {
            await ExecuteAsync(
                "SELECT signalr_bp.create_application($1, durable => $2, server_ttl => $3) " +
                "WHERE NOT EXISTS (SELECT FROM signalr_bp.application WHERE name = $1)",
                ct, _options.ApplicationName, _options.Durable, _options.ServerTtl);
        }
        catch (PostgresException ex) when (ex.SqlState == "42710")
        {
            // Another hub server created it between our check and our insert
            // (servers starting at once): fine if it is owned by the role this
            // server would have made its owner, as create_application does.
            if (!await ScalarAsync<bool>(
                    "SELECT EXISTS (SELECT FROM signalr_bp.application " +
                    "WHERE name = $1 AND owner = session_user::regrole)",
                    ct, _options.ApplicationName))
                throw;
        }
    }
}

/// <summary>What the backplane needs from a hub's lifetime manager.</summary>
internal interface IBackplaneHub
{
    /// <summary>
    /// An envelope of this hub (or of none: results, failures) from the stream; must not block.
    /// Messages for connections are staged on their writers, which are added to
    /// <paramref name="staged"/>; the consumer writes them at the end of the read.
    /// </summary>
    void Deliver(in Envelope envelope, List<ConnectionWriter> staged);

    /// <summary>The registry was lost: register this server's connections and groups of the hub again.</summary>
    Task ReRegisterAsync(CancellationToken ct);

    /// <summary>Aborts connections whose pending write started too long before <paramref name="now"/>.</summary>
    void CheckHungWrites(long now);
}
