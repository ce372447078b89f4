// Every send the test made: its kind and id, whom it addressed, when it
// started and ended, and what its caller saw (completed, failed, or nothing
// yet). The verdict compares this with what each client received.
using System.Diagnostics;

enum Outcome { Pending, Ok, Failed }

sealed class Send(string kind, long id, int server, Client[] expected, bool warmUp)
{
    public string Kind { get; } = kind;
    public long Id { get; } = id;
    /// <summary>The hub server the caller invoked; -1 for a send from SQL.</summary>
    public int Server { get; } = server;
    public Client[] Expected { get; } = expected;
    /// <summary>Sent before the load, to check the setup.</summary>
    public bool WarmUp { get; } = warmUp;
    public long Started { get; } = Stopwatch.GetTimestamp();
    public long Ended { get; private set; }
    public Outcome Outcome { get; private set; }
    public string? Error { get; private set; }

    public void Done(string? error)
    {
        Ended = Stopwatch.GetTimestamp();
        Error = error;
        Outcome = error == null ? Outcome.Ok : Outcome.Failed;
    }

    public int Missing() => Expected.Count(c => !c.Has(Kind, Id));

    /// <summary>
    /// Connections that did not get it and are still open. A connection the
    /// server closed is no silent loss (its client was told), and is checked apart.
    /// </summary>
    public Client[] MissingOpen() => Expected.Where(c => c.Closed == null && !c.Has(Kind, Id)).ToArray();
}

sealed class Ledger
{
    private readonly object _lock = new();
    private readonly List<Send> _sends = new();
    private readonly Dictionary<string, long> _ids = new();

    /// <summary>Records a send about to start; the id is unique per kind.</summary>
    public bool WarmUp { get; set; } = true;

    public Send Start(string kind, int server, Func<long, Client[]> expected)
    {
        Send s;
        lock (_lock)
        {
            long id = _ids.GetValueOrDefault(kind);
            _ids[kind] = id + 1;
            s = new Send(kind, id, server, expected(id), WarmUp);
            _sends.Add(s);
        }
        return s;
    }

    public List<Send> All()
    {
        lock (_lock)
            return _sends.ToList();
    }

    /// <summary>Sends whose caller saw completion and that have not reached every connection they addressed.</summary>
    public int Undelivered() => All().Count(s => s.Outcome == Outcome.Ok && s.MissingOpen().Length > 0);
}
