// The SignalR-level benchmark: 500 client connections spread over two hub
// servers, one sender broadcasting 128-byte messages at a fixed rate through
// the hub, a rate sweep up then down, latency per delivery and lost messages.
//
//   SignalRBench serve --port P --backplane none|redis|postgres|postgres-queued --target T --server S
//   SignalRBench run --urls U1,U2 --connections 500 --rates 100,200,... --seconds 5
//
// "run" prints one TSV line per rate: direction rate sent expected received lost
// p50 p95 p99 max (ms); the sweep goes up until a rate is not kept up with
// (p99 over --fail-ms or a message missing), then back down.
using System.Diagnostics;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: SignalRBench serve|run ...");
    return 2;
}
return args[0] switch
{
    "serve" => Serve(args),
    "run" => await Bench.Run(args),
    _ => 2,
};

static int Serve(string[] args)
{
    var builder = WebApplication.CreateBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.WebHost.UseUrls("http://127.0.0.1:" + Args.Get(args, "port", "5000"));
    var signalr = builder.Services.AddSignalR(o => o.MaximumParallelInvocationsPerClient = 1);
    string target = Args.Get(args, "target", "");
    switch (Args.Get(args, "backplane", "none"))
    {
        case "redis":
            signalr.AddStackExchangeRedis(target, o => o.Configuration.ChannelPrefix =
                StackExchange.Redis.RedisChannel.Literal("bench"));
            break;
        case "postgres":
            Backplanes.AddPostgres(signalr, target, Args.Get(args, "server", Environment.MachineName), false);
            break;
        case "postgres-queued":
            Backplanes.AddPostgres(signalr, target, Args.Get(args, "server", Environment.MachineName), true);
            break;
    }
    var app = builder.Build();
    app.MapHub<BenchHub>("/bench");
    app.Run();
    return 0;
}

public sealed class BenchHub : Hub
{
    // the sender's message: relayed to every connection through the backplane
    public Task Broadcast(long seq, long sentAt, byte[] payload) =>
        Clients.All.SendAsync("m", seq, sentAt, payload);
}

static class Args
{
    public static string Get(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, "--" + name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}

static class Bench
{
    public static async Task<int> Run(string[] args)
    {
        string[] urls = Args.Get(args, "urls", "").Split(',', StringSplitOptions.RemoveEmptyEntries);
        int connections = int.Parse(Args.Get(args, "connections", "500"));
        int seconds = int.Parse(Args.Get(args, "seconds", "5"));
        int[] rates = Args.Get(args, "rates", "100").Split(',').Select(int.Parse).ToArray();
        double failMs = double.Parse(Args.Get(args, "fail-ms", "1000"), System.Globalization.CultureInfo.InvariantCulture);

        var receivers = new List<Receiver>();
        for (int i = 0; i < connections; i++)
            receivers.Add(new Receiver(urls[i % urls.Length] + "/bench"));
        // connect in small parallel batches: a burst of 500 handshakes is not what we measure
        foreach (var batch in receivers.Chunk(25))
            await Task.WhenAll(batch.Select(r => r.Start()));
        var sender = new HubConnectionBuilder().WithUrl(urls[0] + "/bench").Build();
        await sender.StartAsync();

        var payload = new byte[128];
        Random.Shared.NextBytes(payload);
        long seq = 0;

        // warm-up, not reported: JIT, connection pools, the backplane's first batches
        await Step(sender, receivers, payload, rates[0], 3, () => seq++);
        await Step(sender, receivers, payload, rates[Math.Min(2, rates.Length - 1)], 3, () => seq++);

        // up the sweep until a rate is not kept up with, then back down
        var done = new List<int>();
        foreach (int rate in rates)
        {
            var r = await Step(sender, receivers, payload, rate, seconds, () => seq++);
            Console.WriteLine(string.Join('\t', "up", r.Line));
            done.Add(rate);
            if (!r.KeptUp(failMs))
                break;
        }
        done.Reverse();
        foreach (int rate in done.Skip(1))
        {
            var r = await Step(sender, receivers, payload, rate, seconds, () => seq++);
            Console.WriteLine(string.Join('\t', "down", r.Line));
        }
        await sender.DisposeAsync();
        foreach (var r in receivers)
            await r.Stop();
        return 0;
    }

