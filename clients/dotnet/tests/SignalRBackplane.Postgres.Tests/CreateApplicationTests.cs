using Microsoft.AspNetCore.SignalR.Client;
using Npgsql;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>CreateApplication when several hub servers start at once.</summary>
public sealed class CreateApplicationTests
{
    [Fact]
    public async Task TwoServersStartingAtOnceBothStart()
    {
        var app = "t" + Guid.NewGuid().ToString("N")[..10];
        // the servers' sessions carry the application's name: the test can tell them from others'
        var connectionString = new NpgsqlConnectionStringBuilder(Pg.ConnectionString) { ApplicationName = app }.ConnectionString;

        // Hold back inserts into the application table: both servers find no
        // application, both call create_application, both wait here; once
        // released, one creates it and the other loses the race (42710).
        await using var holder = new NpgsqlConnection(Pg.ConnectionString);
        await holder.OpenAsync();
        await using (var cmd = new NpgsqlCommand("BEGIN; LOCK signalr_bp.application IN SHARE ROW EXCLUSIVE MODE", holder))
            await cmd.ExecuteNonQueryAsync();
        var starts = new[]
        {
            HubServer.StartAsync(app, "a", connectionString: connectionString),
            HubServer.StartAsync(app, "b", connectionString: connectionString),
        };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await Waiting(app) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the two servers never both waited in create_application");
            await Task.Delay(50);
        }
        await using (var cmd = new NpgsqlCommand("COMMIT", holder))
            await cmd.ExecuteNonQueryAsync();

        try
        {
            var servers = await Task.WhenAll(starts);
            Assert.True(await Pg.Scalar<bool>(
                $"SELECT owner = session_user::regrole FROM signalr_bp.application WHERE name = '{app}'"));
            await using var x = await Client.ConnectAsync(servers[0]);
            await using var y = await Client.ConnectAsync(servers[1]);
            await x.Connection.InvokeAsync("ToAll", "both started");
            await x.Expect("both started");
            await y.Expect("both started");
        }
        finally
        {
            foreach (var start in starts.Where(t => t.IsCompletedSuccessfully))
                await (await start).DisposeAsync();
            await Pg.Execute($"SELECT signalr_bp.drop_application('{app}')");
        }
    }

    // (its own session: the holder's transaction would keep one view of pg_stat_activity)
    private static Task<long> Waiting(string app) => Pg.Scalar<long>(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app + "'" +
        " AND wait_event_type = 'Lock' AND query LIKE '%create_application%'");
}
