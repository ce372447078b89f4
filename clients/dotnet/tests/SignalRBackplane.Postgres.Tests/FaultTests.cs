using System.Diagnostics;
using Microsoft.AspNetCore.SignalR;
using Npgsql;
using Xunit.Abstractions;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>
/// A PostgreSQL of their own (clients/dotnet/test.sh starts it), restarted and
/// disturbed by these tests one at a time.
/// </summary>
[CollectionDefinition("faults")]
public sealed class FaultCollection;

/// <summary>Tests that measure: they run after the others, one at a time.</summary>
[CollectionDefinition("alone", DisableParallelization = true)]
public sealed class AloneCollection;

public static class FaultServer
{
    public static string ConnectionString =>
        Environment.GetEnvironmentVariable("SBP_TEST_PG_FAULTS")
        ?? throw new InvalidOperationException("SBP_TEST_PG_FAULTS is not set: run clients/dotnet/test.sh");

    /// <summary>Runs pg_ctl on the fault server with these arguments (e.g. "-m fast -w restart").</summary>
    public static async Task PgCtl(string args)
    {
        string ctl = Environment.GetEnvironmentVariable("SBP_TEST_PG_CTL")
            ?? throw new InvalidOperationException("SBP_TEST_PG_CTL is not set: run clients/dotnet/test.sh");
        var psi = new ProcessStartInfo("bash", new[] { "-c", $"{ctl} {args}" })
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        string err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"pg_ctl {args} failed: {err}");
    }

    public static async Task<T> Scalar<T>(string sql)
    {
        // unpooled: a pooled connection may be one that an earlier restart broke
        await using var conn = new NpgsqlConnection(ConnectionString + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T) (await cmd.ExecuteScalarAsync())!;
    }
}

/// <summary>
/// Sends survive what happens to PostgreSQL: the sender's backend terminated,
/// a fast restart, a crash (restart -m immediate). Two hub servers, clients
/// of both protocols counting every message id: nothing an acknowledged send
/// carried is lost, nothing is delivered twice, and the order holds, in
/// every completion mode.
/// </summary>
[Collection("faults")]
public sealed class FaultTests(ITestOutputHelper output)
{
    public static TheoryData<SendCompletion, string> Cases()
    {
        var data = new TheoryData<SendCompletion, string>();
        foreach (var mode in new[] { SendCompletion.Accepted, SendCompletion.Committed, SendCompletion.Queued })
            foreach (var fault in new[] { "terminate", "restart-fast", "restart-immediate" })
                data.Add(mode, fault);
        return data;
    }

