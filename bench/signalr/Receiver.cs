using System.Diagnostics;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

/// <summary>
/// One client connection: a WebSocket without negotiation, a member of one
/// group, recording for the current step which messages it got (once each)
/// and how long after they were due.
/// </summary>
sealed class Receiver
{
    readonly object gate = new();
    public HubConnection Connection { get; }
    public string Url { get; }
    public int Group { get; }
    // the current step: messages [first, first + seen.Length)
    long first;
    bool[] seen = [];
    List<float> latencies = new();
    long received, duplicates;
    bool probed;

    public Receiver(string url, int group)
    {
        Url = url;
        Group = group;
        Connection = new HubConnectionBuilder()
            .WithUrl(url, o =>
            {
                o.SkipNegotiation = true;
                o.Transports = HttpTransportType.WebSockets;
            })
            .Build();
        Connection.ServerTimeout = TimeSpan.FromSeconds(60);
        Connection.On<long, long, byte[]>("m", (seq, due, _) => Got(seq, due, Stopwatch.GetTimestamp()));
    }

    void Got(long seq, long due, long now)
    {
        lock (gate)
        {
            if (seq < 0)
            {
                probed = true;
                return;
            }
            long i = seq - first;
            if (i < 0 || i >= seen.Length)
                return; // a message of an earlier step, counted lost there
            if (seen[i])
            {
                duplicates++;
                return;
            }
            seen[i] = true;
            received++;
            latencies.Add((float) ((now - due) * 1000.0 / Stopwatch.Frequency));
        }
    }

    public async Task Start()
    {
        await Connection.StartAsync();
        await Connection.InvokeAsync("Join", Sweep.GroupName(Group));
    }

    public Task Stop() => Connection.DisposeAsync().AsTask();

    /// <summary>Forget the last step; expect messages from <paramref name="firstSeq"/> on.</summary>
    public void Begin(long firstSeq, long count)
    {
        lock (gate)
        {
            first = firstSeq;
            seen = new bool[count];
            latencies = new List<float>((int) Math.Min(count, 1 << 20));
            received = duplicates = 0;
        }
    }

    public bool Probed
    {
        get { lock (gate) return probed; }
        set { lock (gate) probed = value; }
    }

    public long Received { get { lock (gate) return received; } }

    public long Duplicates { get { lock (gate) return duplicates; } }

    public float[] Latencies() { lock (gate) return latencies.ToArray(); }

    /// <summary>Messages of the first <paramref name="sent"/> of the step addressed to this connection and not had.</summary>
    public long Missing(long sent, Func<long, int, bool> addressed)
    {
        lock (gate)
        {
            long missing = 0;
            for (long i = 0; i < sent; i++)
                if (!seen[i] && addressed(first + i, Group))
                    missing++;
            return missing;
        }
    }
}
