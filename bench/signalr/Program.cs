// The SignalR-level benchmark: hub servers in separate processes with a
// backplane, WebSocket client connections spread over them, one client
// invoking a hub method that sends (Clients.All or Clients.Group), a rate
// sweep, latency at every addressed connection and lost messages.
//
//   SignalRBench serve --port P --backplane redis|postgres --target T --server S
//                      [--application A] [--mode default|<SendCompletion>]
//   SignalRBench modes     the adapter's SendCompletion modes, its default first
//   SignalRBench run ...   see Sweep.cs
using Microsoft.AspNetCore.SignalR;

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: SignalRBench serve|modes|run ...");
    return 2;
}
return args[0] switch
{
    "serve" => Serve(args),
    "modes" => Modes(),
    "run" => await Run(args),
    _ => 2,
};

// a failed run says why on one line, without a crash dump
static async Task<int> Run(string[] args)
{
    try
    {
        return await Sweep.Run(args);
    }
    catch (Exception e)
    {
        Console.Error.WriteLine("run failed: " + e.Message);
        return 1;
    }
}

static int Modes()
{
    Console.WriteLine(string.Join(' ', Backplanes.Modes()));
    return 0;
}

static int Serve(string[] args)
{
    var builder = WebApplication.CreateBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.WebHost.UseUrls("http://127.0.0.1:" + Args.Get(args, "port", "5000"));
    // SignalR's default, stated: one invocation per connection at a time
    var signalr = builder.Services.AddSignalR(o => o.MaximumParallelInvocationsPerClient = 1);
    string target = Args.Get(args, "target", "");
    switch (Args.Get(args, "backplane", "redis"))
    {
        case "redis":
            signalr.AddStackExchangeRedis(target, o => o.Configuration.ChannelPrefix =
                StackExchange.Redis.RedisChannel.Literal(Args.Get(args, "application", "bench")));
            break;
        case "postgres":
            Backplanes.AddPostgres(signalr, target, Args.Get(args, "application", "bench"),
                                   Args.Get(args, "server", Environment.MachineName), Args.Get(args, "mode", "default"));
            break;
        default:
            Console.Error.WriteLine("unknown backplane");
            return 2;
    }
    var app = builder.Build();
    app.MapHub<BenchHub>("/bench");
    app.MapGet("/", () => "ok");
    app.Run();
    return 0;
}

/// <summary>The hub a user writes: methods that send through the backplane.</summary>
public sealed class BenchHub : Hub
{
    public Task Broadcast(long seq, long due, byte[] payload) =>
        Clients.All.SendAsync("m", seq, due, payload);

    public Task SendGroup(string group, long seq, long due, byte[] payload) =>
        Clients.Group(group).SendAsync("m", seq, due, payload);

    public Task Join(string group) => Groups.AddToGroupAsync(Context.ConnectionId, group);
}

static class Args
{
    public static string Get(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, "--" + name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    public static int[] Ints(string[] args, string name, string fallback) =>
        Get(args, name, fallback).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
}