    // A crash loses commits made with synchronous_commit off that were not flushed yet; the
    // adapter sends them again, as it has not read them back (readers see only durable messages).
    [Theory]
    [MemberData(nameof(Cases))]
    public async Task NothingLostNothingDoubled(SendCompletion mode, string fault)
    {
        string app = "f" + Guid.NewGuid().ToString("N")[..10];
        await using var a = await HubServer.StartAsync(app, "a", connectionString: FaultServer.ConnectionString,
                                                       configure: o => o.SendCompletion = mode);
        await using var b = await HubServer.StartAsync(app, "b", connectionString: FaultServer.ConnectionString,
                                                       configure: o => o.SendCompletion = mode);
        var clients = new List<SequenceClient>
        {
            new(SequenceClient.Build(a.Url)),
            new(SequenceClient.Build(b.Url)),
            new(SequenceClient.Build(b.Url, messagePack: true)),
        };
        foreach (var c in clients)
            await c.Connection.StartAsync();
        var hub = a.Service<IHubContext<TestHub>>();

        const int count = 400, faultAt = 150;
        var acknowledged = new List<int>();
        var refused = new List<(int Id, string Error)>();
        Task? injected = null;
        var watch = Stopwatch.StartNew();
        TimeSpan slowest = TimeSpan.Zero;
        for (int i = 0; i < count; i++)
        {
            if (i == faultAt)
                injected = Inject(fault);
            var started = watch.Elapsed;
            try
            {
                await hub.Clients.All.SendAsync("seq", i, Stopwatch.GetTimestamp(), "");
                acknowledged.Add(i);
            }
            catch (Exception ex)
            {
                refused.Add((i, ex.Message));
            }
            if (watch.Elapsed - started > slowest)
                slowest = watch.Elapsed - started;
            await Task.Delay(5);
        }
        await injected!;
        foreach (var c in clients)
            await c.WaitFor(count, TimeSpan.FromSeconds(45));

        var (resent, applied, duplicates) = a.Service<PostgresBackplane>().RetryCounts;
        output.WriteLine($"measured: {mode}, {fault}: {acknowledged.Count} of {count} sends acknowledged, " +
                         $"{refused.Count} refused to the caller; slowest send {slowest.TotalMilliseconds:0} ms; " +
                         $"received {string.Join(", ", clients.Select(c => c.Received.Length))}; " +
                         $"{resent} attempts to send again: {applied} batches applied then, {duplicates} already there");
        foreach (var (id, error) in refused.Take(3))
            output.WriteLine($"  refused {id}: {error}");
        foreach (var c in clients)
        {
            var got = c.Received;
            // nothing twice, in order
            for (int k = 1; k < got.Length; k++)
                Assert.True(got[k] > got[k - 1], $"received {got[k - 1]} then {got[k]}");
            // nothing acknowledged is missing
            var missing = acknowledged.Except(got).ToArray();
            Assert.True(missing.Length == 0, $"acknowledged but never received: {string.Join(", ", missing.Take(20))}");
        }
        // retries leave nothing behind: every send was confirmed, none reported lost
        Assert.Empty(refused);
        var backplane = a.Service<PostgresBackplane>();
        for (int w = 0; w < 100 && backplane.UnconfirmedSends > 0; w++)
            await Task.Delay(100);
        Assert.Equal(0, backplane.UnconfirmedSends);
        foreach (var c in clients)
            await c.Connection.DisposeAsync();
    }

    [Fact]
    public async Task ASendThatCannotBeConfirmedInTimeIsReported()
    {
        string app = "t" + Guid.NewGuid().ToString("N")[..10], name = "timeout-" + app;
        await using var server = await HubServer.StartAsync(app, name, connectionString: FaultServer.ConnectionString,
                                                            configure: o => o.SendTimeout = TimeSpan.FromSeconds(2));
        var hub = server.Service<IHubContext<TestHub>>();
        long failed = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "SignalRBackplane.Postgres" && instrument.Name == "signalr_bp.send.failed")
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "server" && (string?) tag.Value == name)
                    Interlocked.Add(ref failed, value);
        });
        listener.Start();

        await FaultServer.PgCtl("-m fast -w stop");
        try
        {
            // the caller waits while the adapter retries, then learns the send may be lost
            var ex = await Assert.ThrowsAsync<TimeoutException>(() => hub.Clients.All.SendAsync("seq", 1, 0L, ""));
            Assert.Contains("not confirmed within 2 s", ex.Message);
            Assert.Equal(1, Interlocked.Read(ref failed));
            Assert.Equal(0, server.Service<PostgresBackplane>().UnconfirmedSends);
        }
        finally
        {
            await FaultServer.PgCtl("-w start");
        }
    }

    private async Task Inject(string fault)
    {
        switch (fault)
        {
            case "terminate":
                // the sending hub server's backend, between two sends or in the middle of one
                await FaultServer.Scalar<bool>("SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) " +
                                               "FROM pg_stat_activity WHERE application_name = 'signalr_bp sender a'");
                break;
            case "restart-fast":
                await FaultServer.PgCtl("-m fast -w restart");
                break;
            case "restart-immediate":
                await FaultServer.PgCtl("-m immediate -w restart");
                break;
        }
    }
}
