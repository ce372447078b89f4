using System.Buffers.Binary;
using Npgsql;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>signalr_bp.follow, as the stream consumer calls it, through Npgsql.</summary>
public sealed class FollowTests
{
    // Rows must reach the client while the statement goes on: otherwise a consumer would
    // see each commit only when its statement ends, PollWait later.
    [Fact]
    public async Task RowsArriveWhileTheStatementRuns()
    {
        var app = "f" + Guid.NewGuid().ToString("N")[..10];
        await Pg.Execute($"SELECT signalr_bp.create_application('{app}')");
        try
        {
            var stream = app + "/$signalr";
            long head = await Pg.Scalar<long>($"SELECT signalr_bp.head('{stream}')");
            var follower = new NpgsqlConnectionStringBuilder(Pg.ConnectionString) { ApplicationName = app }.ConnectionString;
            await using var conn = new NpgsqlConnection(follower);
            await conn.OpenAsync();
            // 10 minutes: the test ends long before, unless rows wait for the statement's end
            await using var cmd = new NpgsqlCommand("SELECT signalr_bp.follow($1, $2, 1048576, 600000)", conn);
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = stream });
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = head });
            cmd.CommandTimeout = 0;
            // (Npgsql's ExecuteReader returns with the first row)
            var opening = cmd.ExecuteReaderAsync();
            NpgsqlDataReader? reader = null;
            long next = head;
            for (int i = 1; i <= 3; i++)
            {
                await Pg.Execute($"SELECT signalr_bp.send_all('{app}', 'Hub', '\\x0{i}'::bytea)");
                if (reader == null)
                {
                    Assert.Same(opening, await Task.WhenAny(opening, Task.Delay(TimeSpan.FromSeconds(60))));
                    reader = await opening;
                }
                var read = reader.ReadAsync();
                Assert.Same(read, await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(60))));
                Assert.True(await read, $"row {i} came");
                var row = reader.GetFieldValue<byte[]>(0);
                Assert.True(row.Length > 8 + 12);
                long rowNext = BinaryPrimitives.ReadInt64BigEndian(row);
                Assert.Equal(next + 1, rowNext);
                Assert.Equal(next, BinaryPrimitives.ReadInt64BigEndian(row.AsSpan(8)));
                next = rowNext;
                // the statement is still running: this row did not wait for its end
                Assert.Equal(1L, await Pg.Scalar<long>(
                    $"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' AND state = 'active' AND query LIKE '%follow%'"));
            }
            await Pg.Execute($"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'");
            await Assert.ThrowsAsync<PostgresException>(async () => { while (await reader!.ReadAsync()) { } });
            await reader!.DisposeAsync();
        }
        finally
        {
            await Pg.Execute($"SELECT signalr_bp.drop_application('{app}')");
        }
    }
}
