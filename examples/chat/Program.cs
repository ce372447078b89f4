// The chat sample: run several replicas against one PostgreSQL with signalr_bp.
//   SBP_PG=<Npgsql connection string> SBP_SERVER=<replica name> dotnet run -- --urls http://127.0.0.1:5001
// (or ConnectionStrings__signalr; SBP_SERVER defaults to the host name, a pod's name on Kubernetes)
using Microsoft.AspNetCore.SignalR;
using Npgsql;
using SignalRBackplane.Postgres;

var builder = WebApplication.CreateBuilder(args);
string pg = Environment.GetEnvironmentVariable("SBP_PG") ?? builder.Configuration.GetConnectionString("signalr")
    ?? throw new InvalidOperationException("set SBP_PG to the PostgreSQL connection string");
string server = Environment.GetEnvironmentVariable("SBP_SERVER") ?? Environment.MachineName;
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSingleton<IUserIdProvider, UserFromQuery>();
// two invocations per client at once: a client may answer a client-result call while its own call waits
builder.Services.AddSignalR(o => o.MaximumParallelInvocationsPerClient = 2)
    .AddMessagePackProtocol()   // JSON and MessagePack clients; messages sent from SQL reach both
    .AddPostgresBackplane(pg, o =>
    {
        o.ApplicationName = "chat";
        o.ServerName = server;
        // the local demo creates its application; in production the DBA does (SBP_CREATE_APPLICATION=false)
        o.CreateApplication = Environment.GetEnvironmentVariable("SBP_CREATE_APPLICATION") != "false";
        o.ServerTtl = TimeSpan.FromSeconds(int.Parse(Environment.GetEnvironmentVariable("SBP_TTL") ?? "10"));
        o.HeartbeatInterval = TimeSpan.FromSeconds(1);
    });
builder.Services.AddHealthChecks().AddPostgresBackplane();

var app = builder.Build();
await Notifications.InstallAsync(pg);
app.UseDefaultFiles();
app.UseStaticFiles();
app.MapHub<ChatHub>("/chat");
app.MapHealthChecks("/health");
app.MapGet("/server", () => server);
app.Run();

/// <summary>Users are named by the query string (?user=alice): a sample, not authentication.</summary>
sealed class UserFromQuery : IUserIdProvider
{
    public string? GetUserId(HubConnectionContext connection) =>
        connection.GetHttpContext()?.Request.Query["user"].ToString() is { Length: > 0 } u ? u : null;
}

public sealed class ChatHub(IHubPresence<ChatHub> presence) : Hub
{
    static string Server => Environment.GetEnvironmentVariable("SBP_SERVER") ?? Environment.MachineName;

    public object WhoAmI() => new { connectionId = Context.ConnectionId, server = Server, user = Context.UserIdentifier };

    public Task Send(string text) => Clients.All.SendAsync("message", Context.UserIdentifier, text);
    public Task SendOthers(string text) => Clients.Others.SendAsync("message", Context.UserIdentifier, text);
    public Task SendAllExcept(string[] excluded, string text) => Clients.AllExcept(excluded).SendAsync("message", Context.UserIdentifier, text);
    public Task SendToConnection(string id, string text) => Clients.Client(id).SendAsync("message", Context.UserIdentifier, text);
    public Task SendToConnections(string[] ids, string text) => Clients.Clients(ids).SendAsync("message", Context.UserIdentifier, text);
    public Task SendToGroup(string group, string text) => Clients.Group(group).SendAsync("message", Context.UserIdentifier, text);
    public Task SendToGroups(string[] groups, string text) => Clients.Groups(groups).SendAsync("message", Context.UserIdentifier, text);
    public Task SendToGroupExcept(string group, string[] excluded, string text) => Clients.GroupExcept(group, excluded).SendAsync("message", Context.UserIdentifier, text);
    public Task SendToUser(string user, string text) => Clients.User(user).SendAsync("message", Context.UserIdentifier, text);
    public Task SendToUsers(string[] users, string text) => Clients.Users(users).SendAsync("message", Context.UserIdentifier, text);

    public Task Join(string group) => Groups.AddToGroupAsync(Context.ConnectionId, group);
    public Task Leave(string group) => Groups.RemoveFromGroupAsync(Context.ConnectionId, group);
    // a group change made here for a connection that may live on another replica
    public Task AddToGroup(string connectionId, string group) => Groups.AddToGroupAsync(connectionId, group);

    // client results: ask a connection anywhere, get its answer
    public async Task<string> Ask(string connectionId, string question)
    {
        try
        {
            return await Clients.Client(connectionId).InvokeAsync<string>("question", question, Context.ConnectionAborted);
        }
        catch (IOException e)
        {
            // HubException's message reaches the caller: "Connection 'x' does not exist." and the like
            throw new HubException(e.Message);
        }
    }

    public async Task<object> Presence(string? group = null) => new
    {
        connections = await presence.ConnectionCountAsync(),
        users = await presence.OnlineUsersAsync(),
        group = group == null ? null : await presence.GroupConnectionsAsync(group),
    };
}

/// <summary>A table whose inserts reach the "news" group through a trigger: no application code involved.</summary>
static class Notifications
{
    public static async Task InstallAsync(string pg)
    {
        await using var conn = new NpgsqlConnection(pg);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            CREATE TABLE IF NOT EXISTS public.notifications (id bigserial PRIMARY KEY, text text NOT NULL);
            CREATE OR REPLACE FUNCTION public.notifications_push() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM signalr_bp.send_group('chat', 'ChatHub', 'news',
                    signalr_bp.json_invocation('notify', jsonb_build_array(NEW.text)));
                RETURN NEW;
            END $$;
            CREATE OR REPLACE TRIGGER notifications_push AFTER INSERT ON public.notifications
                FOR EACH ROW EXECUTE FUNCTION public.notifications_push();
            """, conn);
        try
        {
            await cmd.ExecuteNonQueryAsync();
        }
        catch (PostgresException ex) when (ex.SqlState is "23505" or "42P07")
        {
            // another replica installed it at the same moment
        }
    }
}
