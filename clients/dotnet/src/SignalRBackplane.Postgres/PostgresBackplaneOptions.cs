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
    /// When a send's Task completes: <see cref="SendCompletion.Accepted"/> (the
    /// default) once PostgreSQL committed it without waiting for the disk;
    /// <see cref="SendCompletion.Committed"/> after a durable commit;
    /// <see cref="SendCompletion.Queued"/> once queued. In every mode the
    /// adapter keeps the send until it is confirmed and sends it again after a
    /// connection error, restart or failover.
    /// </summary>
    public SendCompletion SendCompletion { get; set; } = SendCompletion.Accepted;

    /// <summary>
    /// How long a send may stay unconfirmed (not read back from the stream,
    /// or for Committed not committed) before it is reported lost: an Error
    /// log line, the signalr_bp.send.failed metric, and an exception to a
    /// caller that still waits.
    /// </summary>
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most sends kept unconfirmed; when it is reached, new sends wait.</summary>
    public int MaxUnconfirmedSends { get; set; } = 10_000;

    /// <summary>
    /// Most bytes that wait for one slow client behind its pending write; a
    /// connection that needs more is aborted, and nobody else waits for it.
    /// </summary>
    public long ConnectionBufferSize { get; set; } = 1024 * 1024;

    /// <summary>A connection whose write does not complete within this time is aborted (SignalR's TransportSendTimeout is 10 s).</summary>
    public TimeSpan ConnectionWriteTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Prepare the send statement on each of the sender's sessions (Npgsql's
    /// automatic preparation, unless the connection string sets Max Auto
    /// Prepare): PostgreSQL then skips parsing and planning it per send. A
    /// transaction-mode pooler that cannot carry prepared statements
    /// (PgBouncer before 1.21, or max_prepared_statements = 0) fails such a
    /// statement before it runs; the adapter then logs a warning, stops
    /// preparing and sends again. False: never prepare.
    /// </summary>
    public bool PrepareSends { get; set; } = true;

    /// <summary>Most sends in one batched call.</summary>
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>
    /// Call signalr_bp.create_application() at start when the application does
    /// not exist (needs the DBA's privileges; for development and tests).
    /// Servers starting at once may all try: the one that finds it created by
    /// another meanwhile, with the owner it would have given it, goes on.
    /// </summary>
    public bool CreateApplication { get; set; }

    /// <summary>With CreateApplication: the application's server_ttl.</summary>
    public TimeSpan ServerTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>With CreateApplication: durable (WAL-logged) or fast (unlogged) streams.</summary>
    public bool Durable { get; set; } = true;

    /// <summary>How long an InvokeAsync on a connection of another server waits for its result.</summary>
    public TimeSpan ClientResultTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>When a send's Task completes (what each guarantees: clients/dotnet/README.md).</summary>
public enum SendCompletion
{
    /// <summary>
    /// After its transaction committed with synchronous_commit off: PostgreSQL
    /// has it, as Redis has a PUBLISH; it is durable a few milliseconds later
    /// and resent by the adapter if a crash loses it first.
    /// </summary>
    Accepted,
    /// <summary>After its transaction committed durably (the server's synchronous_commit, on by default).</summary>
    Committed,
    /// <summary>After it was queued, in order, for the next batch.</summary>
    Queued,
}
