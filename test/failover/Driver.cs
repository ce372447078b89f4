// The failover scenario: clients on both hub servers, a steady load of every
// send kind (hub methods, and sends from SQL), the primary stopped with
// -m immediate and the standby promoted mid-stream, then the verdict.
// Asserted: no acknowledged send lost, none hung, none doubled, none
// delivered to a connection it did not address. Reported (not asserted):
// the window in which sends failed or waited, when the hub servers were
// registered and consuming again, counts per kind.
// Every wait is for a condition, with a deadline.
using System.Diagnostics;
using Microsoft.AspNetCore.SignalR.Client;
using Npgsql;

static class Driver
{
    public static async Task<int> Run(string[] args)
    {
        var scenario = new Scenario(args);
        try
        {
            return await scenario.RunAsync();
        }
        catch (Exception e)
        {
            // a setup step that did not finish in time: one failure, with its reason
            Console.WriteLine($"not ok - {Args.Get(args, "label", "failover")}: {e.GetType().Name}: {e.Message}");
            Console.WriteLine(e.StackTrace);
            return 1;
        }
        finally
        {
            await scenario.DisposeAsync();
        }
    }
}

sealed class Scenario : IAsyncDisposable
{
    static readonly string[] HubKinds =
        ["all", "all-except", "connection", "connections", "group", "groups", "group-except", "user", "users", "invoke"];
    static readonly string[] SqlKinds = ["sql-call", "sql-trigger"];
    const string Hub = "FailoverHub";
    static readonly TimeSpan Slow = TimeSpan.FromMilliseconds(250);

    readonly string _label;
    readonly string[] _urls;
    readonly int _receivers, _rate;
    readonly TimeSpan _before, _after;
    readonly NpgsqlDataSource _sql, _oldPrimary, _newPrimary;
    readonly string _stopCommand, _promoteCommand;
    readonly List<Client> _clients = new();
    readonly List<Client> _receiverList = new();
    readonly Dictionary<string, List<Client>> _groups = new();
    readonly Dictionary<string, List<Client>> _users = new();
    readonly Ledger _ledger = new();
    int _passed, _failed;

    public Scenario(string[] args)
    {
        _label = Args.Get(args, "label", "failover");
        _urls = Args.Get(args, "urls").Split(',');
        _receivers = Args.Int(args, "receivers", 40);
        _rate = Args.Int(args, "rate", 10);
        _before = TimeSpan.FromSeconds(Args.Int(args, "before", 5));
        _after = TimeSpan.FromSeconds(Args.Int(args, "after", 10));
        // the application's sends from SQL: the multi-host string, as the hub servers have it
        _sql = NpgsqlDataSource.Create(Args.Get(args, "sql"));
        // presence checks, as the DBA: directly on each server
        _oldPrimary = NpgsqlDataSource.Create(Args.Get(args, "primary"));
        _newPrimary = NpgsqlDataSource.Create(Args.Get(args, "standby"));
        _stopCommand = Environment.GetEnvironmentVariable("FAILOVER_STOP") ?? throw new ArgumentException("FAILOVER_STOP");
        _promoteCommand = Environment.GetEnvironmentVariable("FAILOVER_PROMOTE") ?? throw new ArgumentException("FAILOVER_PROMOTE");
    }

    void Check(bool ok, string what)
    {
        Console.WriteLine($"{(ok ? "ok" : "not ok")} - {_label}: {what}");
        if (ok) _passed++; else _failed++;
    }

    static void Say(string line) => Console.WriteLine("   " + line);

