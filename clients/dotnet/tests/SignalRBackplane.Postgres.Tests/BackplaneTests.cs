using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.AspNetCore.SignalR.Client;
using Npgsql;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>
/// Two real hub servers (Kestrel, PostgreSQL backplane) and real SignalR
/// clients: every HubLifetimeManager operation across servers.
/// </summary>
public sealed class BackplaneTests : IAsyncLifetime
{
    private readonly string _app = "t" + Guid.NewGuid().ToString("N")[..10];
    private HubServer _a = null!, _b = null!;

    public async Task InitializeAsync()
    {
        _a = await HubServer.StartAsync(_app, "a");
        _b = await HubServer.StartAsync(_app, "b");
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
    }

    [Fact]
    public async Task SendAllReachesClientsOfEveryServer()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b);
        await x.Connection.InvokeAsync("ToAll", "hello");
        await x.Expect("hello");
        await y.Expect("hello");
    }

    [Fact]
    public async Task AllExceptAndOthersSkipTheExcluded()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b);
        await using var z = await Client.ConnectAsync(_b);
        await x.Connection.InvokeAsync("ToAllExcept", "not z", new[] { z.Id });
        await x.Connection.InvokeAsync("ToOthers", "not x");
        await x.Expect("not z");
        await y.Expect("not z");
        await y.Expect("not x");
        await z.Expect("not x");
        await z.Never("not z");
        await x.Never("not x");
    }

    [Fact]
    public async Task ClientAndClientsOnAnotherServer()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b);
        await using var z = await Client.ConnectAsync(_b);
        await x.Connection.InvokeAsync("ToClient", y.Id, "to y");
        await x.Connection.InvokeAsync("ToClients", new[] { x.Id, z.Id }, "to x and z");
        await y.Expect("to y");
        await x.Expect("to x and z");
        await z.Expect("to x and z");
        await z.Never("to y");
    }

    [Fact]
    public async Task GroupChangedOnAnotherServerTakesEffectAtOnce()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b);
        await using var z = await Client.ConnectAsync(_b);
        // server a adds b's connections to a group: no acknowledgement round trip
        await x.Connection.InvokeAsync("Join", y.Id, "room");
        await x.Connection.InvokeAsync("Join", z.Id, "room");
        await x.Connection.InvokeAsync("Join", x.Id, "other");
        await x.Connection.InvokeAsync("ToGroup", "room", "to room");
        await x.Connection.InvokeAsync("ToGroupExcept", "room", new[] { z.Id }, "room but z");
        await x.Connection.InvokeAsync("ToGroups", new[] { "room", "other" }, "both groups");
        await y.Expect("to room");
        await z.Expect("to room");
        await y.Expect("room but z");
        await x.Expect("both groups");
        await y.Expect("both groups");
        await z.Expect("both groups");
        await x.Never("to room");
        await z.Never("room but z");

        await y.Connection.InvokeAsync("Leave", y.Id, "room");
        await x.Connection.InvokeAsync("ToGroup", "room", "after leave");
        await z.Expect("after leave");
        await y.Never("after leave");
    }

    [Fact]
    public async Task UserAndUsersAcrossServers()
    {
        await using var alice1 = await Client.ConnectAsync(_a, "alice");
        await using var alice2 = await Client.ConnectAsync(_b, "alice");
        await using var bob = await Client.ConnectAsync(_b, "bob");
        await using var carol = await Client.ConnectAsync(_a, "carol");
        await carol.Connection.InvokeAsync("ToUser", "alice", "to alice");
        await carol.Connection.InvokeAsync("ToUsers", new[] { "bob", "carol" }, "to bob and carol");
        await alice1.Expect("to alice");
        await alice2.Expect("to alice");
        await bob.Expect("to bob and carol");
        await carol.Expect("to bob and carol");
        await bob.Never("to alice");
    }

    [Fact]
    public async Task MessagePackAndJsonClientsBothReceive()
    {
        await using var json = await Client.ConnectAsync(_a);
        await using var msgpack = await Client.ConnectAsync(_b, messagePack: true);
        await json.Connection.InvokeAsync("ToAll", "both protocols");
        await json.Expect("both protocols");
        await msgpack.Expect("both protocols");
    }

    [Fact]
    public async Task ClientResultFromAConnectionOfAnotherServer()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b);
        string answer = await x.Connection.InvokeAsync<string>("Ask", y.Id, "ping");
        Assert.Equal("answer to ping", answer);
        // and a local one
        Assert.Equal("answer to local", await x.Connection.InvokeAsync<string>("Ask", x.Id, "local"));
    }

    [Fact]
    public async Task ClientResultFromAnUnknownConnectionFailsAtOnce()
    {
        await using var x = await Client.ConnectAsync(_a);
        var manager = _a.Service<HubLifetimeManager<TestHub>>();
        var ex = await Assert.ThrowsAsync<IOException>(() =>
            manager.InvokeConnectionAsync<string>("no-such-connection", "answer", new object?[] { "q" }, CancellationToken.None));
        Assert.Equal("Connection 'no-such-connection' does not exist.", ex.Message);
    }

    [Fact]
    public async Task ClientResultFailsWhenTheConnectionDisconnects()
    {
        await using var x = await Client.ConnectAsync(_a);
        var y = await Client.ConnectAsync(_b);
        // y never answers "slow": it has no handler, so the invocation stays pending
        var manager = _a.Service<HubLifetimeManager<TestHub>>();
        var pending = manager.InvokeConnectionAsync<string>(y.Id, "slow", new object?[] { "q" }, CancellationToken.None);
        await Task.Delay(300);
        await y.DisposeAsync();
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => pending.WaitAsync(TimeSpan.FromSeconds(8)));
        Assert.IsNotType<TimeoutException>(ex);
    }

    [Fact]
    public async Task ExceptionWhenIncorrectClientCompletesClientResult()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_a);
        x.Connection.On("slow", () => new TaskCompletionSource<string>().Task);
        var manager = _a.Service<HubLifetimeManager<TestHub>>();
        var pending = manager.InvokeConnectionAsync<string>(x.Id, "slow", Array.Empty<object?>(), CancellationToken.None);
        string invocationId = await WaitForInvocation(manager);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            manager.SetConnectionResultAsync(y.Id, CompletionMessage.WithResult(invocationId, "from y")));
        Assert.Equal($"Connection ID '{y.Id}' is not valid for invocation ID '{invocationId}'.", ex.Message);
        // the right connection can still complete it
        await manager.SetConnectionResultAsync(x.Id, CompletionMessage.WithResult(invocationId, "from x"));
        Assert.Equal("from x", await pending.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task CanCancelClientResult()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b);
        y.Connection.On("slow", () => new TaskCompletionSource<string>().Task);
        var manager = _a.Service<HubLifetimeManager<TestHub>>();
        using var cts = new CancellationTokenSource();
        var pending = manager.InvokeConnectionAsync<string>(y.Id, "slow", Array.Empty<object?>(), cts.Token);
        await Task.Delay(300);
        cts.Cancel();
        await Assert.ThrowsAsync<HubException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5)));
        // the asked client keeps its connection (a CancelInvocation message would close a .NET client):
        // a send committed after the cancellation reaches it
        await x.Connection.InvokeAsync("ToClient", y.Id, "still here");
        await y.Expect("still here");
    }

    // the id of the one client invocation the manager has pending
    private static async Task<string> WaitForInvocation(HubLifetimeManager<TestHub> manager)
    {
        var field = manager.GetType().GetField("_invocations",
            System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            var keys = ((System.Collections.IDictionary) field.GetValue(manager)!).Keys.Cast<string>().ToList();
            if (keys.Count == 1)
                return keys[0];
            await Task.Delay(20);
        }
        throw new TimeoutException("no pending invocation");
    }

    [Fact]
    public async Task PresenceCountsConnectionsOfEveryServer()
    {
        await using var x = await Client.ConnectAsync(_a, "alice");
        await using var y = await Client.ConnectAsync(_b, "bob");
        await using var z = await Client.ConnectAsync(_b, "bob");
        await x.Connection.InvokeAsync("Join", z.Id, "room");
        var presence = _a.Service<IHubPresence<TestHub>>();
        Assert.Equal(3, await presence.ConnectionCountAsync());
        Assert.Equal(3, await x.Connection.InvokeAsync<long>("Count"));
        Assert.Equal(new[] { z.Id }, await presence.GroupConnectionsAsync("room"));
        Assert.Equal(2, (await presence.UserConnectionsAsync("bob")).Count);
        Assert.Equal(new[] { "alice", "bob" }, (await presence.OnlineUsersAsync()).OrderBy(u => u));
        Assert.Equal(new[] { "room" }, await presence.ConnectionGroupsAsync(z.Id));
        await z.DisposeAsync();
        await WaitUntil(async () => await presence.ConnectionCountAsync() == 2);
    }

    [Fact]
    public async Task SendFromSqlReachesGroupMembers()
    {
        await using var x = await Client.ConnectAsync(_b);
        await x.Connection.InvokeAsync("Join", x.Id, "orders");
        // what a trigger does: JSON hub protocol built in SQL
        await Pg.Execute($"SELECT signalr_bp.send_group('{_app}', 'TestHub', 'orders', " +
                             "signalr_bp.json_invocation('m', '[\"from sql\"]'))");
        await x.Expect("from sql");
    }

    [Fact]
    public async Task NothingIsLostWhenTheConsumerConnectionIsKilled()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b);
        // kill b's stream consumer session, then send while it reconnects
        Assert.True(await Pg.Scalar<bool>("SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity " +
                                          "WHERE application_name = 'signalr_bp consumer b'"));
        for (int i = 0; i < 20; i++)
            await x.Connection.InvokeAsync("ToClient", y.Id, $"n{i}");
        for (int i = 0; i < 20; i++)
            await y.Expect($"n{i}");
    }

    [Fact]
    public async Task ALostRegistryIsRebuiltWithGroupsAddedByOtherServers()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b, "yuri");
        await x.Connection.InvokeAsync("Join", y.Id, "joined-by-a");   // a adds b's connection
        await y.Connection.InvokeAsync("Join", y.Id, "joined-by-b");
        await x.Connection.InvokeAsync("Join", y.Id, "left-by-a");
        await x.Connection.InvokeAsync("Leave", y.Id, "left-by-a");
        // b's stream carries the change notices before this message
        await x.Connection.InvokeAsync("ToClient", y.Id, "marker");
        await y.Expect("marker");

        // what a crash or failover does to the unlogged registry, for this application only
        await Pg.Execute($@"DO $$ DECLARE v integer := (SELECT id FROM signalr_bp.application WHERE name = '{_app}');
            BEGIN
                DELETE FROM signalr_bp.group_member WHERE app_id = v;
                DELETE FROM signalr_bp.connection WHERE app_id = v;
                DELETE FROM signalr_bp.connection_tally WHERE app_id = v;
                DELETE FROM signalr_bp.server WHERE app_id = v;
                DELETE FROM signalr_bp.registry_alive WHERE app_id = v;
            END $$");
        Assert.Equal(0L, await Pg.Scalar<long>($"SELECT signalr_bp.connection_count('{_app}')"));

        // heartbeats find the registry lost; both servers register everything again
        await WaitUntil(async () => await Pg.Scalar<long>($"SELECT signalr_bp.connection_count('{_app}')") == 2
            && await Pg.Scalar<long>($"SELECT count(*) FROM signalr_bp.connection_groups('{_app}', '{y.Id}')") == 2);
        await x.Connection.InvokeAsync("ToGroup", "joined-by-a", "to a's group");
        await x.Connection.InvokeAsync("ToGroup", "joined-by-b", "to b's group");
        await x.Connection.InvokeAsync("ToGroup", "left-by-a", "to the group it left");
        await x.Connection.InvokeAsync("ToUser", "yuri", "to the user");
        await y.Expect("to a's group");
        await y.Expect("to b's group");
        await y.Expect("to the user");
        await y.Never("to the group it left");
    }

    [Fact]
    public async Task AGroupChangeTheRegistryCouldNotRouteIsRegisteredByTheHolder()
    {
        await using var x = await Client.ConnectAsync(_a);
        await using var y = await Client.ConnectAsync(_b, "yves");
        // the registry forgets y (as while it is rebuilt after a crash): its holder b still has it
        await Pg.Execute($@"DO $$ DECLARE v integer := (SELECT id FROM signalr_bp.application WHERE name = '{_app}');
            BEGIN
                DELETE FROM signalr_bp.connection WHERE app_id = v AND connection_id = '{y.Id}';
                UPDATE signalr_bp.connection_tally SET n = n - 1
                 WHERE ctid = (SELECT ctid FROM signalr_bp.connection_tally
                                WHERE app_id = v AND server = 'b' AND n > 0 LIMIT 1);
            END $$");
        // SQL adds y to a group: the envelope goes out flagged UNREGISTERED
        await Pg.Execute($"SELECT signalr_bp.add_to_group('{_app}', 'TestHub', '{y.Id}', 'late')");
        // b applied it in memory: group sends reach y at once
        await x.Connection.InvokeAsync("ToGroup", "late", "to the late group");
        await y.Expect("to the late group");
        // and b registered the connection and the membership itself
        await WaitUntil(async () =>
            await Pg.Scalar<long>($"SELECT count(*) FROM signalr_bp.group_connections('{_app}', 'TestHub', 'late') c " +
                                  $"WHERE c = '{y.Id}'") == 1);
        Assert.Equal(2L, await Pg.Scalar<long>($"SELECT signalr_bp.connection_count('{_app}', 'TestHub')"));
    }

    [Fact]
    public async Task ASendTheExtensionRefusesFailsAloneAndTheRestOfItsBatchGoesThrough()
    {
        await using var y = await Client.ConnectAsync(_b);
        await y.Connection.InvokeAsync("Join", y.Id, "g");
        var hub = _a.Service<IHubContext<TestHub>>();
        // sent at once, they share transactions; one names a group with a control character
        var sends = Enumerable.Range(0, 40)
            .Select(i => hub.Clients.Group(i == 20 ? "bad\u0001group" : "g").SendAsync("m", $"batch {i}"))
            .ToArray();
        var refused = await Assert.ThrowsAsync<PostgresException>(() => sends[20]);
        Assert.Contains("control character", refused.MessageText);
        for (int i = 0; i < 40; i++)
            if (i != 20)
            {
                await sends[i];
                await y.Expect($"batch {i}");
            }
        // and nothing is left to send again: the refused one is reported, not kept
        var backplane = _a.Service<PostgresBackplane>();
        await WaitUntil(() => Task.FromResult(backplane.UnconfirmedSends == 0));
    }

    [Fact]
    public async Task GracefulShutdownDeregisters()
    {
        await using var c = await HubServer.StartAsync(_app, "c");
        await using (var y = await Client.ConnectAsync(c))
        {
            Assert.Equal(1L, await Pg.Scalar<long>($"SELECT count(*) FROM signalr_bp.servers('{_app}') WHERE server = 'c'"));
        }
        await c.App.StopAsync();
        Assert.Equal(0L, await Pg.Scalar<long>($"SELECT count(*) FROM signalr_bp.servers('{_app}') WHERE server = 'c'"));
    }

    [Fact]
    public async Task ADeadServerLeavesPresenceWithinItsTtl()
    {
        string app = "d" + Guid.NewGuid().ToString("N")[..10];
        await using var live = await HubServer.StartAsync(app, "live", TimeSpan.FromSeconds(2));
        var dead = await HubServer.StartAsync(app, "dead", TimeSpan.FromSeconds(2));
        await using var y = await Client.ConnectAsync(dead);
        var presence = live.Service<IHubPresence<TestHub>>();
        Assert.Equal(1, await presence.ConnectionCountAsync());
        // stop its heartbeats without deregistering: as if the process died
        await dead.Service<PostgresBackplane>().AbandonAsync();
        await WaitUntil(async () =>
        {
            await Pg.Scalar<int>("SELECT signalr_bp.reap()");
            return await presence.ConnectionCountAsync() == 0;
        }, TimeSpan.FromSeconds(10));
        await dead.App.StopAsync();
    }

    private static async Task WaitUntil(Func<Task<bool>> condition, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(10));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail("condition not met in time");
            await Task.Delay(100);
        }
    }
}
