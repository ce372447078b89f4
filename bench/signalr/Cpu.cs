using System.Diagnostics;

/// <summary>
/// CPU time of the processes under test, from /proc (Linux): this client, the
/// hub servers, and the store (redis-server, or the postmaster with every
/// backend and background process). A step reports each as % of one core,
/// and what the rest of the machine used meanwhile (other work disturbs a run).
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

    public readonly record struct Sample(long At, double Client, double Servers, double Store, double Machine);

    public Sample Take() => new(Stopwatch.GetTimestamp(),
                                Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
                                servers.Sum(p => Seconds(p, false)),
                                store > 0 ? Seconds(store, true) + Children(store) : 0,
                                MachineBusy());

    /// <summary>% of one core used between two samples: client, servers, store, everything else.</summary>
    public static (double Client, double Servers, double Store, double Other) Percent(Sample a, Sample b)
    {
        double wall = (double) (b.At - a.At) / Stopwatch.Frequency;
        double client = b.Client - a.Client, servers = b.Servers - a.Servers, store = b.Store - a.Store;
        double other = Math.Max(0, b.Machine - a.Machine - client - servers - store);
        return (100 * client / wall, 100 * servers / wall, 100 * store / wall, 100 * other / wall);
    }

    // seconds of CPU the whole machine was busy (every core): the first line of /proc/stat
    static double MachineBusy()
    {
        try
        {
            string[] f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // cpu user nice system idle iowait irq softirq steal
            long busy = long.Parse(f[1]) + long.Parse(f[2]) + long.Parse(f[3]) + long.Parse(f[6]) + long.Parse(f[7]) + long.Parse(f[8]);
            return busy / TicksPerSecond;
        }
        catch (IOException)
        {
            return 0;
        }
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
