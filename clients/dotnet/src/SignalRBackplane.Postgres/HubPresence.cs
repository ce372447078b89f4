using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace SignalRBackplane.Postgres;

/// <summary>Who is online across every server of the application (inject IHubPresence&lt;THub&gt;).</summary>
public interface IHubPresence<THub> where THub : Hub
{
    /// <summary>Connections to this hub on every server.</summary>
    Task<long> ConnectionCountAsync(CancellationToken ct = default);
    /// <summary>Ids of the connections in a group, on every server.</summary>
    Task<IReadOnlyList<string>> GroupConnectionsAsync(string groupName, CancellationToken ct = default);
    /// <summary>Ids of a user's connections, on every server.</summary>
    Task<IReadOnlyList<string>> UserConnectionsAsync(string userId, CancellationToken ct = default);
    /// <summary>The groups a connection (on any server) belongs to.</summary>
    Task<IReadOnlyList<string>> ConnectionGroupsAsync(string connectionId, CancellationToken ct = default);
    /// <summary>User ids with at least one connection to this hub.</summary>
    Task<IReadOnlyList<string>> OnlineUsersAsync(CancellationToken ct = default);
}

internal sealed class HubPresence<THub>(PostgresBackplane backplane) : IHubPresence<THub> where THub : Hub
{
    private readonly string _hub = typeof(THub).Name;

    public Task<long> ConnectionCountAsync(CancellationToken ct = default) =>
        backplane.ScalarAsync<long>("SELECT signalr_bp.connection_count($1, $2)", ct, backplane.Application, _hub);

    public async Task<IReadOnlyList<string>> GroupConnectionsAsync(string groupName, CancellationToken ct = default) =>
        await backplane.ListAsync<string>("SELECT signalr_bp.group_connections($1, $2, $3)", ct,
                                          backplane.Application, _hub, groupName);

    public async Task<IReadOnlyList<string>> UserConnectionsAsync(string userId, CancellationToken ct = default) =>
        await backplane.ListAsync<string>("SELECT signalr_bp.user_connections($1, $2, $3)", ct,
                                          backplane.Application, _hub, userId);

    public async Task<IReadOnlyList<string>> ConnectionGroupsAsync(string connectionId, CancellationToken ct = default) =>
        await backplane.ListAsync<string>("SELECT signalr_bp.connection_groups($1, $2)", ct,
                                          backplane.Application, connectionId);

    public async Task<IReadOnlyList<string>> OnlineUsersAsync(CancellationToken ct = default) =>
        await backplane.ListAsync<string>("SELECT user_id FROM signalr_bp.online_users($1, $2)", ct,
                                          backplane.Application, _hub);
}

internal sealed class PostgresBackplaneHealthCheck(PostgresBackplane backplane) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        if (!backplane.Ready.IsCompleted)
            return HealthCheckResult.Unhealthy("not registered yet");
        try
        {
            int epoch = await backplane.ScalarAsync<int>("SELECT signalr_bp.heartbeat($1, $2)", ct,
                                                         backplane.Application, backplane.ServerName);
            return HealthCheckResult.Healthy($"registered, stream offset {backplane.NextOffset}, registry epoch {epoch}");
        }
        catch (Exception ex)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL is not reachable", ex);
        }
    }
}
