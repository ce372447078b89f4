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
/// HubLifetimeManager over signalr_bp. Sends go to the application stream
/// through the backplane's send queue, serialized once per protocol; this
/// server reads every envelope of the stream back and delivers those of its
/// hub to the local connections they name, filtering with what it holds in
/// memory (connections, users, groups: LocalConnections), each connection
/// written through its own bounded writer. The registry in PostgreSQL serves
/// presence, client results and the rebuild after a crash.
/// </summary>
public sealed class PostgresHubLifetimeManager<THub> : HubLifetimeManager<THub>, IBackplaneHub, IDisposable
    where THub : Hub
{
    private readonly PostgresBackplane _backplane;
    private readonly ILogger _logger;
    private readonly IHubProtocol[] _hubProtocols;
    private readonly IHubProtocolResolver _protocols;
    private readonly LocalConnections _local = new();
    // client results this server asked for: invocation id -> pending result
    private readonly ConcurrentDictionary<string, PendingInvocation> _invocations = new();
    // client results other servers asked of our connections: invocation id -> connection id
    private readonly ConcurrentDictionary<string, string> _remoteInvocations = new();
    // protocols no form of a message could be made for, reported once each
    private readonly ConcurrentDictionary<string, byte> _unservable = new();
    // the consumer's scratch list of targets
    private readonly List<LocalConnection> _targets = new();
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
        var options = _backplane.Options;
        var local = new LocalConnection(connection, new ConnectionWriter(connection, options.ConnectionBufferSize, Aborted));
        // delivered to from now on: the stream is filtered with what this server holds
        _local.Add(local);
        try
        {
            // through a restart or failover (and a registry lost meanwhile) too
            await Connect(connection);
        }
        catch
        {
            _local.Remove(connection.ConnectionId);
            local.Writer.Close();
            throw;
        }
    }

    private Task Connect(HubConnectionContext connection) =>
        _backplane.ResilientExecute("SELECT signalr_bp.connect($1, $2, $3, $4, $5)", connection.ConnectionAborted,
                                _backplane.Application, _backplane.ServerName, _hub,
                                connection.ConnectionId, connection.UserIdentifier);

    /// <inheritdoc />
    public override async Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        _local.Remove(connection.ConnectionId)?.Writer.Close();
        foreach (var (id, pending) in _invocations)
            if (pending.ConnectionId == connection.ConnectionId)
                pending.Fail($"Connection '{connection.ConnectionId}' disconnected.");
        try
        {
            // also fails invocations other servers have pending on it
            await _backplane.ResilientExecute("SELECT signalr_bp.disconnect($1, $2)", CancellationToken.None,
                                              _backplane.Application, connection.ConnectionId);
        }
        catch (Exception ex)
        {
            // presence counts it until the registry is rebuilt or this server is reaped
            _logger.LogWarning(ex, "the registry could not be told that connection {Connection} left", connection.ConnectionId);
        }
    }

    // a slow client's writes overflowed or hung: it was aborted, nobody else waited for it
    private void Aborted(HubConnectionContext connection, string reason)
    {
        Metrics.ConnectionsAborted.Add(1);
        _logger.LogWarning("connection {Connection} of hub {Hub} aborted: {Reason}", connection.ConnectionId, _hub, reason);
    }

    void IBackplaneHub.CheckHungWrites(long now)
    {
        var timeout = _backplane.Options.ConnectionWriteTimeout;
        foreach (var c in _local.All)
            c.Writer.CheckHung(now, timeout);
    }

    // ---- sends: one audience each, batched by the backplane ----

    // once per protocol in use, whatever the number of receivers
    private List<SerializedMessage> Serialize(HubMessage message) =>
        _hubProtocols.Select(p => new SerializedMessage(p.Name, p.GetMessageBytes(message))).ToList();

    private Task Send(string audience, string method, object?[] args, CancellationToken ct = default)
    {
        var message = new InvocationMessage(method, args);
        return _backplane.SendAsync(_hub, audience, Payload.Write(Serialize(message)), ct);
    }

    /// <inheritdoc />
    public override Task SendAllAsync(string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        Send("all", methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendAllExceptAsync(string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds,
                                            CancellationToken cancellationToken = default) =>
        Send("all" + Except(excludedConnectionIds), methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendConnectionAsync(string connectionId, string methodName, object?[] args,
                                             CancellationToken cancellationToken = default) =>
        Send("connections " + List(new[] { connectionId }), methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendConnectionsAsync(IReadOnlyList<string> connectionIds, string methodName, object?[] args,
                                              CancellationToken cancellationToken = default) =>
        Send("connections " + List(connectionIds), methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendGroupAsync(string groupName, string methodName, object?[] args,
                                        CancellationToken cancellationToken = default) =>
        Send("groups " + List(new[] { groupName }), methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendGroupsAsync(IReadOnlyList<string> groupNames, string methodName, object?[] args,
                                         CancellationToken cancellationToken = default) =>
        Send("groups " + List(groupNames), methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendGroupExceptAsync(string groupName, string methodName, object?[] args,
                                              IReadOnlyList<string> excludedConnectionIds,
                                              CancellationToken cancellationToken = default) =>
        Send("groups " + List(new[] { groupName }) + Except(excludedConnectionIds), methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendUserAsync(string userId, string methodName, object?[] args,
                                       CancellationToken cancellationToken = default) =>
        Send("users " + List(new[] { userId }), methodName, args, cancellationToken);

    /// <inheritdoc />
    public override Task SendUsersAsync(IReadOnlyList<string> userIds, string methodName, object?[] args,
                                        CancellationToken cancellationToken = default) =>
        Send("users " + List(userIds), methodName, args, cancellationToken);

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

    // ---- groups: local ones at once in memory; any server's through the registry ----

    /// <inheritdoc />
    public override async Task AddToGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connectionId);
        ArgumentNullException.ThrowIfNull(groupName);
        // a local connection is in the group for every message read from now on; for
        // another server's connection, the engine appends a joined envelope to the stream
        _local.AddToGroup(connectionId, groupName);
        await _backplane.ResilientExecute("SELECT signalr_bp.add_to_group($1, $2, $3, $4, $5)", cancellationToken,
                                          _backplane.Application, _hub, connectionId, groupName, _backplane.ServerName);
    }

    /// <inheritdoc />
    public override async Task RemoveFromGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connectionId);
        ArgumentNullException.ThrowIfNull(groupName);
        _local.RemoveFromGroup(connectionId, groupName);
        await _backplane.ResilientExecute("SELECT signalr_bp.remove_from_group($1, $2, $3, $4, $5)", cancellationToken,
                                          _backplane.Application, _hub, connectionId, groupName, _backplane.ServerName);
    }

    async Task IBackplaneHub.ReRegisterAsync(CancellationToken ct)
    {
        var all = _local.All;
        for (int i = 0; i < all.Length; i += 1000)
        {
            var chunk = all.Skip(i).Take(1000).ToArray();
            await _backplane.ExecuteAsync("SELECT signalr_bp.connect_many($1, $2, $3, $4, $5)", ct,
                                          _backplane.Application, _backplane.ServerName, _hub,
                                          chunk.Select(c => c.Id).ToArray(), chunk.Select(c => c.User).ToArray());
        }
        var (members, groupNames) = _local.Memberships();
        for (int i = 0; i < members.Length; i += 1000)
        {
            int n = Math.Min(1000, members.Length - i);
            await _backplane.ExecuteAsync("SELECT signalr_bp.add_to_groups($1, $2, $3, $4, $5)", ct,
                                          _backplane.Application, _hub, members[i..(i + n)],
                                          groupNames[i..(i + n)], _backplane.ServerName);
        }
    }

    // a joined envelope for one of our connections that the registry did not know (it is being
    // rebuilt): register the connection if it is still missing, then the membership (which,
    // from its holder, appends nothing)
    private async Task RegisterMembershipAsync(string connectionId, string group)
    {
        try
        {
            await _backplane.RegistrationIdle();
            if (await AddToGroupInRegistry(connectionId, group))
                return;
            if (_local[connectionId] is not { } local || _local.GroupsOf(connectionId)?.Contains(group) != true)
                return;
            // (if this server's registration is gone too, this registers it again, replaying everything)
            await Connect(local.Context);
            await AddToGroupInRegistry(connectionId, group);
        }
        catch (Exception ex)
        {
            // the next rebuild replays it from memory anyway
            _logger.LogDebug(ex, "registering {Connection} in group {Group} failed", connectionId, group);
        }
    }

    private Task<bool> AddToGroupInRegistry(string connectionId, string group) =>
        _backplane.ResilientScalar<bool>("SELECT signalr_bp.add_to_group($1, $2, $3, $4, $5)", CancellationToken.None,
                                     _backplane.Application, _hub, connectionId, group, _backplane.ServerName);

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
            var local = _local[connectionId];
            if (local != null)
                local.Writer.Write(new SerializedHubMessage(message));
            else
            {
                var payload = Payload.Write(Serialize(message));
                while (true)
                {
                    try
                    {
                        await _backplane.ResilientExecute("SELECT signalr_bp.invoke($1, $2, $3, $4, $5, $6)", cancellationToken,
                                                          _backplane.Application, _hub, _backplane.ServerName, connectionId,
                                                          invocationId, payload);
                        break;
                    }
                    catch (PostgresException ex) when (ex.SqlState == "SB004")
                    {
                        // just after the registry was lost, the connection's server may not have
                        // registered it again yet: "does not exist" is final only after that
                        if (!_backplane.RegistryRecentlyRebuilt)
                            throw new IOException($"Connection '{connectionId}' does not exist.");
                        await Task.Delay(100, cancellationToken);
                    }
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

    // Clients are not told: SignalR's clients do not take a CancelInvocation message (the
    // .NET client closes its connection on one), and the default lifetime manager sends
    // none; a late answer is ignored. The holder of a remote connection forgets the invocation.
    private async Task CancelAsync(string connectionId, string invocationId, bool local)
    {
        if (local)
            return;
        try
        {
            await _backplane.ExecuteAsync("SELECT signalr_bp.cancel_invocation($1, $2, $3)", CancellationToken.None,
                                          _backplane.Application, invocationId, connectionId);
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "cancelling invocation {Id} failed", invocationId);
        }
    }

    /// <inheritdoc />
    public override Task SetConnectionResultAsync(string connectionId, CompletionMessage result)
    {
        if (_invocations.TryGetValue(result.InvocationId!, out var pending))
        {
            // only the connection that was asked may answer
            if (pending.ConnectionId != connectionId)
                throw new InvalidOperationException(
                    $"Connection ID '{connectionId}' is not valid for invocation ID '{result.InvocationId}'.");
            pending.Complete(result);
            return Task.CompletedTask;
        }
        if (_remoteInvocations.TryGetValue(result.InvocationId!, out var asked))
        {
            if (asked != connectionId)
                throw new InvalidOperationException(
                    $"Connection ID '{connectionId}' is not valid for invocation ID '{result.InvocationId}'.");
            _remoteInvocations.TryRemove(result.InvocationId!, out _);
            // the result arrived as RawResult in this client's protocol: forward it as is
            var connection = _local[connectionId]?.Context;
            var protocol = connection?.Protocol ?? _protocols.GetProtocol("json", null)!;
            var bytes = protocol.GetMessageBytes(result);
            // an exception here would close the answering client's connection, and waiting
            // would hold up its next messages: pass it on in the background, riding out an
            // outage (a result appended twice is ignored by the server that asked)
            _ = _backplane.ExecuteRetryingAsync("passing on a client result",
                                                  "SELECT signalr_bp.complete_invocation($1, $2, $3)",
                                                  _backplane.Application, result.InvocationId,
                                                  Payload.WriteSingle(protocol.Name, bytes.Span));
        }
        return Task.CompletedTask;
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

    // ---- delivering what this server reads from the application stream ----

    void IBackplaneHub.Deliver(in Envelope envelope, List<ConnectionWriter> staged)
    {
        var list1 = envelope.List1;
        switch (envelope.Kind)
        {
            case EnvelopeKind.All:
            case EnvelopeKind.Connections:
            case EnvelopeKind.Groups:
            case EnvelopeKind.Users:
                {
                    _local.Match(envelope.Kind, list1, envelope.List2, _targets);
                    if (_targets.Count == 0)
                        return;   // nobody here: the payload is not even read
                    var (message, missing) = Prepare(envelope.Payload);
                    foreach (var c in _targets)
                        if (missing == null || !missing.Contains(c.Protocol))
                            c.Writer.Stage(message, staged);
                    _targets.Clear();
                    break;
                }
            case EnvelopeKind.Invoke when list1.Length >= 2:
                {
                    string connectionId = list1[0], invocationId = list1[1];
                    if (_local[connectionId] is { } c)
                    {
                        _remoteInvocations[invocationId] = connectionId;
                        var (message, missing) = Prepare(envelope.Payload);
                        if (missing == null || !missing.Contains(c.Protocol))
                            c.Writer.Stage(message, staged);
                    }
                    break;
                }
            case EnvelopeKind.Result when list1.Length >= 1:
                {
                    if (!_invocations.TryGetValue(list1[0], out var pending))
                        break;
                    try
                    {
                        var (name, bytes) = Payload.ReadSingle(envelope.Payload);
                        var protocol = _protocols.GetProtocol(name, null);
                        var seq = new ReadOnlySequence<byte>(bytes);
                        if (protocol != null && protocol.TryParseMessage(ref seq, new ResultBinder(pending.ResultType), out var parsed)
                            && parsed is CompletionMessage completion)
                        {
                            pending.Complete(completion);
                            break;
                        }
                    }
                    catch (Exception ex)
                    {
                        _logger.LogDebug(ex, "reading the result of invocation {Id} failed", list1[0]);
                    }
                    pending.FailRemote($"Unreadable result of invocation '{list1[0]}'.");
                    break;
                }
            case EnvelopeKind.Failed when list1.Length >= 2:
                if (_invocations.TryGetValue(list1[0], out var failed))
                    failed.FailRemote(list1[1]);
                break;
            case EnvelopeKind.Cancel when list1.Length >= 2:
                {
                    // the asking server gave up: its client's answer, if any, is dropped (see CancelAsync)
                    _remoteInvocations.TryRemove(list1[1], out _);
                    break;
                }
            case EnvelopeKind.Joined when list1.Length >= 2:
                // another server or SQL added our connection to a group
                if (_local.AddToGroup(list1[0], list1[1]) && (envelope.Flags & EnvelopeFlags.Unregistered) != 0)
                    _ = RegisterMembershipAsync(list1[0], list1[1]);
                break;
            case EnvelopeKind.Left when list1.Length >= 2:
                _local.RemoveFromGroup(list1[0], list1[1]);
                break;
        }
    }

    // the message in every protocol local connections speak (transcoded from JSON when it came
    // from SQL), and the protocols it could not be given, if any
    private (SerializedHubMessage Message, string[]? Missing) Prepare(ReadOnlyMemory<byte> payload)
    {
        var forms = Payload.Read(payload);
        var inUse = _local.Protocols;
        var message = Transcoder.Complete(forms, inUse, out int transcoded);
        if (transcoded > 0)
            Metrics.Transcoded.Add(transcoded);
        List<string>? missing = null;
        foreach (var p in inUse)
        {
            if (HasForm(forms, p.Name))
                continue;
            (missing ??= new()).Add(p.Name);
            if (_unservable.TryAdd(p.Name, 0))
                _logger.LogWarning("a message of hub {Hub} has no {Protocol} form and none could be made " +
                                   "(only JSON invocations are transcoded); {Protocol} clients do not receive such messages",
                                   _hub, p.Name, p.Name);
        }
        return (message, missing?.ToArray());
    }

    private static bool HasForm(List<SerializedMessage> forms, string protocol)
    {
        foreach (var f in forms)
            if (f.ProtocolName == protocol)
                return true;
        return false;
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
