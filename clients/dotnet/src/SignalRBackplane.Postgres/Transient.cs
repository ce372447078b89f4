using Npgsql;

namespace SignalRBackplane.Postgres;

/// <summary>Which errors mean "PostgreSQL is not reachable right now" (worth trying again) rather than "no".</summary>
internal static class Transient
{
    public static bool Is(Exception ex) => ex switch
    {
        // class 08 is the connection's trouble (PgBouncer reports its own as 08P01: "server conn
        // crashed?", "server login has been failing"); 25006: a standby, a failover under way;
        // 57014: a statement timeout; 40001, 40P01, 55000: conflicts that a retry resolves
        PostgresException pg => pg.IsTransient || pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                                 || pg.SqlState is "25006" or "57014" or "40001" or "40P01" or "55000",
        // no answer at all: the connection broke, no host was suitable, a timeout
        NpgsqlException or IOException or TimeoutException or System.Net.Sockets.SocketException => true,
        _ => false,
    };
}
