using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;

// Kept apart: the benchmark's only dependency on the adapter is here.
static class Backplanes
{
    public static void AddPostgres(ISignalRServerBuilder signalr, string connectionString, string serverId,
                                   bool queued) =>
        signalr.AddPostgresBackplane(connectionString, o =>
        {
            o.ApplicationName = "bench";
            o.ServerName = serverId;
            o.CreateApplication = true;
            o.SendCompletion = queued ? SignalRBackplane.Postgres.SendCompletion.Queued
                                      : SignalRBackplane.Postgres.SendCompletion.Committed;
        });
}