    public async Task<int> RunAsync()
    {
        await ConnectAsync();
        await JoinGroupsAsync();
        if (!await WaitForAsync(TimeSpan.FromSeconds(30), () => PresenceAsync(_oldPrimary),
                                p => p.Servers == 2 && p.Connections == _clients.Count))
        {
            Check(false, "the registry shows both hub servers and every connection before the failover");
            return 1;
        }
        if (!await WarmUpAsync())
            return 1;

        // the load: every kind from both servers, and from SQL, at a steady rate each
        using var stop = new CancellationTokenSource();
        _ledger.WarmUp = false;
        long loadStart = Stopwatch.GetTimestamp();
        var loops = new List<Task>();
        foreach (var sender in _clients.Where(c => c.Role != "receiver"))
            loops.Add(Task.Run(() => HubLoop(sender, loadStart, stop.Token)));
        foreach (var kind in SqlKinds)
            loops.Add(Task.Run(() => SqlLoop(kind, loadStart, stop.Token)));

        await Task.Delay(_before);
        long tStop = Stopwatch.GetTimestamp();
        bool stopped = await ShellAsync(_stopCommand);
        long tStopped = Stopwatch.GetTimestamp();
        bool promoted = await ShellAsync(_promoteCommand);
        long tPromoted = Stopwatch.GetTimestamp();
        Check(stopped && promoted, "primary stopped (immediate) and standby promoted");
        var recovery = MonitorAsync(tPromoted);
        // the load goes on for _after, and until both servers are back (and 3 s more), at most 30 s
        long f = Stopwatch.Frequency, end = tPromoted + (long) (_after.TotalSeconds * f);
        await WaitForAsync(TimeSpan.FromSeconds(30 + 1), () => Task.FromResult(0),
                           _ => recovery.IsCompleted && Consuming(tPromoted).All(c => c != null));
        end = Math.Max(end, Stopwatch.GetTimestamp() + 3 * f);
        end = Math.Min(end, tPromoted + 33 * f);
        long now = Stopwatch.GetTimestamp();
        if (end > now)
            await Task.Delay(TimeSpan.FromSeconds((double) (end - now) / f));
        stop.Cancel();

        // every caller hears back: the adapter reports a send it cannot confirm within SendTimeout (30 s)
        var allDone = Task.WhenAll(loops);
        await Task.WhenAny(allDone, Task.Delay(TimeSpan.FromSeconds(45)));
        // then every acknowledged send reaches every connection it addressed
        await WaitForAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(_ledger.Undelivered()), n => n == 0);
        var (registered, rebuilt) = await recovery;

