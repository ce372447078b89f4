// SignalRBench run: connections spread over the hub servers, each in one
// group; connection 0 is also the sender, invoking a hub method and awaiting
// it (as a SignalR client does; the server runs one invocation per connection
// at a time). For each pattern a rate sweep: up until a rate is not kept up
// with (p99 over --fail-ms, a message lost, or the sender more than --lag-ms
// behind), then --down steps back down.
//
//   --urls U1,U2,...  --connections 200  --group-size 20  --patterns broadcast,group
//   --rates-broadcast 50,100,...  --rates-group 50,100,...  --seconds 10  --down 3
//   --fail-ms 1000  --lag-ms 5000  --settle 10  --warmup 3
//   --server-pids P1,P2,...  --store-pid P      (CPU per step, from /proc)
//
// Prints one TSV line per step: pattern direction rate sent expected received
// lost duplicates p50 p99 max (ms from due to receipt, over every delivery)
// invoke_p50 invoke_p99 (ms the sender awaited an invocation) send_rate
// cpu_client cpu_servers cpu_store cpu_other (% of one core over the step;
// other: every other process of the machine).
using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.SignalR.Client;

static class Sweep
{
    public static string GroupName(int g) => "g" + g;

    public static async Task<int> Run(string[] args)
    {
        string[] urls = Args.Get(args, "urls", "").Split(',', StringSplitOptions.RemoveEmptyEntries);
        int connections = int.Parse(Args.Get(args, "connections", "200"));
        int groupSize = int.Parse(Args.Get(args, "group-size", "20"));
        string[] patterns = Args.Get(args, "patterns", "broadcast,group").Split(',');
        int seconds = int.Parse(Args.Get(args, "seconds", "10"));
        int down = int.Parse(Args.Get(args, "down", "3"));
        double failMs = double.Parse(Args.Get(args, "fail-ms", "1000"), CultureInfo.InvariantCulture);
        double lagMs = double.Parse(Args.Get(args, "lag-ms", "5000"), CultureInfo.InvariantCulture);
        int settle = int.Parse(Args.Get(args, "settle", "10"));
        int warmup = int.Parse(Args.Get(args, "warmup", "3"));
        var cpu = new Cpu(Args.Ints(args, "server-pids", ""), int.Parse(Args.Get(args, "store-pid", "0")));
        int groups = Math.Max(1, connections / groupSize);

        // connection i: group i % groups, server (i + i / groups) % servers, so
        // that every group spans every server and the servers hold as many each
        var receivers = new List<Receiver>();
        for (int i = 0; i < connections; i++)
            receivers.Add(new Receiver(urls[(i + i / groups) % urls.Length] + "/bench", i % groups));
        // connect in small parallel batches: a burst of handshakes is not what is measured
        foreach (var batch in receivers.Chunk(25))
            await Task.WhenAll(batch.Select(r => r.Start()));
        Console.Error.WriteLine($"{connections} connections on {urls.Length} servers, {groups} groups");
        var run = new Runner(receivers, receivers[0].Connection, groups, cpu, settle, lagMs);

        foreach (string pattern in patterns)
        {
            int[] rates = Args.Ints(args, "rates-" + pattern, "100");
            await run.Probe(pattern);
            if (warmup > 0) // JIT, pools, the backplane's first batches: not reported
                foreach (int rate in rates.Take(2))
                    await run.Step(pattern, rate, warmup);
            var done = new List<int>();
            foreach (int rate in rates)
            {
                var r = await run.Step(pattern, rate, seconds);
                Console.WriteLine(string.Join('\t', pattern, "up", r.Line));
                done.Add(rate);
                if (!r.KeptUp(failMs))
                    break;
            }
            done.Reverse();
            foreach (int rate in done.Skip(1).Take(down))
            {
                var r = await run.Step(pattern, rate, seconds);
                Console.WriteLine(string.Join('\t', pattern, "down", r.Line));
            }
        }
        foreach (var r in receivers)
            await r.Stop();
        return 0;
    }
}

