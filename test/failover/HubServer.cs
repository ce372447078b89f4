// The hub server of the failover test: a plain ASP.NET Core SignalR server
// with AddPostgresBackplane() and the adapter's default options, as a user
// writes it. Every send kind is a hub method, so that the caller's completion
// is the send's completion.
using Microsoft.AspNetCore.SignalR;

static class HubServer
{
    public const string Application = "failover";

    public static int Run(string[] args)
    {
        string pg = Environment.GetEnvironmentVariable("SBP_PG")
            ?? throw new InvalidOperationException("set SBP_PG to the connection string");
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls(Args.Get(args, "urls"));
        // the adapter's Warning lines (outage begun, outage over) are part of the test's report
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton<IUserIdProvider, UserFromQuery>();
        // detailed errors: the test reports why a send failed
        builder.Services.AddSignalR(o => o.EnableDetailedErrors = true)
            .AddPostgresBackplane(pg, o =>
            {
                o.ApplicationName = Application;
                o.ServerName = Args.Get(args, "server");
            });
        builder.Services.AddHealthChecks().AddPostgresBackplane();
        var app = builder.Build();
        app.MapHub<FailoverHub>("/hub");
        app.MapHealthChecks("/health");
        app.Run();
        return 0;
    }
}

/// <summary>The user id is the query string's ?user= (a test, not authentication).</summary>
sealed class UserFromQuery : IUserIdProvider
{
    public string? GetUserId(HubConnectionContext connection) =>
        connection.GetHttpContext()?.Request.Query["user"].ToString() is { Length: > 0 } u ? u : null;
}

/// <summary>One method per send kind; each message is ("m", kind, id).</summary>
public sealed class FailoverHub : Hub
{
    public Task Send(string kind, long id, string[] targets, string[] excluded)
    {
        var clients = kind switch
        {
            "all" => Clients.All,
            "all-except" => Clients.AllExcept(excluded),
            "connection" => Clients.Client(targets[0]),
            "connections" => Clients.Clients(targets),
            "group" => Clients.Group(targets[0]),
            "groups" => Clients.Groups(targets),
            "group-except" => Clients.GroupExcept(targets[0], excluded),
            "user" => Clients.User(targets[0]),
            "users" => Clients.Users(targets),
            _ => throw new HubException($"unknown kind \"{kind}\""),
        };
        return clients.SendAsync("m", kind, id);
    }

    // a client result from a connection that may live on the other server
    public async Task<long> Ask(string connectionId, long id)
    {
        try
        {
            return await Clients.Client(connectionId).InvokeAsync<long>("ask", id, Context.ConnectionAborted);
        }
        catch (Exception e) when (e is not HubException)
        {
            // the caller sees why (only a HubException's message reaches it)
            throw new HubException($"{e.GetType().Name}: {e.Message}");
        }
    }

    public string WhoAmI() => Context.ConnectionId;

    public Task Join(string group) => Groups.AddToGroupAsync(Context.ConnectionId, group);

    // a group change for a connection that may live on the other server
    public Task AddToGroup(string connectionId, string group) => Groups.AddToGroupAsync(connectionId, group);
}