        Report(tStop, tStopped, tPromoted, registered, rebuilt);
        return _failed == 0 ? 0 : 1;
    }

    // ---- setup ----

    async Task ConnectAsync()
    {
        for (int s = 0; s < _urls.Length; s++)
            foreach (var kind in HubKinds)
                _clients.Add(new Client(_clients.Count, s, _urls[s], null, kind));
        for (int i = 0; i < _receivers; i++)
        {
            // each user has a connection on each server
            var c = new Client(_clients.Count, i % _urls.Length, _urls[i % _urls.Length], $"u{i / _urls.Length}", "receiver");
            _clients.Add(c);
            _receiverList.Add(c);
            _users.TryAdd(c.User!, new List<Client>());
            _users[c.User!].Add(c);
        }
        foreach (var batch in _clients.Chunk(10))
            await Task.WhenAll(batch.Select(c => c.StartAsync(TimeSpan.FromSeconds(30))));
    }

    async Task JoinGroupsAsync()
    {
        void Member(string group, Client c)
        {
            _groups.TryAdd(group, new List<Client>());
            _groups[group].Add(c);
            c.Groups.Add(group);
        }
        var joins = new List<Task>();
        foreach (var c in _receiverList)
        {
            int i = _receiverList.IndexOf(c);
            // joined by the connection itself, on its server
            foreach (var g in new[] { $"g{i % 4}", $"g{(i + 1) % 4}" })
            {
                Member(g, c);
                joins.Add(c.Connection.InvokeAsync("Join", g));
            }
            // added by a connection of the other server
            var other = _clients.First(o => o.Role == "group" && o.Server != c.Server);
            Member($"x{i % 3}", c);
            joins.Add(other.Connection.InvokeAsync("AddToGroup", c.Id, $"x{i % 3}"));
        }
        await Task.WhenAll(joins).WaitAsync(TimeSpan.FromSeconds(30));
    }

    // one message of every kind from every sender, each received by all it addressed
    async Task<bool> WarmUpAsync()
    {
        var sends = new List<Task>();
        foreach (var sender in _clients.Where(c => c.Role != "receiver"))
            sends.Add(HubSendAsync(sender));
        foreach (var kind in SqlKinds)
            sends.Add(SqlSendAsync(kind));
        try
        {
            await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(40));
        }
        catch (TimeoutException)
        {
            // reported below, send by send
        }
        bool delivered = await WaitForAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(_ledger.Undelivered()), n => n == 0);
        var all = _ledger.All();
        bool ok = delivered && all.All(s => s.Outcome == Outcome.Ok);
        Check(ok, $"warm-up: {all.Count} sends of every kind delivered before the failover");
        if (!ok)
            foreach (var s in all.Where(s => s.Outcome != Outcome.Ok || s.Missing() > 0))
                Say($"{s.Kind} #{s.Id} from {ServerName(s.Server)}: {s.Outcome} {s.Error}, reached {s.Expected.Length - s.Missing()} of {s.Expected.Length}");
        return ok;
    }

    // ---- the load ----

    // one kind from one connection, one invocation at a time (SignalR's default), at _rate per second
    async Task HubLoop(Client sender, long start, CancellationToken stop)
    {
        await PacedAsync(start, stop, () => HubSendAsync(sender));
    }

    async Task SqlLoop(string kind, long start, CancellationToken stop)
    {
        await PacedAsync(start, stop, () => SqlSendAsync(kind));
    }

    // at most one send per tick; ticks missed while a send waited are skipped, not caught up in a burst
    async Task PacedAsync(long start, CancellationToken stop, Func<Task> send)
    {
        double period = (double) Stopwatch.Frequency / _rate;
        long tick = 0;
        while (!stop.IsCancellationRequested)
        {
            long now = Stopwatch.GetTimestamp();
            long due = start + (long) (tick * period);
            if (due > now)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds((double) (due - now) / Stopwatch.Frequency), stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            else
                tick = Math.Max(tick, (long) ((now - start) / period));
            tick++;
            await send();
        }
    }

    async Task HubSendAsync(Client sender)
    {
        string kind = sender.Role;
        string[] targets = [], excluded = [];
        var send = _ledger.Start(kind, sender.Server, id =>
        {
            var (expected, t, x) = Audience(kind, id, sender);
            targets = t;
            excluded = x;
            return expected;
        });
        try
        {
            if (kind == "invoke")
            {
                long answer = await sender.Connection.InvokeAsync<long>("Ask", targets[0], send.Id);
                send.Done(answer == send.Id ? null : $"wrong answer {answer}");
            }
            else
            {
                await sender.Connection.InvokeAsync("Send", kind, send.Id, targets, excluded);
                send.Done(null);
            }
        }
        catch (Exception e)
        {
            send.Done(e.Message);
        }
    }

    async Task SqlSendAsync(string kind)
    {
        string group = "";
        var send = _ledger.Start(kind, -1, id =>
        {
            if (kind == "sql-call")
                return _clients.ToArray();
            group = GroupAt(id);
            return _groups[group].ToArray();
        });
        try
        {
            await using var cmd = kind == "sql-call"
                ? _sql.CreateCommand(
                    $"SELECT signalr_bp.send_all('{HubServer.Application}', '{Hub}', " +
                    "signalr_bp.json_invocation('m', jsonb_build_array('sql-call', $1::bigint)))")
                : _sql.CreateCommand("INSERT INTO failover_event (id, group_name) VALUES ($1, $2)");
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = send.Id });
            if (kind == "sql-trigger")
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = group });
            await cmd.ExecuteNonQueryAsync();
            send.Done(null);
        }
        catch (Exception e)
        {
            send.Done(e.Message);
        }
    }

    string GroupAt(long n)
    {
        var names = _groups.Keys.Order().ToArray();
        return names[n % names.Length];
    }

    // whom send #n of a kind addresses: (the connections, the hub method's targets, its excluded ids)
    (Client[] Expected, string[] Targets, string[] Excluded) Audience(string kind, long n, Client sender)
    {
        var r = _receiverList;
        Client R(long k) => r[(int) (k % r.Count)];
        var users = _users.Keys.Order().ToArray();
        switch (kind)
        {
            case "all":
                return (_clients.ToArray(), [], []);
            case "all-except":
            {
                var x = new[] { R(n), R(n + 1) };   // one on each server
                return (_clients.Except(x).ToArray(), [], x.Select(c => c.Id).ToArray());
            }
            case "connection":
                return ([R(n)], [R(n).Id], []);
            case "connections":
            {
                var t = new[] { R(n), R(n + 3), R(n + 8) }.Distinct().ToArray();
                return (t, t.Select(c => c.Id).ToArray(), []);
            }
            case "group":
                return (_groups[GroupAt(n)].ToArray(), [GroupAt(n)], []);
            case "groups":
            {
                string[] g = [GroupAt(n), GroupAt(n + 1)];
                return (g.SelectMany(x => _groups[x]).Distinct().ToArray(), g, []);
            }
            case "group-except":
            {
                var members = _groups[GroupAt(n)];
                var x = members[(int) (n % members.Count)];
                return (members.Where(c => c != x).ToArray(), [GroupAt(n)], [x.Id]);
            }
            case "user":
            {
                string u = users[n % users.Length];
                return (_users[u].ToArray(), [u], []);
            }
            case "users":
            {
                string[] u = [users[n % users.Length], users[(n + 1) % users.Length]];
                return (u.SelectMany(x => _users[x]).ToArray(), u, []);
            }
            case "invoke":
            {
                // a connection of the other hub server
                var others = r.Where(c => c.Server != sender.Server).ToArray();
                var t = others[n % others.Length];
                return ([t], [t.Id], []);
            }
            default:
                throw new ArgumentException(kind);
        }
    }

    // ---- the failover ----

    static async Task<bool> ShellAsync(string command)
    {
        using var p = Process.Start(new ProcessStartInfo("/bin/bash", ["-c", command]) { RedirectStandardOutput = false })!;
        try
        {
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            p.Kill(true);
            return false;
        }
        return p.ExitCode == 0;
    }

    sealed record Presence(long Servers, long Connections);

    async Task<Presence> PresenceAsync(NpgsqlDataSource db)
    {
        await using var cmd = db.CreateCommand(
            $"SELECT (SELECT count(*) FROM signalr_bp.servers('{HubServer.Application}')), " +
            $"signalr_bp.connection_count('{HubServer.Application}', '{Hub}')");
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new Presence(reader.GetInt64(0), reader.GetInt64(1));
    }

    // the new primary's registry: when both servers, then every connection, are back (null: not within 30 s)
    async Task<(long? Registered, long? Rebuilt)> MonitorAsync(long since)
    {
        long? registered = null, rebuilt = null;
        long deadline = since + 30 * Stopwatch.Frequency;
        while (rebuilt == null && Stopwatch.GetTimestamp() < deadline)
        {
            try
            {
                var p = await PresenceAsync(_newPrimary);
                if (p.Servers == 2)
                    registered ??= Stopwatch.GetTimestamp();
                if (p.Servers == 2 && p.Connections == _clients.Count(c => c.Closed == null))
                    rebuilt = Stopwatch.GetTimestamp();
            }
            catch (NpgsqlException)
            {
                // not yet accepting connections
            }
            await Task.Delay(50);
        }
        return (registered, rebuilt);
    }

    static async Task<bool> WaitForAsync<T>(TimeSpan timeout, Func<Task<T>> probe, Func<T, bool> done)
    {
        long deadline = Stopwatch.GetTimestamp() + (long) (timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            try
            {
                if (done(await probe()))
                    return true;
            }
            catch (NpgsqlException)
            {
            }
            if (Stopwatch.GetTimestamp() > deadline)
                return false;
            await Task.Delay(100);
        }
    }

    // per hub server: when its clients first got a send started after the time (null: not yet)
    long?[] Consuming(long since)
    {
        var first = new long?[_urls.Length];
        foreach (var s in _ledger.All().Where(s => s.Started >= since && s.Outcome == Outcome.Ok))
            foreach (var c in s.Expected)
                if (c.FirstReceipt(s.Kind, s.Id) is long t && (first[c.Server] == null || t < first[c.Server]))
                    first[c.Server] = t;
        return first;
    }

    // ---- the verdict ----

    string ServerName(int s) => s < 0 ? "SQL" : $"hub-{s + 1}";

    void Report(long tStop, long tStopped, long tPromoted, long? registered, long? rebuilt)
    {
        double Ms(long t) => (t - tStop) * 1000.0 / Stopwatch.Frequency;
        string At(long? t) => t == null ? "never (within 30 s)"
            : $"+{Ms(t.Value):0} ms ({(t.Value - tPromoted) * 1000.0 / Stopwatch.Frequency:+0;-0} ms from the promotion)";
        var sends = _ledger.All();
        var expectedSets = sends.ToDictionary(s => (s.Kind, s.Id), s => s.Expected.Select(c => c.Index).ToHashSet());
        var dup = new Dictionary<string, int>();
        var wrong = new Dictionary<string, int>();
        // a server consumes again when its clients get what was sent after the promotion
        var consuming = Consuming(tPromoted);
        foreach (var c in _clients)
            foreach (var (kind, id, _, count) in c.Receipts())
            {
                if (count > 1)
                    dup[kind] = dup.GetValueOrDefault(kind) + count - 1;
                if (!expectedSets.TryGetValue((kind, id), out var set) || !set.Contains(c.Index))
                    wrong[kind] = wrong.GetValueOrDefault(kind) + 1;
            }

        Say($"{_clients.Count} connections ({_receivers} receivers, {_clients.Count - _receivers} senders) on {_urls.Length} hub servers; " +
            $"{_rate} sends/s per kind and sender, {sends.Count(s => !s.WarmUp)} sends");
        Say($"t=0: pg_ctl stop -m immediate of the primary after {_before.TotalSeconds:0} s of load " +
            $"(returned at +{Ms(tStopped):0} ms); pg_ctl promote of the standby returned at +{Ms(tPromoted):0} ms");
        Say($"registry on the new primary: both hub servers at {At(registered)}, every open connection at {At(rebuilt)}");
        for (int s = 0; s < _urls.Length; s++)
            Say($"{ServerName(s)} consuming again (first delivery of a send started after the promotion) at {At(consuming[s])}");

        // per family, from the callers' side: the sends the failover touched (answered after the
        // stop, and failed or slower than max(250 ms, twice the p99 before the stop))
        var load = sends.Where(s => !s.WarmUp).ToList();
        double Latency(Send s) => (s.Ended - s.Started) * 1000.0 / Stopwatch.Frequency;
        foreach (var (family, kinds) in new[] { ("hub sends", HubKinds[..^1]), ("client results", ["invoke"]), ("sends from SQL", SqlKinds) })
        {
            var f = load.Where(s => kinds.Contains(s.Kind)).ToList();
            var ok = f.Where(s => s.Outcome == Outcome.Ok).ToList();
            var before = ok.Where(s => s.Ended < tStop).Select(Latency).Order().ToArray();
            double p99 = before.Length == 0 ? 0 : before[(int) (before.Length * 0.99)];
            double waitMs = Math.Max(Slow.TotalMilliseconds, 2 * p99);
            string normal = before.Length == 0 ? "" : $" (before the stop: p50 {before[before.Length / 2]:0} ms, p99 {p99:0} ms)";
            var bad = f.Where(s => s.Ended >= tStop &&
                                   (s.Outcome == Outcome.Failed || (s.Outcome == Outcome.Ok && Latency(s) > waitMs))).ToList();
            if (bad.Count == 0)
            {
                Say($"{family}: none failed or waited > {waitMs:0} ms{normal}");
                continue;
            }
            var after = ok.Where(s => s.Ended >= tStop).ToList();
            var firstOk = ok.Where(s => s.Started >= tStop).OrderBy(s => s.Ended).FirstOrDefault();
            Say($"{family}: {bad.Count(s => s.Outcome == Outcome.Failed)} failed, {bad.Count(s => s.Outcome == Outcome.Ok)} waited > {waitMs:0} ms" +
                $"{(after.Count == 0 ? "" : $" (longest {after.Max(Latency):0} ms)")}: started from {Ms(bad.Min(s => s.Started)):+0;-0} ms, " +
                $"last answered at {Ms(bad.Max(s => s.Ended)):+0} ms; the first one started after the stop completed at " +
                $"{(firstOk == null ? "never" : $"{Ms(firstOk.Ended):+0} ms")}{normal}");
            foreach (var (error, n) in f.Where(s => s.Outcome == Outcome.Failed).GroupBy(s => Trim(s.Error!))
                         .Select(g => (g.Key, g.Count())).OrderByDescending(g => g.Item2).Take(4))
                Say($"    {n} x {error}");
        }

        Say($"{"kind",-13} {"sends",6} {"ok",6} {"failed",6} {"hung",5} {"addressed",9} {"lost",5} {"dup",4} {"wrong",5} {"to closed",9} {"failed, delivered",17}");
        long lost = 0, hung = 0, dups = 0, wrongs = 0;
        foreach (var kind in HubKinds.Concat(SqlKinds))
        {
            var k = sends.Where(s => s.Kind == kind).ToList();
            var ok = k.Where(s => s.Outcome == Outcome.Ok).ToList();
            long kLost = ok.Sum(s => s.MissingOpen().Length);
            long kClosed = ok.Sum(s => s.Missing()) - kLost;
            long kHung = k.Count(s => s.Outcome == Outcome.Pending);
            long failedDelivered = k.Count(s => s.Outcome == Outcome.Failed && s.Missing() < s.Expected.Length);
            Say($"{kind,-13} {k.Count,6} {ok.Count,6} {k.Count(s => s.Outcome == Outcome.Failed),6} {kHung,5} " +
                $"{ok.Sum(s => s.Expected.Length),9} {kLost,5} {dup.GetValueOrDefault(kind),4} {wrong.GetValueOrDefault(kind),5} " +
                $"{kClosed,9} {failedDelivered,17}");
            lost += kLost;
            hung += kHung;
            dups += dup.GetValueOrDefault(kind);
            wrongs += wrong.GetValueOrDefault(kind);
        }
        var lostSends = sends.Where(s => s.Outcome == Outcome.Ok && s.MissingOpen().Length > 0).OrderBy(s => s.Started).ToList();
        if (lostSends.Count > 0)
            Say($"{lostSends.Count} acknowledged sends lost, started from {Ms(lostSends[0].Started):+0} ms to {Ms(lostSends[^1].Started):+0} ms; the first ones:");
        foreach (var s in lostSends.Take(8))
            Say($"  {s.Kind} #{s.Id} from {ServerName(s.Server)}, started at {Ms(s.Started):+0} ms, answered at {Ms(s.Ended):+0} ms, " +
                $"missing on {string.Join(", ", s.MissingOpen().GroupBy(c => c.Server).Select(g => $"{g.Count()} of {ServerName(g.Key)}'s"))} " +
                $"(reached {s.Expected.Length - s.Missing()} of {s.Expected.Length})");

        Check(registered != null && consuming.All(c => c != null && c - tPromoted <= 30 * Stopwatch.Frequency),
              "both hub servers registered and consuming again (within 30 s of the promotion)");
        Check(lost == 0, $"no acknowledged send lost ({sends.Count(s => s.Outcome == Outcome.Ok)} acknowledged, {lost} deliveries missing)");
        Check(hung == 0, $"every send completed or failed ({hung} without an answer 45 s after the load)");
        Check(dups == 0, $"no duplicates ({dups})");
        Check(wrongs == 0, $"nothing delivered to a connection it did not address ({wrongs})");
        var closed = _clients.Where(c => c.Closed != null).ToList();
        Check(closed.Count == 0, $"every client connection stayed open ({closed.Count} closed by the server" +
                                 $"{(closed.Count > 0 ? $", the first at {Ms(closed.Min(c => c.ClosedAt)):+0} ms: {closed[0].Closed}" : "")})");
    }

    static string Trim(string error)
    {
        error = error.ReplaceLineEndings(" ");
        return error.Length > 160 ? error[..160] + "..." : error;
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_clients.Select(async c =>
        {
            try
            {
                await c.Connection.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception)
            {
                // the verdict is already out
            }
        }));
        await _sql.DisposeAsync();
        await _oldPrimary.DisposeAsync();
        await _newPrimary.DisposeAsync();
    }
}
