using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>
/// A client whose network stops reading (a TCP proxy in front of it stalls)
/// must not hold up anybody else: the other clients of its server keep
/// receiving every message, in order, and the stuck one is aborted.
/// </summary>
[Collection("alone")]
public sealed class SlowClientTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AStuckClientStallsNobodyElse()
    {
        string app = "slow" + Guid.NewGuid().ToString("N")[..10];
        // the default limits: 1 MB waiting per client, 10 s per write
        await using var server = await HubServer.StartAsync(app, "s");
        var hub = server.Service<IHubContext<TestHub>>();

        await using var proxy = new StallingProxy(new Uri(server.Url).Port);
        var stuck = new SequenceClient(SequenceClient.Build($"http://127.0.0.1:{proxy.Port}/hub"));
        await stuck.Connection.StartAsync();
        var others = new List<SequenceClient>();
        for (int i = 0; i < 10; i++)
        {
            var c = new SequenceClient(SequenceClient.Build(server.Url));
            await c.Connection.StartAsync();
            others.Add(c);
        }
        await WaitUntil(async () => await Pg.Scalar<long>($"SELECT signalr_bp.connection_count('{app}')") == 11);
        const int count = 1500;

        // first with every client reading, for comparison
        await Broadcast(hub, 0, count);
        foreach (var c in others.Append(stuck))
            await c.WaitFor(count, TimeSpan.FromSeconds(30));
        var before = others.SelectMany(c => c.Latencies).Order().ToArray();
        foreach (var c in others)
            c.Clear();

        // from now on the stuck client's network takes nothing
        proxy.Stall();
        await Broadcast(hub, 0, count);
        foreach (var c in others)
            await c.WaitFor(count, TimeSpan.FromSeconds(30));

        // every other client got every message once, in order, and stayed connected
        foreach (var c in others)
        {
            Assert.Null(c.ClosedWith);
            Assert.Equal(Enumerable.Range(0, count), c.Received);
        }
        // and the stuck one was aborted: it left the registry
        await WaitUntil(async () => await Pg.Scalar<long>($"SELECT signalr_bp.connection_count('{app}')") == 10,
                        TimeSpan.FromSeconds(20));

        var latencies = others.SelectMany(c => c.Latencies).Order().ToArray();
        output.WriteLine($"measured: while one client of the server was stuck, {others.Count} others received " +
                         $"{count} broadcasts each at 300/s: latency p50 {Percentile(latencies, 0.5):0.0} ms, " +
                         $"p99 {Percentile(latencies, 0.99):0.0} ms, max {latencies[^1]:0.0} ms (target p99 < 50 ms); " +
                         $"with every client reading: p50 {Percentile(before, 0.5):0.0} ms, " +
                         $"p99 {Percentile(before, 0.99):0.0} ms, max {before[^1]:0.0} ms");
        foreach (var c in others)
            await c.Connection.DisposeAsync();
        await stuck.Connection.DisposeAsync();
    }

    // count messages of about 2 KB to everyone, 300 per second
    private static async Task Broadcast(IHubContext<TestHub> hub, int first, int count)
    {
        string padding = new('x', 2000);
        var pace = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            await hub.Clients.All.SendAsync("seq", first + i, Stopwatch.GetTimestamp(), padding);
            var due = TimeSpan.FromMilliseconds(i * 1000.0 / 300);
            if (due > pace.Elapsed)
                await Task.Delay(due - pace.Elapsed);
        }
    }

    private static double Percentile(double[] sorted, double p) => sorted[(int) Math.Min(sorted.Length - 1, p * sorted.Length)];

    private static async Task WaitUntil(Func<Task<bool>> condition, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(10));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail("condition not met in time");
            await Task.Delay(100);
        }
    }
}

/// <summary>A client that records the sequence numbers it receives and how long each took.</summary>
public sealed class SequenceClient
{
    private readonly List<int> _received = new();
    private readonly List<double> _latencies = new();

    public SequenceClient(HubConnection connection)
    {
        Connection = connection;
        connection.Closed += e =>
        {
            ClosedWith = e?.Message ?? "closed";
            return Task.CompletedTask;
        };
        connection.On<int, long, string>("seq", (i, sent, _) =>
        {
            lock (_received)
            {
                _received.Add(i);
                _latencies.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
            }
        });
    }

    public HubConnection Connection { get; }

    /// <summary>Why the server closed the connection ("closed" without an error), or null while open.</summary>
    public string? ClosedWith { get; private set; }

    /// <summary>A WebSocket client without negotiation (one TCP connection, as through a round-robin balancer).</summary>
    public static HubConnection Build(string url, bool messagePack = false)
    {
        var builder = new HubConnectionBuilder().WithUrl(url, o =>
        {
            o.SkipNegotiation = true;
            o.Transports = HttpTransportType.WebSockets;
        });
        if (messagePack)
            builder.AddMessagePackProtocol();
        return builder.Build();
    }

    /// <summary>Forgets what was received so far.</summary>
    public void Clear()
    {
        lock (_received)
        {
            _received.Clear();
            _latencies.Clear();
        }
    }

    public int[] Received
    {
        get { lock (_received) return _received.ToArray(); }
    }

    public double[] Latencies
    {
        get { lock (_received) return _latencies.ToArray(); }
    }

    /// <summary>Waits until at least count messages arrived (or the limit passed).</summary>
    public async Task WaitFor(int count, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (Received.Length < count && ClosedWith == null && DateTime.UtcNow < deadline)
            await Task.Delay(50);
    }
}

/// <summary>
/// A TCP proxy in front of one client: forwards both ways until Stall(), then
/// no longer reads what the server sends, as a client on a dead mobile network.
/// Its socket towards the server has a small receive buffer, so the server's
/// writes back up quickly.
/// </summary>
public sealed class StallingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = new();
    private volatile bool _stalled;

    public StallingProxy(int target)
    {
        _target = target;
        _listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint) _listener.LocalEndpoint).Port;

    public void Stall() => _stalled = true;

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
                {
                    ReceiveBufferSize = 4096,
                };
                await upstream.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                lock (_sockets)
                    _sockets.AddRange(new[] { client, upstream });
                _ = PumpAsync(client, upstream, stallable: false);
                _ = PumpAsync(upstream, client, stallable: true);
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool stallable)
    {
        var buffer = new byte[4096];
        try
        {
            while (!(stallable && _stalled))
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                    break;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
            if (stallable)
                await Task.Delay(Timeout.Infinite, _stop.Token);
        }
        catch (Exception)
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_sockets)
            foreach (var s in _sockets)
                s.Dispose();
        return ValueTask.CompletedTask;
    }
}
