namespace SignalRBackplane.Postgres;

/// <summary>Options of the PostgreSQL backplane (services.AddSignalR().AddPostgresBackplane(...)).</summary>
public sealed class PostgresBackplaneOptions
{
    /// <summary>Connection string of the primary (the -rw service on CloudNativePG).</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// The signalr_bp application: hub servers of one deployment share it, and
    /// nothing of another application is visible (Redis's channel prefix).
    /// </summary>
    public string ApplicationName { get; set; } = "signalr";

    /// <summary>This server's name in the registry; unique among the application's live servers.</summary>
    public string ServerName { get; set; } = $"{Environment.MachineName}-{Guid.NewGuid():N}";

    /// <summary>How often the server proves it is alive; keep well below the application's server_ttl.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one long-poll fetch waits for a commit before asking again.</summary>
    public TimeSpan PollWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most bytes of messages one fetch returns.</summary>
    public int FetchMaxBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// How long concurrent sends are collected into one send_batch call.
    /// Zero still coalesces sends that arrive while a call is in flight.
    /// </summary>
    public TimeSpan BatchWindow { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// When a send's Task completes: once its batch committed (the default:
    /// errors reach the caller), or once it is queued in order behind the
    /// batch in flight (a caller sending one message at a time is not held
    /// to one commit per message; errors are logged).
    /// </summary>
    public SendCompletion SendCompletion { get; set; } = SendCompletion.Committed;

    /// <summary>Most sends in one batched call.</summary>
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>
    /// Call signalr_bp.create_application() at start when the application does
    /// not exist (needs the DBA's privileges; for development and tests).
    /// </summary>
    public bool CreateApplication { get; set; }

    /// <summary>With CreateApplication: the application's server_ttl.</summary>
    public TimeSpan ServerTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>With CreateApplication: durable (WAL-logged) or fast (unlogged) streams.</summary>
    public bool Durable { get; set; } = true;

    /// <summary>How long an InvokeAsync on a connection of another server waits for its result.</summary>
    public TimeSpan ClientResultTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>When a send's Task completes.</summary>
public enum SendCompletion
{
    /// <summary>After the transaction that appended it committed.</summary>
    Committed,
    /// <summary>After it was queued, in order, for the next batch.</summary>
    Queued,
}
