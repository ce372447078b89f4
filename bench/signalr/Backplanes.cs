using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using SignalRBackplane.Postgres;

// Kept apart: the benchmark's only dependency on the adapter is here.
static class Backplanes
{
    // mode: "default" leaves SendCompletion as the adapter ships it; otherwise
    // a SendCompletion name (parsed, so that this builds against any adapter)
    public static void AddPostgres(ISignalRServerBuilder signalr, string connectionString, string application,
                                   string serverId, string mode) =>
        signalr.AddPostgresBackplane(connectionString, o =>
        {
            o.ApplicationName = application;
            o.ServerName = serverId;
            if (mode != "default")
                o.SendCompletion = Enum.Parse<SendCompletion>(mode, ignoreCase: true);
        });

    // the SendCompletion a user gets without setting it
    public static string DefaultMode() => new PostgresBackplaneOptions().SendCompletion.ToString();

    // every SendCompletion mode of the adapter, the default first
    public static IEnumerable<string> Modes() =>
        Enum.GetNames<SendCompletion>().OrderBy(n => n == DefaultMode() ? 0 : 1);
}
