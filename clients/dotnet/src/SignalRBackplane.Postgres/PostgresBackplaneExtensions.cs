using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using SignalRBackplane.Postgres;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registration of the PostgreSQL backplane and its health check.</summary>
public static class PostgresBackplaneExtensions
{
    /// <summary>
    /// Scale SignalR out through PostgreSQL with the signalr_bp extension:
    /// <c>services.AddSignalR().AddPostgresBackplane(connectionString, o => o.ApplicationName = "chat")</c>.
    /// </summary>
    public static ISignalRServerBuilder AddPostgresBackplane(this ISignalRServerBuilder builder, string connectionString,
                                                             Action<PostgresBackplaneOptions>? configure = null)
    {
        builder.Services.Configure<PostgresBackplaneOptions>(o =>
        {
            o.ConnectionString = connectionString;
            configure?.Invoke(o);
        });
        builder.Services.TryAddSingleton<PostgresBackplane>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PostgresBackplane>());
        builder.Services.AddSingleton(typeof(HubLifetimeManager<>), typeof(PostgresHubLifetimeManager<>));
        builder.Services.AddSingleton(typeof(IHubPresence<>), typeof(HubPresence<>));
        return builder;
    }

    /// <summary>A health check that is healthy while this hub server is registered and its stream is readable.</summary>
    public static IHealthChecksBuilder AddPostgresBackplane(this IHealthChecksBuilder builder, string name = "signalr_bp")
    {
        return builder.AddCheck<PostgresBackplaneHealthCheck>(name);
    }
}
