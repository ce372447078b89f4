using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace SignalRBackplane.Postgres;

/// <summary>
/// Tells when one part of the adapter (the sender, the stream consumer) lost
/// PostgreSQL and when it reached it again: one Warning line each way, the
/// second with the outage's duration, which also goes to the
/// signalr_bp.outage.duration histogram. Thread-safe.
/// </summary>
internal sealed class Outage(string component, string server, ILogger logger)
{
    private long _since;   // Stopwatch timestamp of the first failure; 0 while connected

    public bool Ongoing => Volatile.Read(ref _since) != 0;

    /// <summary>An operation failed for want of PostgreSQL.</summary>
    public void Failed(Exception error)
    {
        if (Interlocked.CompareExchange(ref _since, Stopwatch.GetTimestamp(), 0) == 0)
            logger.LogWarning(error, "the {Component} of hub server {Server} lost PostgreSQL; retrying", component, server);
    }

    /// <summary>An operation succeeded: ends the outage if there was one.</summary>
    public void Succeeded()
    {
        if (Volatile.Read(ref _since) == 0)
            return;
        long since = Interlocked.Exchange(ref _since, 0);
        if (since == 0)
            return;
        var duration = Stopwatch.GetElapsedTime(since);
        Metrics.OutageDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("component", component));
        logger.LogWarning("the {Component} of hub server {Server} reached PostgreSQL again after an outage of {Duration:0.000} s",
                          component, server, duration.TotalSeconds);
    }
}
