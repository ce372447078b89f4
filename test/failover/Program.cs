// The failover test's one program (scripts/failover runs it):
//   Failover serve --urls http://127.0.0.1:P --server NAME     a hub server (SBP_PG: its connection string)
//   Failover run --urls U1,U2 ...                               the clients, the load, the failover, the verdict
// Exit status of "run": 0 when nothing acknowledged was lost or doubled.
return args.Length == 0 ? Usage() : args[0] switch
{
    "serve" => HubServer.Run(args),
    "run" => await Driver.Run(args),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Failover serve|run ... (see scripts/failover)");
    return 2;
}

/// <summary>Named command-line options: --name value.</summary>
static class Args
{
    public static string Get(string[] args, string name, string? fallback = null)
    {
        int i = Array.IndexOf(args, "--" + name);
        if (i >= 0 && i + 1 < args.Length)
            return args[i + 1];
        return fallback ?? throw new ArgumentException($"--{name} is required");
    }

    public static int Int(string[] args, string name, int fallback) => int.Parse(Get(args, name, fallback.ToString()));
}
