using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SignalRBackplane.Postgres;

/// <summary>
/// HubLifetimeManager over signalr_bp: the registry, groups and routing live in
/// PostgreSQL; this class serializes once per protocol, sends through the
/// backplane's batched calls, and delivers what arrives on this server's stream
/// to its local connections.
/// </summary>
public sealed class PostgresHubLifetimeManager<THub> : HubLifetimeManager<THub>, IBackplaneHub, IDisposable
    where THub : Hub
{
    private readonly PostgresBackplane _backplane;
    private readonly ILogger _logger;
    private readonly IHubProtocol[] _hubProtocols;
    private readonly IHubProtocolResolver _protocols;
    private readonly HubConnectionStore _connections = new();
    // groups of local connections, to rebuild the registry after it was lost
    // (changes made by other servers arrive as Joined and Left envelopes)
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _localGroups = new();
    // client results this server asked for: invocation id -> pending result
    private readonly ConcurrentDictionary<string, PendingInvocation> _invocations = new();
    // client results other servers asked of our connections: invocation id -> connection id
    private readonly ConcurrentDictionary<string, string> _remoteInvocations = new();
    private readonly string _hub = typeof(THub).Name;

    /// <summary>Created by SignalR for each hub type; attaches to the process's <see cref="PostgresBackplane"/>.</summary>
    public PostgresHubLifetimeManager(PostgresBackplane backplane, ILogger<PostgresHubLifetimeManager<THub>> logger,
                                      IHubProtocolResolver protocols, IOptions<HubOptions> globalHubOptions,
                                      IOptions<HubOptions<THub>> hubOptions)
    {
        _backplane = backplane;
        _logger = logger;
        _protocols = protocols;
        var names = hubOptions.Value.SupportedProtocols ?? globalHubOptions.Value.SupportedProtocols ?? new List<string>();
        _hubProtocols = names.Select(n => protocols.GetProtocol(n, null)).OfType<IHubProtocol>().ToArray();
        _backplane.Attach(_hub, this);
    }

    /// <summary>The hub's name in the registry (and in SQL sends): the hub class's name.</summary>
    public string HubName => _hub;

    /// <inheritdoc />
    public override async Task OnConnectedAsync(HubConnectionContext connection)
    {
        await _backplane.Ready;
        _connections.Add(connection);
        await _backplane.ExecuteAsync("SELECT signalr_bp.connect($1, $2, $3, $4, $5)", connection.ConnectionAborted,
                                      _backplane.Application, _backplane.ServerName, _hub,
                                      connection.ConnectionId, connection.UserIdentifier);
    }

    /// <inheritdoc />
    public override async Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        _connections.Remove(connection);
        _localGroups.TryRemove(connection.ConnectionId, out _);
        foreach (var (id, pending) in _invocations)
            if (pending.ConnectionId == connection.ConnectionId)
                pending.Fail($"Connection '{connection.ConnectionId}' disconnected.");
        // also fails invocations other servers have pending on it
        await _backplane.ExecuteAsync("SELECT signalr_bp.disconnect($1, $2)", CancellationToken.None,
                                      _backplane.Application, connection.ConnectionId);
    }

    // ---- sends: one audience each, batched by the backplane ----

    // once per protocol in use, whatever the number of receivers
    private List<SerializedMessage> Serialize(HubMessage message) =>
        _hubProtocols.Select(p => new SerializedMessage(p.Name, p.GetMessageBytes(message))).ToList();

    private Task Send(string audience, string method, object?[] args)
    {
        var message = new InvocationMessage(method, args);
        return _backplane.SendAsync(_hub, audience, Payload.Write(Serialize(message)));
    }

    /// <inheritdoc />
    public override Task SendAllAsync(string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        Send("all", methodName, args);

    /// <inheritdoc />
    public override Task SendAllExceptAsync(string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds,
                                            CancellationToken cancellationToken = default) =>
        Send("all" + Except(excludedConnectionIds), methodName, args);

    /// <inheritdoc />
    public override Task SendConnectionAsync(string connectionId, string methodName, object?[] args,
                                             CancellationToken cancellationToken = default) =>
        Send("connections " + List(new[] { connectionId }), methodName, args);

    /// <inheritdoc />
    public override Task SendConnectionsAsync(IReadOnlyList<string> connectionIds, string methodName, object?[] args,
                                              CancellationToken cancellationToken = default) =>
        Send("connections " + List(connectionIds), methodName, args);

    /// <inheritdoc />
    public override Task SendGroupAsync(string groupName, string methodName, object?[] args,
                                        CancellationToken cancellationToken = default) =>
        Send("groups " + List(new[] { groupName }), methodName, args);

    /// <inheritdoc />
    public override Task SendGroupsAsync(IReadOnlyList<string> groupNames, string methodName, object?[] args,
                                         CancellationToken cancellationToken = default) =>
        Send("groups " + List(groupNames), methodName, args);

    /// <inheritdoc />
    public override Task SendGroupExceptAsync(string groupName, string methodName, object?[] args,
                                              IReadOnlyList<string> excludedConnectionIds,
                                              CancellationToken cancellationToken = default) =>
        Send("groups " + List(new[] { groupName }) + Except(excludedConnectionIds), methodName, args);

    /// <inheritdoc />
    public override Task SendUserAsync(string userId, string methodName, object?[] args,
                                       CancellationToken cancellationToken = default) =>
        Send("users " + List(new[] { userId }), methodName, args);

    /// <inheritdoc />
    public override Task SendUsersAsync(IReadOnlyList<string> userIds, string methodName, object?[] args,
                                        CancellationToken cancellationToken = default) =>
        Send("users " + List(userIds), methodName, args);

    // the audience type's text form, every name quoted
    private static string List(IEnumerable<string> names)
    {
        var sb = new StringBuilder("{");
        foreach (var n in names)
        {
            if (sb.Length > 1)
                sb.Append(',');
            sb.Append('"').Append(n.Replace("\\", "\\\\").Replace("\"", "\\\"")).Append('"');
        }
        return sb.Append('}').ToString();
    }

    private static string Except(IReadOnlyList<string>? excluded) =>
        excluded is { Count: > 0 } ? " except " + List(excluded) : "";

    // ---- groups: any server's connection, no acknowledgement round trip ----

    /// <inheritdoc />
    public override async Task AddToGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connectionId);
        ArgumentNullException.ThrowIfNull(groupName);
        if (_connections[connectionId] != null)
            _localGroups.GetOrAdd(connectionId, _ => new())[groupName] = 0;
        await _backplane.ExecuteAsync("SELECT signalr_bp.add_to_group($1, $2, $3, $4, $5)", cancellationToken,
                                      _backplane.Application, _hub, connectionId, groupName, _backplane.ServerName);
    }

    /// <inheritdoc />
    public override async Task RemoveFromGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connectionId);
        ArgumentNullException.ThrowIfNull(groupName);
        if (_localGroups.TryGetValue(connectionId, out var groups))
            groups.TryRemove(groupName, out _);
        await _backplane.ExecuteAsync("SELECT signalr_bp.remove_from_group($1, $2, $3, $4, $5)", cancellationToken,
                                      _backplane.Application, _hub, connectionId, groupName, _backplane.ServerName);
    }

    async Task IBackplaneHub.ReRegisterAsync(CancellationToken ct)
    {
        var ids = new List<string>();
        var users = new List<string?>();
        foreach (var c in _connections)
        {
            ids.Add(c.ConnectionId);
            users.Add(c.UserIdentifier);
        }
        if (ids.Count > 0)
            await _backplane.ExecuteAsync("SELECT signalr_bp.connect_many($1, $2, $3, $4, $5)", ct,
                                          _backplane.Application, _backplane.ServerName, _hub,
                                          ids.ToArray(), users.ToArray());
        var members = new List<string>();
        var groupNames = new List<string>();
        foreach (var (connectionId, groups) in _localGroups)
            foreach (var group in groups.Keys)
            {
                members.Add(connectionId);
                groupNames.Add(group);
            }
        for (int i = 0; i < members.Count; i += 1000)
        {
            int n = Math.Min(1000, members.Count - i);
            await _backplane.ExecuteAsync("SELECT signalr_bp.add_to_groups($1, $2, $3, $4, $5)", ct,
                                          _backplane.Application, _hub, members.GetRange(i, n).ToArray(),
                                          groupNames.GetRange(i, n).ToArray(), _backplane.ServerName);
        }
    }

    // ---- client results ----

    private abstract class PendingInvocation
    {
        public required string ConnectionId { get; init; }
        public abstract Type ResultType { get; }
        public abstract void Complete(CompletionMessage completion);
        public abstract void Fail(string error);
        public abstract void FailRemote(string error);
    }

    private sealed class PendingInvocation<T> : PendingInvocation
    {
        public readonly TaskCompletionSource<T> Result = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override Type ResultType => typeof(T);

        public override void Complete(CompletionMessage completion)
        {
            if (completion.HasResult)
                Result.TrySetResult((T) completion.Result!);
            else if (completion.Error != null)
                Result.TrySetException(new HubException(completion.Error));
            else
                Result.TrySetResult(default!);
        }

        // this server saw the connection go: as the default lifetime manager
        public override void Fail(string error) => Result.TrySetException(new IOException(error));

        // another server reported the failure (disconnect, reaped server)
        public override void FailRemote(string error) => Result.TrySetException(new HubException(error));
    }

    /// <inheritdoc />
    public override async Task<T> InvokeConnectionAsync<T>(string connectionId, string methodName, object?[] args,
                                                           CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connectionId);
        string invocationId = $"{_backplane.ServerName}:{Guid.NewGuid():N}";
        var pending = new PendingInvocation<T> { ConnectionId = connectionId };
        _invocations[invocationId] = pending;
        var message = new InvocationMessage(invocationId, methodName, args);
        try
        {
            var local = _connections[connectionId];
            if (local != null)
                await local.WriteAsync(message, cancellationToken);
            else
            {
                try
                {
                    await _backplane.ExecuteAsync("SELECT signalr_bp.invoke($1, $2, $3, $4, $5, $6)", cancellationToken,
                                                  _backplane.Application, _hub, _backplane.ServerName, connectionId,
                                                  invocationId, Payload.Write(Serialize(message)));
                }
                catch (PostgresException ex) when (ex.SqlState == "SB004")
                {
                    throw new IOException($"Connection '{connectionId}' does not exist.");
                }
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_backplane.Options.ClientResultTimeout);
            try
            {
                return await pending.Result.Task.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                await CancelAsync(connectionId, invocationId, local != null);
                // as the default lifetime manager: the hub method sees a HubException
                throw new HubException(cancellationToken.IsCancellationRequested
                    ? "Invocation canceled by the server."
                    : $"No result from connection '{connectionId}' within {_backplane.Options.ClientResultTimeout}.");
            }
        }
        finally
        {
            _invocations.TryRemove(invocationId, out _);
        }
    }

    private async Task CancelAsync(string connectionId, string invocationId, bool local)
    {
        try
        {
            if (local)
                await (_connections[connectionId]?.WriteAsync(new CancelInvocationMessage(invocationId)) ?? ValueTask.CompletedTask);
            else
                await _backplane.ExecuteAsync("SELECT signalr_bp.cancel_invocation($1, $2)", CancellationToken.None,
                                              _backplane.Application, invocationId);
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "cancelling invocation {Id} failed", invocationId);
        }
    }

    /// <inheritdoc />
    public override async Task SetConnectionResultAsync(string connectionId, CompletionMessage result)
    {
        if (_invocations.TryGetValue(result.InvocationId!, out var pending))
        {
            // only the connection that was asked may answer
            if (pending.ConnectionId != connectionId)
                throw new InvalidOperationException(
                    $"Connection ID '{connectionId}' is not valid for invocation ID '{result.InvocationId}'.");
            pending.Complete(result);
            return;
        }
        if (_remoteInvocations.TryGetValue(result.InvocationId!, out var asked))
        {
            if (asked != connectionId)
                throw new InvalidOperationException(
                    $"Connection ID '{connectionId}' is not valid for invocation ID '{result.InvocationId}'.");
            _remoteInvocations.TryRemove(result.InvocationId!, out _);
            // the result arrived as RawResult in this client's protocol: forward it as is
            var connection = _connections[connectionId];
            var protocol = connection?.Protocol ?? _protocols.GetProtocol("json", null)!;
            var bytes = protocol.GetMessageBytes(result);
            await _backplane.ExecuteAsync("SELECT signalr_bp.complete_invocation($1, $2, $3)", CancellationToken.None,
                                          _backplane.Application, result.InvocationId,
                                          Payload.WriteSingle(protocol.Name, bytes.Span));
        }
    }

    /// <inheritdoc />
    public override bool TryGetReturnType(string invocationId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Type? type)
    {
        if (_invocations.TryGetValue(invocationId, out var pending))
        {
            type = pending.ResultType;
            return true;
        }
        if (_remoteInvocations.ContainsKey(invocationId))
        {
            type = typeof(RawResult);
            return true;
        }
        type = null;
        return false;
    }

    // ---- delivering what arrives on this server's stream ----

    async Task IBackplaneHub.DeliverAsync(Envelope envelope)
    {
        switch (envelope.Kind)
        {
            case EnvelopeKind.All:
                {
                    var message = Message(envelope.Payload);
                    var excluded = envelope.Ids;
                    var tasks = new List<Task>(_connections.Count);
                    foreach (var c in _connections)
                        if (excluded.Length == 0 || Array.IndexOf(excluded, c.ConnectionId) < 0)
                            tasks.Add(Write(c, message));
                    await Task.WhenAll(tasks).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    break;
                }
            case EnvelopeKind.Connections:
                {
                    var message = Message(envelope.Payload);
                    var tasks = new List<Task>(envelope.Ids.Length);
                    foreach (var id in envelope.Ids)
                        if (_connections[id] is { } c)
                            tasks.Add(Write(c, message));
                    await Task.WhenAll(tasks).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    break;
                }
            case EnvelopeKind.Invoke:
                {
                    string connectionId = envelope.Ids[0], invocationId = envelope.Ids[1];
                    if (_connections[connectionId] is { } c)
                    {
                        _remoteInvocations[invocationId] = connectionId;
                        await Write(c, Message(envelope.Payload));
                    }
                    break;
                }
            case EnvelopeKind.Result:
                {
                    if (!_invocations.TryGetValue(envelope.Ids[0], out var pending))
                        break;
                    var (name, bytes) = Payload.ReadSingle(envelope.Payload);
                    var protocol = _protocols.GetProtocol(name, null);
                    var seq = new ReadOnlySequence<byte>(bytes);
                    if (protocol != null && protocol.TryParseMessage(ref seq, new ResultBinder(pending.ResultType), out var parsed)
                        && parsed is CompletionMessage completion)
                        pending.Complete(completion);
                    else
                        pending.FailRemote($"Unreadable result of invocation '{envelope.Ids[0]}'.");
                    break;
                }
            case EnvelopeKind.Failed:
                if (_invocations.TryGetValue(envelope.Ids[0], out var failed))
                    failed.FailRemote(envelope.Ids[1]);
                break;
            case EnvelopeKind.Joined:
                if (_connections[envelope.Ids[0]] != null)
                    _localGroups.GetOrAdd(envelope.Ids[0], _ => new())[envelope.Ids[1]] = 0;
                break;
            case EnvelopeKind.Left:
                if (_localGroups.TryGetValue(envelope.Ids[0], out var left))
                    left.TryRemove(envelope.Ids[1], out _);
                break;
            case EnvelopeKind.Cancel:
                {
                    string connectionId = envelope.Ids[0], invocationId = envelope.Ids[1];
                    _remoteInvocations.TryRemove(invocationId, out _);
                    if (_connections[connectionId] is { } c)
                        await c.WriteAsync(new CancelInvocationMessage(invocationId));
                    break;
                }
        }
    }

    private static (SerializedHubMessage Message, List<SerializedMessage> Forms) Message(ReadOnlyMemory<byte> payload)
    {
        var forms = Payload.Read(payload);
        return (new SerializedHubMessage(forms), forms);
    }

    private Task Write(HubConnectionContext connection, (SerializedHubMessage Message, List<SerializedMessage> Forms) m)
    {
        // a message sent from SQL is JSON only: clients of other protocols cannot read it
        string protocol = connection.Protocol.Name;
        if (!m.Forms.Exists(f => f.ProtocolName == protocol))
        {
            _logger.LogDebug("no {Protocol} form of a message for {Connection}", protocol, connection.ConnectionId);
            return Task.CompletedTask;
        }
        try
        {
            return connection.WriteAsync(m.Message).AsTask();
        }
        catch (Exception ex)
        {
            // one broken connection must not keep the message from the others
            _logger.LogDebug(ex, "writing to {Connection} failed", connection.ConnectionId);
            return Task.CompletedTask;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var pending in _invocations.Values)
            pending.Fail("The hub server is shutting down.");
    }

    private sealed class ResultBinder(Type resultType) : IInvocationBinder
    {
        public Type GetReturnType(string invocationId) => resultType;
        public IReadOnlyList<Type> GetParameterTypes(string methodName) => Array.Empty<Type>();
        public Type GetStreamItemType(string streamId) => typeof(object);
    }
}
