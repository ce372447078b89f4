using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace SignalRBackplane.Postgres;

// Registration: heartbeats, and the rebuild of this server's part of the
// registry when it was lost. The registry is unlogged: a crash or a failover
// empties it and moves the application's registry epoch. Deliveries do not
// depend on it (every server filters the application stream with what it holds
// in memory); presence, client results' "does not exist" and reaping do. A
// check runs at every heartbeat, and at once when the consumer or the sender
// comes back after an error.
public sealed partial class PostgresBackplane
{
    private readonly SemaphoreSlim _checkNow = new(0, 1);
    private readonly SemaphoreSlim _registering = new(1, 1);
    private int _epoch;
    // full registrations (server, connections, groups) completed; callers that saw the
    // registration missing pass the value they started with, so one rebuild serves them all
    private int _registrations;
    // Stopwatch timestamp at which this server last found the registry lost (0: never)
    private long _registryLostAt;

    /// <summary>The count of completed registrations, to pass to <see cref="RegisterAgainAsync"/>.</summary>
    internal int Registrations => Volatile.Read(ref _registrations);

    /// <summary>
    /// True for a while after this server found the registry lost: other servers may not have
    /// registered their connections again yet, so "connection does not exist" may not be final.
    /// </summary>
    internal bool RegistryRecentlyRebuilt =>
        Volatile.Read(ref _registryLostAt) is var at and not 0
        && Stopwatch.GetElapsedTime(at) < _options.HeartbeatInterval + TimeSpan.FromSeconds(2);

    private async Task RegisterAsync(CancellationToken ct)
    {
        await using var cmd = _pool.CreateCommand("SELECT stream, registry_epoch FROM signalr_bp.register_server($1, $2)");
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ApplicationName });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _options.ServerName });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        _stream = reader.GetString(0);
        _epoch = reader.GetInt32(1);
        _logger.LogInformation("hub server {Server} registered in application {App}, stream {Stream}",
                               _options.ServerName, _options.ApplicationName, _stream);
    }

    /// <summary>Completes when no re-registration is under way.</summary>
    internal async Task RegistrationIdle()
    {
        await _registering.WaitAsync(_stopping.Token);
        _registering.Release();
    }

    /// <summary>Asks the heartbeat loop to check the registration now rather than at its next beat.</summary>
    internal void CheckRegistrySoon()
    {
        try
        {
            if (_checkNow.CurrentCount == 0)
                _checkNow.Release();
        }
        catch (SemaphoreFullException)
        {
        }
    }

    private async Task HeartbeatAsync()
    {
        var ct = _stopping.Token;
        bool failing = false;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                // while PostgreSQL is away, look again soon: the registry is rebuilt the moment it is back
                var wait = failing ? TimeSpan.FromMilliseconds(200) : _options.HeartbeatInterval;
                await _checkNow.WaitAsync(wait, ct);
                int registrations = Registrations;
                try
                {
                    int epoch = await ScalarAsync<int>("SELECT signalr_bp.heartbeat($1, $2)", ct,
                                                       _options.ApplicationName, _options.ServerName);
                    failing = false;
                    if (epoch != _epoch)
                        await RegisterAgainAsync($"the registry of application \"{_options.ApplicationName}\" was lost " +
                                                 "(PostgreSQL crashed or failed over)", registrations, ct);
                }
                catch (PostgresException ex) when (ex.SqlState == "SB003")
                {
                    failing = false;
                    await RegisterAgainAsync($"hub server \"{_options.ServerName}\" is not registered " +
                                             "(reaped, or the registry was lost)", registrations, ct);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    failing = true;
                    _logger.LogDebug(ex, "heartbeat of {Server} failed", _options.ServerName);
                    _pool.Clear();
                    ForgetHostStates();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Registers this server again and replays its connections and groups
    /// (what a crash, a failover or a reap took from the registry).
    /// </summary>
    /// <param name="reason">for the log line</param>
    /// <param name="seen">the registration count the caller saw before it found the registration missing</param>
    /// <param name="ct">cancels the wait and the rebuild</param>
    internal async Task RegisterAgainAsync(string reason, int seen, CancellationToken ct)
    {
        await _registering.WaitAsync(ct);
        try
        {
            // another caller rebuilt it since this one looked
            if (Registrations != seen)
                return;
            Volatile.Write(ref _registryLostAt, Stopwatch.GetTimestamp());
            Metrics.RegistryLost.Add(1);
            _logger.LogWarning("{Reason}: hub server {Server} registers its connections and groups again",
                               reason, _options.ServerName);
            string old = _stream;
            try
            {
                await RegisterAsync(ct);
                long head = await ScalarAsync<long>("SELECT signalr_bp.head($1)", ct, _stream);
                if (_stream != old || head < NextOffset)
                    Interlocked.Exchange(ref _nextOffset, head);
                // the stream may still hold joined/left envelopes from before the loss: let the consumer
                // read them first, so the groups replayed are complete (bounded: it may be down too)
                var deadline = DateTime.UtcNow + _options.PollWait + TimeSpan.FromSeconds(1);
                while (NextOffset < head && DateTime.UtcNow < deadline)
                    await Task.Delay(20, ct);
                foreach (var hub in _hubList)
                    await hub.ReRegisterAsync(ct);
            }
            catch
            {
                _epoch = -1;   // not replayed: the next heartbeat tries again
                throw;
            }
            Interlocked.Increment(ref _registrations);
            // a crash or failover may also have lost commits that were not durable yet
            _sends.RequestResend();
            _logger.LogInformation("hub server {Server} registered again (registry epoch {Epoch})",
                                   _options.ServerName, _epoch);
        }
        finally
        {
            _registering.Release();
        }
    }
}
