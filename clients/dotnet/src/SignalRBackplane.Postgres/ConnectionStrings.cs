using Npgsql;

namespace SignalRBackplane.Postgres;

/// <summary>
/// The connection strings the adapter uses, derived from the user's. Npgsql's
/// defaults suit a single host that never moves; after a failover they kept
/// hub servers away from the new primary for 10 s (a standby's cached state
/// outlives its promotion for Host Recheck Seconds). Options the user left at
/// Npgsql's default are set to values that bring a server back within about
/// a second of a promotion; options the user set are kept. Nothing here
/// needs a session: every call is one statement or one implicit transaction,
/// so a transaction-mode PgBouncer works. Only the send statement is
/// prepared (PrepareSends), and the sender stops preparing it when a pooler
/// refuses.
/// </summary>
internal static class ConnectionStrings
{
    /// <summary>Seconds a host's primary/standby state is trusted (Npgsql's default: 10).</summary>
    public const int HostRecheckSeconds = 1;

    /// <summary>Seconds to wait while connecting (Npgsql's default: 15).</summary>
    public const int ConnectTimeout = 3;

    /// <summary>The user's connection string with failover defaults where the user set nothing.</summary>
    public static NpgsqlConnectionStringBuilder WithDefaults(string connectionString)
    {
        var user = new NpgsqlConnectionStringBuilder(connectionString);
        var npgsql = new NpgsqlConnectionStringBuilder();
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        if (IsMultiHost(b))
        {
            // several hosts: only the primary takes writes, and every function needs one
            if (string.IsNullOrEmpty(user.TargetSessionAttributes))
                b.TargetSessionAttributes = "primary";
            if (user.HostRecheckSeconds == npgsql.HostRecheckSeconds)
                b.HostRecheckSeconds = HostRecheckSeconds;
        }
        if (user.Timeout == npgsql.Timeout)
            b.Timeout = ConnectTimeout;
        // the adapter's sessions carry no state (its one setting is transaction-local): no
        // DISCARD ALL before every pooled use, which would also throw away the server's cached plans
        b.NoResetOnClose = true;
        return b;
    }

    /// <summary>Host=a,b (or a:5432,b:5433): Npgsql's multi-host failover applies.</summary>
    public static bool IsMultiHost(NpgsqlConnectionStringBuilder b) => b.Host?.Contains(',') == true;
}