    public sealed record Result(int Rate, long Sent, long Expected, long Received, long Lost, double[] Sorted)
    {
        public bool KeptUp(double failMs) => Received == Expected && Sorted.Length > 0 && Pct(0.99) <= failMs;

        public double Pct(double p) => Sorted.Length == 0 ? double.NaN : Sorted[Math.Min(Sorted.Length - 1, (int) (p * Sorted.Length))];

        public string Line => string.Join('\t', Rate, Sent, Expected, Received, Lost,
            Ms(Pct(0.50)), Ms(Pct(0.95)), Ms(Pct(0.99)), Ms(Sorted.Length > 0 ? Sorted[^1] : double.NaN));
    }

    // one rate: send rate * seconds messages, open loop, then wait for the tail
    static async Task<Result> Step(HubConnection sender, List<Receiver> receivers, byte[] payload,
                                   int rate, int seconds, Func<long> next)
    {
        foreach (var r in receivers)
            r.Reset();
        var clock = Stopwatch.StartNew();
        long start = Stopwatch.GetTimestamp();
        long total = (long) rate * seconds;
        long first = -1, last = -1;
        for (long n = 0; n < total; n++)
        {
            // message n is due at n / rate seconds; latency counts from then
            double wait = (double) n / rate - clock.Elapsed.TotalSeconds;
            if (wait > 0.002)
                await Task.Delay(TimeSpan.FromSeconds(wait));
            long dueTicks = start + n * Stopwatch.Frequency / rate;
            long seq = next();
            if (first < 0)
                first = seq;
            last = seq;
            await sender.SendAsync("Broadcast", seq, dueTicks, payload);
        }
        long expected = total * receivers.Count;
        // a message still missing 10 s after the last send counts as lost
        var settle = Stopwatch.StartNew();
        while (receivers.Sum(r => r.Received) < expected && settle.Elapsed.TotalSeconds < 10)
            await Task.Delay(50);
        var lat = receivers.SelectMany(r => r.Latencies()).ToArray();
        Array.Sort(lat);
        return new Result(rate, total, expected, receivers.Sum(r => r.Received),
                          receivers.Sum(r => r.Missing(first, last + 1)), lat);
    }

    static string Ms(double ms) => ms.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);
}

sealed class Receiver
{
    readonly HubConnection connection;
    readonly object gate = new();
    List<double> latencies = new();
    HashSet<long> seen = new();
    long received;

    public Receiver(string url)
    {
        connection = new HubConnectionBuilder().WithUrl(url).Build();
        connection.On<long, long, byte[]>("m", (seq, sentAt, _) =>
        {
            double ms = (Stopwatch.GetTimestamp() - sentAt) * 1000.0 / Stopwatch.Frequency;
            lock (gate)
            {
                latencies.Add(ms);
                seen.Add(seq);
                received++;
            }
        });
    }

    public long Received { get { lock (gate) return received; } }

    public Task Start() => connection.StartAsync();

    public Task Stop() => connection.DisposeAsync().AsTask();

    public void Reset()
    {
        lock (gate)
        {
            latencies = new List<double>();
            seen = new HashSet<long>();
            received = 0;
        }
    }

    public IEnumerable<double> Latencies() { lock (gate) return latencies.ToArray(); }

    // messages of [first, end) this connection never got
    public long Missing(long first, long end)
    {
        lock (gate)
        {
            long missing = 0;
            for (long s = first; s < end; s++)
                if (!seen.Contains(s))
                    missing++;
            return missing;
        }
    }
}
