using System.Diagnostics;

/// <summary>
/// CPU time of the processes under test, from /proc (Linux): this client, the
/// hub servers, and the store (redis-server, or the postmaster with every
/// backend and background process). A step reports each as % of one core.
/// </summary>
sealed class Cpu
{
    const double TicksPerSecond = 100; // USER_HZ on Linux
    readonly int[] servers;
    readonly int store;

    public Cpu(int[] servers, int store)
    {
        this.servers = servers;
        this.store = store;
    }

    public readonly record struct Sample(long At, double Client, double Servers, double Store);

    public Sample Take() => new(Stopwatch.GetTimestamp(),
                                Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
                                servers.Sum(p => Seconds(p, false)),
                                store > 0 ? Seconds(store, true) + Children(store) : 0);

    /// <summary>% of one core each used between two samples: client, servers, store.</summary>
    public static (double Client, double Servers, double Store) Percent(Sample a, Sample b)
    {
        double wall = (double) (b.At - a.At) / Stopwatch.Frequency;
        return (100 * (b.Client - a.Client) / wall, 100 * (b.Servers - a.Servers) / wall,
                100 * (b.Store - a.Store) / wall);
    }

    // utime + stime (+ the reaped children's when asked) of a process, 0 if it is gone
    static double Seconds(int pid, bool reaped)
    {
        string[]? f = Fields(pid);
        if (f == null)
            return 0;
        long t = long.Parse(f[11]) + long.Parse(f[12]);
        if (reaped)
            t += long.Parse(f[13]) + long.Parse(f[14]);
        return t / TicksPerSecond;
    }

    static double Children(int parent)
    {
        double sum = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out int pid) && Fields(pid) is { } f && f[1] == parent.ToString())
                sum += (long.Parse(f[11]) + long.Parse(f[12])) / TicksPerSecond;
        return sum;
    }

    // /proc/PID/stat after the command name: f[0] is the state, f[1] the parent, f[11] utime
    static string[]? Fields(int pid)
    {
        try
        {
            string s = File.ReadAllText($"/proc/{pid}/stat");
            return s[(s.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