sealed record StepResult(int Rate, long Sent, long Expected, long Received, long Lost, long Duplicates,
                         float[] Sorted, double[] Invokes, bool Behind, double SendRate,
                         (double Client, double Servers, double Store, double Other) Cpu)
{
    public bool KeptUp(double failMs) => !Behind && Lost == 0 && Received == Expected && Sorted.Length > 0
                                         && Pct(Sorted, 0.99) <= failMs;

    static double Pct(float[] s, double p) => s.Length == 0 ? double.NaN : s[Math.Min(s.Length - 1, (int) (p * s.Length))];

    static double Pct(double[] s, double p) => s.Length == 0 ? double.NaN : s[Math.Min(s.Length - 1, (int) (p * s.Length))];

    public string Line => string.Join('\t', Rate, Sent, Expected, Received, Lost, Duplicates,
        F(Pct(Sorted, 0.50)), F(Pct(Sorted, 0.99)), F(Sorted.Length > 0 ? Sorted[^1] : double.NaN),
        F(Pct(Invokes, 0.50)), F(Pct(Invokes, 0.99)), F(SendRate), F(Cpu.Client), F(Cpu.Servers), F(Cpu.Store), F(Cpu.Other));

    static string F(double v) => v.ToString("0.000", CultureInfo.InvariantCulture);
}

sealed class Runner(List<Receiver> receivers, HubConnection sender, int groups, Cpu cpu, int settle, double lagMs)
{
    long next; // the next message's sequence number; steps never share one

    static bool Addressed(string pattern, long seq, int group, int groups) =>
        pattern == "broadcast" || seq % groups == group;

    /// <summary>Until every connection got a message of the pattern: subscriptions and groups are in place.</summary>
    public async Task Probe(string pattern)
    {
        foreach (var r in receivers)
            r.Probed = false;
        var clock = Stopwatch.StartNew();
        while (receivers.Any(r => !r.Probed))
        {
            if (clock.Elapsed.TotalSeconds > 30)
                throw new TimeoutException($"{receivers.Count(r => !r.Probed)} connections never got a {pattern} probe");
            if (pattern == "broadcast")
                await sender.InvokeAsync("Broadcast", -1L, 0L, Array.Empty<byte>());
            else
                for (int g = 0; g < groups; g++)
                    if (receivers.Any(r => r.Group == g && !r.Probed))
                        await sender.InvokeAsync("SendGroup", Sweep.GroupName(g), -1L, 0L, Array.Empty<byte>());
            await Task.Delay(200);
        }
    }

    /// <summary>One rate: rate * seconds messages, each due at n / rate s, then wait for the tail.</summary>
    public async Task<StepResult> Step(string pattern, int rate, int seconds)
    {
        long first = next, planned = (long) rate * seconds;
        next += planned;
        foreach (var r in receivers)
            r.Begin(first, planned);
        var payload = new byte[128];
        Random.Shared.NextBytes(payload);
        var invokes = new double[planned];
        var before = cpu.Take();
        long start = Stopwatch.GetTimestamp();
        long sent = 0;
        bool behind = false;
        for (; sent < planned; sent++)
        {
            long due = start + sent * Stopwatch.Frequency / rate;
            long now = Stopwatch.GetTimestamp();
            double wait = (double) (due - now) / Stopwatch.Frequency;
            if (wait > 0.001)
                await Task.Delay(TimeSpan.FromSeconds(wait));
            else if (-wait * 1000 > lagMs)
            {
                behind = true; // the sender cannot keep this rate: stop the step
                break;
            }
            long seq = first + sent;
            long t0 = Stopwatch.GetTimestamp();
            if (pattern == "broadcast")
                await sender.InvokeAsync("Broadcast", seq, due, payload);
            else
                await sender.InvokeAsync("SendGroup", Sweep.GroupName((int) (seq % groups)), seq, due, payload);
            invokes[sent] = (Stopwatch.GetTimestamp() - t0) * 1000.0 / Stopwatch.Frequency;
        }
        double sendSeconds = (double) (Stopwatch.GetTimestamp() - start) / Stopwatch.Frequency;
        var members = new long[groups];
        foreach (var r in receivers)
            members[r.Group]++;
        long expected = 0;
        for (long i = 0; i < sent; i++)
            expected += pattern == "broadcast" ? receivers.Count : members[(first + i) % groups];
        // a message still missing --settle seconds after the last send counts as lost
        var wait2 = Stopwatch.StartNew();
        while (receivers.Sum(r => r.Received) < expected && wait2.Elapsed.TotalSeconds < settle)
            await Task.Delay(20);
        var after = cpu.Take();
        var lat = receivers.SelectMany(r => r.Latencies()).ToArray();
        Array.Sort(lat);
        var inv = invokes[..(int) sent];
        Array.Sort(inv);
        return new StepResult(rate, sent, expected, receivers.Sum(r => r.Received),
                              receivers.Sum(r => r.Missing(sent, (s, g) => Addressed(pattern, s, g, groups))),
                              receivers.Sum(r => r.Duplicates), lat, inv, behind, sent / sendSeconds,
                              Cpu.Percent(before, after));
    }
}
