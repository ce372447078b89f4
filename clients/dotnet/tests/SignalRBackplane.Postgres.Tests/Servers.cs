global using Xunit;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using SignalRBackplane.Postgres;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>The hub of the tests: every HubLifetimeManager operation is one method.</summary>
public sealed class TestHub : Hub
{
    public string WhoAmI() => Context.ConnectionId;
    public Task ToAll(string m) => Clients.All.SendAsync("m", m);
    public Task ToAllExcept(string m, string[] except) => Clients.AllExcept(except).SendAsync("m", m);
    public Task ToOthers(string m) => Clients.Others.SendAsync("m", m);
    public Task ToClient(string id, string m) => Clients.Client(id).SendAsync("m", m);
    public Task ToClients(string[] ids, string m) => Clients.Clients(ids).SendAsync("m", m);
    public Task ToGroup(string g, string m) => Clients.Group(g).SendAsync("m", m);
    public Task ToGroups(string[] gs, string m) => Clients.Groups(gs).SendAsync("m", m);
    public Task ToGroupExcept(string g, string[] except, string m) => Clients.GroupExcept(g, except).SendAsync("m", m);
    public Task ToUser(string u, string m) => Clients.User(u).SendAsync("m", m);
    public Task ToUsers(string[] us, string m) => Clients.Users(us).SendAsync("m", m);
    public Task Join(string id, string g) => Groups.AddToGroupAsync(id, g);
    public Task Leave(string id, string g) => Groups.RemoveFromGroupAsync(id, g);
    public Task<string> Ask(string id, string question) => Clients.Client(id).InvokeAsync<string>("answer", question, CancellationToken.None);
    public Task<long> Count(IHubPresence<TestHub> presence) => presence.ConnectionCountAsync();
}

public sealed class UserFromQuery : IUserIdProvider
{
    public string? GetUserId(HubConnectionContext connection) =>
        connection.GetHttpContext()?.Request.Query["user"].ToString() is { Length: > 0 } u ? u : null;
}

/// <summary>A real hub server: Kestrel on a free port with the PostgreSQL backplane.</summary>
public sealed class HubServer : IAsyncDisposable
{
    public WebApplication App { get; }
    public string Url { get; }
    public string Name { get; }

    private HubServer(WebApplication app, string url, string name)
    {
        App = app;
        Url = url;
        Name = name;
    }

    public static async Task<HubServer> StartAsync(string application, string name, TimeSpan? ttl = null,
                                                   string? connectionString = null,
                                                   Action<PostgresBackplaneOptions>? configure = null)
    {
        int port = FreePort();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddSingleton<IUserIdProvider, UserFromQuery>();
        builder.Services.AddSignalR(o => o.MaximumParallelInvocationsPerClient = 4).AddMessagePackProtocol().AddPostgresBackplane(connectionString ?? Pg.ConnectionString, o =>
        {
            o.ApplicationName = application;
            o.ServerName = name;
            o.CreateApplication = true;
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
            o.ServerTtl = ttl ?? TimeSpan.FromSeconds(30);
            o.ClientResultTimeout = TimeSpan.FromSeconds(10);
            configure?.Invoke(o);
        });
        var app = builder.Build();
        app.MapHub<TestHub>("/hub");
        await app.StartAsync();
        return new HubServer(app, $"http://127.0.0.1:{port}/hub", name);
    }

    public T Service<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint) l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}

/// <summary>A real SignalR client that records what it receives.</summary>
public sealed class Client : IAsyncDisposable
{
    public HubConnection Connection { get; }
    public string Id { get; private set; } = "";
    private readonly List<string> _received = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private Client(HubConnection connection)
    {
        Connection = connection;
        connection.On<string>("m", m =>
        {
            lock (_received)
                _received.Add(m);
            _arrived.Release();
        });
        connection.On<string, string>("answer", (Func<string, string>) (q => $"answer to {q}"));
    }

    public static async Task<Client> ConnectAsync(HubServer server, string? user = null, bool messagePack = false)
    {
        var builder = new HubConnectionBuilder().WithUrl(server.Url + (user != null ? $"?user={user}" : ""));
        if (messagePack)
            builder.AddMessagePackProtocol();
        var client = new Client(builder.Build());
        await client.Connection.StartAsync();
        client.Id = await client.Connection.InvokeAsync<string>("WhoAmI");
        return client;
    }

    /// <summary>Waits until the message arrives (or fails after 10 s).</summary>
    public async Task Expect(string message)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            lock (_received)
                if (_received.Remove(message))
                    return;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
                lock (_received)
                    Assert.Fail($"client {Id} did not receive \"{message}\"; it has [{string.Join(", ", _received)}]");
        }
    }

    /// <summary>Waits until <paramref name="count"/> messages arrived (or fails after 10 s); all received, in order.</summary>
    public async Task<string[]> ReceivedAtLeast(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            lock (_received)
                if (_received.Count >= count)
                    return _received.ToArray();
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
                lock (_received)
                    Assert.Fail($"client {Id} received {_received.Count} of {count} messages: [{string.Join(", ", _received)}]");
        }
    }

    /// <summary>After the other expectations of a test were met: this message never came.</summary>
    public async Task Never(string message)
    {
        await Task.Delay(300);
        lock (_received)
            Assert.DoesNotContain(message, _received);
    }

    public async ValueTask DisposeAsync() => await Connection.DisposeAsync();
}

public static class Pg
{
    public static string ConnectionString =>
        Environment.GetEnvironmentVariable("SBP_TEST_PG")
        ?? throw new InvalidOperationException("SBP_TEST_PG is not set: run clients/dotnet/test.sh");

    public static async Task Execute(string sql)
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    public static async Task<T> Scalar<T>(string sql)
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T) (await cmd.ExecuteScalarAsync())!;
    }
}
