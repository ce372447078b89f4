using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>
/// What Microsoft's specification tests need, written for this project: a
/// client at the far end of an in-memory transport (its HubConnectionContext
/// is what a lifetime manager sees), and lifetime managers that are each a
/// separate hub server on the PostgreSQL backplane.
/// </summary>
public sealed class TestClient : IDisposable
{
    private sealed record Duplex(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private readonly Pipe _toClient = new();
    private readonly Pipe _toServer = new();
    private readonly JsonHubProtocol _protocol = new();

    private readonly CountingWriter _output;

    public HubConnectionContext Context { get; }

    /// <summary>Flushes of the server's writes to this client: one per write.</summary>
    public int Flushes => _output.Flushes;

    // statefulReconnect: the connection carries IStatefulReconnectFeature, as one that negotiated it does
    public TestClient(string? userIdentifier = null, bool failWrites = false, bool statefulReconnect = false)
    {
        _output = new CountingWriter(_toClient.Writer);
        var connection = new DefaultConnectionContext(Guid.NewGuid().ToString("N"),
                                                      new Duplex(_toServer.Reader, _output),
                                                      new Duplex(_toClient.Reader, _toServer.Writer));
#pragma warning disable CA2252 // a preview interface
        if (statefulReconnect)
            connection.Features.Set<Microsoft.AspNetCore.Connections.Abstractions.IStatefulReconnectFeature>(new NoReconnect());
#pragma warning restore CA2252
        var options = new HubConnectionContextOptions
        {
            KeepAliveInterval = TimeSpan.FromMinutes(5),
            ClientTimeoutInterval = TimeSpan.FromMinutes(5),
        };
        Context = failWrites ? new FailingConnectionContext(connection, options) : new HubConnectionContext(connection, options, NullLoggerFactory.Instance);
        // set by the handshake in a real server
        typeof(HubConnectionContext).GetProperty(nameof(HubConnectionContext.Protocol))!
            .GetSetMethod(nonPublic: true)!.Invoke(Context, new object[] { _protocol });
        Context.UserIdentifier = userIdentifier;
    }

    public string ConnectionId => Context.ConnectionId;

    /// <summary>The next message the server wrote to this client (fails after 10 s).</summary>
    public async Task<HubMessage> ReadAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var result = await _toClient.Reader.ReadAsync(cts.Token);
            var buffer = result.Buffer;
            if (_protocol.TryParseMessage(ref buffer, Binder.Instance, out var message))
            {
                _toClient.Reader.AdvanceTo(buffer.Start);
                return message!;
            }
            _toClient.Reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>
    /// A message if one arrives within a short while, else null.  Delivery
    /// through the backplane is asynchronous: "nothing now" is not "nothing".
    /// </summary>
    public async Task<HubMessage?> TryReadAsync()
    {
        try
        {
            return await ReadAsync(TimeSpan.FromMilliseconds(500));
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        Context.Abort();
        _output.Complete();
        _toServer.Writer.Complete();
    }

    private sealed class CountingWriter(PipeWriter inner) : PipeWriter
    {
        private int _flushes;
        public int Flushes => Volatile.Read(ref _flushes);
        public override void Advance(int bytes) => inner.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _flushes);
            return inner.FlushAsync(cancellationToken);
        }
    }

#pragma warning disable CA2252 // a preview interface
    private sealed class NoReconnect : Microsoft.AspNetCore.Connections.Abstractions.IStatefulReconnectFeature
    {
        public void OnReconnected(Func<PipeWriter, Task> notifyOnReconnect) { }
        public void DisableReconnect() { }
    }
#pragma warning restore CA2252

    private sealed class Binder : IInvocationBinder
    {
        public static readonly Binder Instance = new();
        public IReadOnlyList<Type> GetParameterTypes(string methodName) => new[] { typeof(string) };
        public Type GetReturnType(string invocationId) => typeof(object);
        public Type GetStreamItemType(string streamId) => typeof(object);
    }

    /// <summary>A connection whose every write throws, as a broken transport does.</summary>
    private sealed class FailingConnectionContext(ConnectionContext connection, HubConnectionContextOptions options)
        : HubConnectionContext(connection, options, NullLoggerFactory.Instance)
    {
        public override ValueTask WriteAsync(HubMessage message, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("this connection cannot be written to");

        public override ValueTask WriteAsync(SerializedHubMessage message, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("this connection cannot be written to");
    }
}

/// <summary>One application per test; each manager a hub server of it.</summary>
public sealed class SpecBackplane : IAsyncDisposable
{
    private readonly string _application = "spec" + Guid.NewGuid().ToString("N")[..10];
    private readonly List<PostgresBackplane> _servers = new();

    public async Task<HubLifetimeManager<Hub>> CreateManagerAsync()
    {
        var backplane = new PostgresBackplane(Options.Create(new PostgresBackplaneOptions
        {
            ConnectionString = Pg.ConnectionString,
            ApplicationName = _application,
            ServerName = $"server-{_servers.Count + 1}",
            CreateApplication = true,
        }), NullLogger<PostgresBackplane>.Instance);
        _servers.Add(backplane);
        await backplane.StartAsync(CancellationToken.None);
        return new PostgresHubLifetimeManager<Hub>(backplane, NullLogger<PostgresHubLifetimeManager<Hub>>.Instance,
                                                   new Protocols(), Options.Create(new HubOptions { SupportedProtocols = new List<string> { "json" } }),
                                                   Options.Create(new HubOptions<Hub>()));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _servers)
            await s.DisposeAsync();
    }

    private sealed class Protocols : IHubProtocolResolver
    {
        private readonly IHubProtocol _json = new JsonHubProtocol();
        public IReadOnlyList<IHubProtocol> AllProtocols => new[] { _json };
        public IHubProtocol? GetProtocol(string protocolName, IReadOnlyList<string>? supportedProtocols) =>
            protocolName == "json" ? _json : null;
    }
}
