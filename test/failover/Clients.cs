// The SignalR clients of the failover test: real WebSocket connections to
// one hub server each, counting every (kind, id) they receive, with the time
// of the first receipt. A connection that closes is recorded: the test has
// no reconnects, so a closed connection would explain a loss.
using System.Diagnostics;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

sealed class Client
{
    private readonly object _lock = new();
    private readonly Dictionary<(string Kind, long Id), (long First, int Count)> _got = new();

    public Client(int index, int server, string url, string? user, string role)
    {
        Index = index;
        Server = server;
        User = user;
        Role = role;
        Connection = new HubConnectionBuilder()
            .WithUrl(url + "/hub" + (user == null ? "" : "?user=" + user), o =>
            {
                o.SkipNegotiation = true;
                o.Transports = HttpTransportType.WebSockets;
            })
            .Build();
        Connection.On<string, long>("m", (kind, id) => Got(kind, id));
        // client results: answer with the id asked
        Connection.On<long, long>("ask", id =>
        {
            Got("invoke", id);
            return id;
        });
        Connection.Closed += e =>
        {
            ClosedAt = Stopwatch.GetTimestamp();
            Closed = e?.Message ?? "closed";
            return Task.CompletedTask;
        };
    }

    public int Index { get; }
    public int Server { get; }
    public string? User { get; }
    /// <summary>"receiver", or the send kind this connection sends.</summary>
    public string Role { get; }
    public HubConnection Connection { get; }
    public string Id { get; private set; } = "";
    public HashSet<string> Groups { get; } = new();
    public volatile string? Closed;
    public long ClosedAt;

    public async Task StartAsync(TimeSpan timeout)
    {
        await Connection.StartAsync().WaitAsync(timeout);
        // with skipNegotiation the client is not told its id: ask the hub
        Id = await Connection.InvokeAsync<string>("WhoAmI").WaitAsync(timeout);
    }

    private void Got(string kind, long id)
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
            _got[(kind, id)] = _got.TryGetValue((kind, id), out var r) ? (r.First, r.Count + 1) : (now, 1);
    }

    public bool Has(string kind, long id)
    {
        lock (_lock)
            return _got.ContainsKey((kind, id));
    }

    /// <summary>When it first received (kind, id); null if never.</summary>
    public long? FirstReceipt(string kind, long id)
    {
        lock (_lock)
            return _got.TryGetValue((kind, id), out var r) ? r.First : null;
    }

    /// <summary>Every (kind, id) received, with the first receipt's time and how many times.</summary>
    public List<(string Kind, long Id, long First, int Count)> Receipts()
    {
        lock (_lock)
            return _got.Select(g => (g.Key.Kind, g.Key.Id, g.Value.First, g.Value.Count)).ToList();
    }
}
