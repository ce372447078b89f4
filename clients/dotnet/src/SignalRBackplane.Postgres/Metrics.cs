using System.Diagnostics.Metrics;

namespace SignalRBackplane.Postgres;

/// <summary>The adapter's instruments (meter "SignalRBackplane.Postgres"); names are listed in clients/dotnet/README.md.</summary>
internal static class Metrics
{
    public static readonly Meter Meter = new("SignalRBackplane.Postgres");

    public static readonly Counter<long> MessagesSent = Meter.CreateCounter<long>(
        "signalr_bp.messages.sent", description: "messages handed to the backplane by this server");
    public static readonly Counter<long> MessagesReceived = Meter.CreateCounter<long>(
        "signalr_bp.messages.received", description: "envelopes read from the application stream");
    public static readonly Counter<long> Batches = Meter.CreateCounter<long>(
        "signalr_bp.send.batches", description: "send transactions committed");
    public static readonly Counter<long> Retries = Meter.CreateCounter<long>(
        "signalr_bp.send.retries", description: "send transactions sent again after an error or a restart");
    public static readonly Counter<long> Duplicates = Meter.CreateCounter<long>(
        "signalr_bp.send.duplicates", description: "batches the engine had already applied when they were sent again");
    public static readonly Counter<long> SendsFailed = Meter.CreateCounter<long>(
        "signalr_bp.send.failed", description: "messages reported lost: not confirmed within SendTimeout, or refused (tag: server)");
    public static readonly Counter<long> Reconnects = Meter.CreateCounter<long>(
        "signalr_bp.consumer.reconnects", description: "times the stream consumer reconnected after an error");
    public static readonly Counter<long> RegistryLost = Meter.CreateCounter<long>(
        "signalr_bp.registry.lost", description: "times this server found the registry lost (crash, failover, reaped)");
    public static readonly Histogram<double> OutageDuration = Meter.CreateHistogram<double>(
        "signalr_bp.outage.duration", unit: "s", description: "how long PostgreSQL was unreachable, per ended outage");
    public static readonly Counter<long> ConnectionsAborted = Meter.CreateCounter<long>(
        "signalr_bp.connections.aborted", description: "client connections aborted because writes to them overflowed or hung");
    public static readonly Counter<long> Transcoded = Meter.CreateCounter<long>(
        "signalr_bp.messages.transcoded", description: "protocol forms made from a JSON invocation (sends from SQL)");
}
