using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>
/// Sends made in SQL carry JSON only (signalr_bp.json_invocation): the
/// receiving server gives MessagePack clients their own form. Every SQL send
/// kind, JSON and MessagePack clients on two servers.
/// </summary>
public sealed class SqlSendTests : IAsyncLifetime
{
    private readonly string _app = "q" + Guid.NewGuid().ToString("N")[..10];
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

    private string Message(string text) => $"signalr_bp.json_invocation('m', jsonb_build_array('{text}'::text))";

    [Fact]
    public async Task EverySqlSendKindReachesJsonAndMessagePackClients()
    {
        await using var jx = await Client.ConnectAsync(_a, "u1");
        await using var mx = await Client.ConnectAsync(_a, "u2", messagePack: true);
        await using var jy = await Client.ConnectAsync(_b, "u1");
        await using var my = await Client.ConnectAsync(_b, "u3", messagePack: true);
        var all = new[] { jx, mx, jy, my };
        foreach (var c in new[] { jx, mx, my })
            await c.Connection.InvokeAsync("Join", c.Id, "g");
        await jy.Connection.InvokeAsync("Join", jy.Id, "h");

        string q = $"'{_app}', 'TestHub'";
        await Pg.Execute($"SELECT signalr_bp.send_all({q}, {Message("all")})");
        await Pg.Execute($"SELECT signalr_bp.send_all({q}, {Message("all but jx")}, ARRAY['{jx.Id}'])");
        await Pg.Execute($"SELECT signalr_bp.send({q}, 'users {{u1,u3}}'::signalr_bp.audience, {Message("audience")})");
        await Pg.Execute($"SELECT signalr_bp.send_users({q}, ARRAY['u2'], {Message("users")})");
        await Pg.Execute($"SELECT signalr_bp.send_user({q}, 'u3', {Message("user")})");
        await Pg.Execute($"SELECT signalr_bp.send_connections({q}, ARRAY['{mx.Id}', '{jy.Id}'], {Message("connections")})");
        await Pg.Execute($"SELECT signalr_bp.send_connection({q}, '{my.Id}', {Message("connection")})");
        await Pg.Execute($"SELECT signalr_bp.send_groups({q}, ARRAY['g', 'h'], {Message("groups")})");
        await Pg.Execute($"SELECT signalr_bp.send_group({q}, 'g', {Message("group but mx")}, ARRAY['{mx.Id}'])");
        // what an application's trigger does
        string table = "orders_" + _app;
        await Pg.Execute($@"
            CREATE TABLE public.{table} (id serial PRIMARY KEY, status text NOT NULL);
            CREATE FUNCTION public.{table}_push() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM signalr_bp.send_group({q}, 'g',
                    signalr_bp.json_invocation('m', jsonb_build_array('order ' || NEW.id || ' ' || NEW.status)));
                RETURN NEW;
            END $$;
            CREATE TRIGGER push AFTER INSERT ON public.{table} FOR EACH ROW EXECUTE FUNCTION public.{table}_push();
            INSERT INTO public.{table} (status) VALUES ('shipped');");
        try
        {
            foreach (var c in all)
                await c.Expect("all");
            foreach (var c in new[] { mx, jy, my })
                await c.Expect("all but jx");
            foreach (var c in new[] { jx, jy, my })
                await c.Expect("audience");
            await mx.Expect("users");
            await my.Expect("user");
            await mx.Expect("connections");
            await jy.Expect("connections");
            await my.Expect("connection");
            foreach (var c in all)
                await c.Expect("groups");
            foreach (var c in new[] { jx, my })
                await c.Expect("group but mx");
            foreach (var c in new[] { jx, mx, my })
                await c.Expect("order 1 shipped");

            await jx.Never("all but jx");
            await mx.Never("audience");
            await mx.Never("group but mx");
            await jy.Never("order 1 shipped");
            // each client got "groups" once, although jx, mx and my are in g and jy in h
            foreach (var c in all)
                await c.Never("groups");
        }
        finally
        {
            await Pg.Execute($"DROP TABLE public.{table}; DROP FUNCTION public.{table}_push()");
        }
    }

    [Fact]
    public async Task ManySendsOfOneTransactionArriveInOrderInEveryProtocol()
    {
        // one commit, one read: each server writes a connection's share as one buffer
        await using var j = await Client.ConnectAsync(_a);
        await using var m = await Client.ConnectAsync(_a, messagePack: true);
        await using var jb = await Client.ConnectAsync(_b);
        string q = $"'{_app}', 'TestHub'";
        await Pg.Execute($"DO $$ BEGIN FOR i IN 0..29 LOOP PERFORM signalr_bp.send_all({q}, " +
                         "signalr_bp.json_invocation('m', jsonb_build_array('b' || i))); END LOOP; END $$");
        var expected = Enumerable.Range(0, 30).Select(i => $"b{i}").ToArray();
        foreach (var c in new[] { j, m, jb })
            Assert.Equal(expected, await c.ReceivedAtLeast(30));
        await j.Never("b30");
        Assert.Equal(expected, await j.ReceivedAtLeast(30));
    }
}
