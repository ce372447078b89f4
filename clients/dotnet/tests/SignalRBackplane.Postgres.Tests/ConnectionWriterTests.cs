using System.Diagnostics;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>
/// Writes to one connection never make the writer wait: a client that stops
/// reading (its transport's pipe full) is queued for, then aborted when the
/// queue overflows or a write hangs past the timeout.
/// </summary>
public sealed class ConnectionWriterTests
{
    private static SerializedHubMessage Message(int i, int size = 100) =>
        new(new InvocationMessage("Hello", new object[] { $"{i}:" + new string('x', size) }));

    [Fact]
    public async Task AReadingClientGetsEveryMessageInOrder()
    {
        using var client = new TestClient();
        var aborts = new List<string>();
        var writer = new ConnectionWriter(client.Context, 1 << 20, (_, reason) => aborts.Add(reason));
        for (int i = 0; i < 2000; i++)
            writer.Write(Message(i));
        for (int i = 0; i < 2000; i++)
        {
            var m = Assert.IsType<InvocationMessage>(await client.ReadAsync());
            Assert.StartsWith($"{i}:", (string) m.Arguments[0]!);
        }
        Assert.Empty(aborts);
        Assert.Equal(0, writer.QueuedBytes);
    }

    [Fact]
    public async Task AClientThatStopsReadingIsAbortedWhenItsBufferOverflows()
    {
        using var client = new TestClient();
        string? reason = null;
        var writer = new ConnectionWriter(client.Context, 200_000, (_, r) => reason = r);
        // the transport's pipe takes 64 KB, then every write waits for a reader that never comes:
        // each Write returns at once all the same, queueing until the buffer is full
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < 100 && reason == null; i++)
            writer.Write(Message(i, 10_000));
        watch.Stop();
        Assert.NotNull(reason);
        Assert.Contains("more than 200000 bytes", reason);
        await WaitAborted(client);
        // later writes are dropped, not queued
        writer.Write(Message(999));
        Assert.Equal(0, writer.QueuedBytes);
    }

    [Fact]
    public async Task AWriteThatHangsPastTheTimeoutAbortsTheConnection()
    {
        using var client = new TestClient();
        string? reason = null;
        var writer = new ConnectionWriter(client.Context, 10_000_000, (_, r) => reason = r);
        for (int i = 0; i < 10; i++)
            writer.Write(Message(i, 10_000));   // 100 KB: the second half waits
        Assert.True(writer.QueuedBytes > 0);
        Assert.False(writer.CheckHung(Stopwatch.GetTimestamp(), TimeSpan.FromSeconds(10)));
        Assert.Null(reason);
        long later = Stopwatch.GetTimestamp() + 11 * Stopwatch.Frequency;
        Assert.True(writer.CheckHung(later, TimeSpan.FromSeconds(10)));
        Assert.Contains("did not complete within 10 s", reason);
        await WaitAborted(client);
    }

    [Fact]
    public async Task AClientThatCatchesUpDrainsItsQueueInOrder()
    {
        using var client = new TestClient();
        var aborts = new List<string>();
        var writer = new ConnectionWriter(client.Context, 10_000_000, (_, r) => aborts.Add(r));
        for (int i = 0; i < 50; i++)
            writer.Write(Message(i, 5_000));
        Assert.True(writer.QueuedBytes > 0);
        for (int i = 0; i < 50; i++)
        {
            var m = Assert.IsType<InvocationMessage>(await client.ReadAsync());
            Assert.StartsWith($"{i}:", (string) m.Arguments[0]!);
        }
        Assert.Empty(aborts);
    }

    [Fact]
    public async Task MessagesStagedByOneReadGoOutInOneWriteInOrder()
    {
        using var client = new TestClient();
        var writer = new ConnectionWriter(client.Context, 1 << 20, (_, _) => { });
        var staged = new List<ConnectionWriter>();
        for (int i = 0; i < 50; i++)
            writer.Stage(Message(i), staged);
        Assert.Equal(new[] { writer }, staged);   // listed once, however many messages
        Assert.Equal(0, client.Flushes);
        writer.WriteStaged();
        Assert.Equal(1, client.Flushes);
        for (int i = 0; i < 50; i++)
        {
            var m = Assert.IsType<InvocationMessage>(await client.ReadAsync());
            Assert.StartsWith($"{i}:", (string) m.Arguments[0]!);
        }
        // staging starts afresh
        writer.WriteStaged();
        Assert.Equal(1, client.Flushes);
    }

    [Fact]
    public async Task ALargeReadGoesOutInWritesOfAtMost64KB()
    {
        using var client = new TestClient();
        var writer = new ConnectionWriter(client.Context, 10_000_000, (_, _) => { });
        var staged = new List<ConnectionWriter>();
        for (int i = 0; i < 100; i++)
            writer.Stage(Message(i, 5_000), staged);   // about 500 KB: 13 or so buffers of up to 64 KB
        var reading = Task.Run(async () =>
        {
            for (int i = 0; i < 100; i++)
            {
                var m = Assert.IsType<InvocationMessage>(await client.ReadAsync());
                Assert.StartsWith($"{i}:", (string) m.Arguments[0]!);
            }
        });
        writer.WriteStaged();
        await reading;
        Assert.InRange(client.Flushes, 8, 20);
    }

    [Fact]
    public async Task AStatefulReconnectConnectionGetsAWritePerMessage()
    {
        // its message buffer numbers writes, and the client numbers messages: they must match
        using var client = new TestClient(statefulReconnect: true);
        var writer = new ConnectionWriter(client.Context, 1 << 20, (_, _) => { });
        var staged = new List<ConnectionWriter>();
        for (int i = 0; i < 5; i++)
            writer.Stage(Message(i), staged);
        Assert.Empty(staged);
        Assert.Equal(5, client.Flushes);
        for (int i = 0; i < 5; i++)
            Assert.StartsWith($"{i}:", (string) Assert.IsType<InvocationMessage>(await client.ReadAsync()).Arguments[0]!);
    }

    private static async Task WaitAborted(TestClient client)
    {
        var aborted = new TaskCompletionSource();
        using var _ = client.Context.ConnectionAborted.Register(() => aborted.TrySetResult());
        await aborted.Task.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
