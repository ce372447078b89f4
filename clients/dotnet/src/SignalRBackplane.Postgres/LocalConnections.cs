using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;

namespace SignalRBackplane.Postgres;

/// <summary>One connection of this server to a hub, with its writer and its groups.</summary>
internal sealed class LocalConnection(HubConnectionContext context, ConnectionWriter writer)
{
    public HubConnectionContext Context { get; } = context;
    public ConnectionWriter Writer { get; } = writer;
    public string Id => Context.ConnectionId;
    public string? User { get; } = context.UserIdentifier;
    public string Protocol { get; } = context.Protocol.Name;
    /// <summary>Its groups; guarded by the owning LocalConnections' lock.</summary>
    public HashSet<string> Groups { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// What one hub's lifetime manager holds in memory to filter the application
/// stream: its local connections, their users, the groups they are in, and
/// the protocols they speak. Group changes for local connections apply here at
/// once; changes made elsewhere arrive as joined/left envelopes.
/// Locking: one lock for all maps; <see cref="All"/> and <see cref="Protocols"/>
/// are immutable snapshots read without it. Matching (<see cref="Match"/>) is
/// called by the stream consumer only.
/// </summary>
internal sealed class LocalConnections
{
    private readonly object _lock = new();
    private readonly Dictionary<string, LocalConnection> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<LocalConnection>> _byUser = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<LocalConnection>> _byGroup = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (IHubProtocol Protocol, int Count)> _protocols = new(StringComparer.Ordinal);
    private LocalConnection[] _all = Array.Empty<LocalConnection>();
    private IHubProtocol[] _protocolList = Array.Empty<IHubProtocol>();
    // the consumer's scratch space for deduplicating targets
    private readonly HashSet<LocalConnection> _seen = new();

    /// <summary>Every local connection (a snapshot).</summary>
    public LocalConnection[] All => Volatile.Read(ref _all);

    /// <summary>The protocols local connections speak (a snapshot).</summary>
    public IHubProtocol[] Protocols => Volatile.Read(ref _protocolList);

    public int Count => All.Length;

    public LocalConnection? this[string connectionId]
    {
        get
        {
            lock (_lock)
                return _byId.GetValueOrDefault(connectionId);
        }
    }

    public void Add(LocalConnection c)
    {
        lock (_lock)
        {
            if (_byId.ContainsKey(c.Id))
                return;
            _byId[c.Id] = c;
            _all = _byId.Values.ToArray();
            if (c.User != null)
            {
                if (!_byUser.TryGetValue(c.User, out var list))
                    _byUser[c.User] = list = new List<LocalConnection>(1);
                list.Add(c);
            }
            var p = _protocols.GetValueOrDefault(c.Protocol, (Protocol: c.Context.Protocol, Count: 0));
            _protocols[c.Protocol] = (p.Protocol, p.Count + 1);
            if (p.Count == 0)
                _protocolList = _protocols.Values.Select(v => v.Protocol).ToArray();
        }
    }

    public LocalConnection? Remove(string connectionId)
    {
        lock (_lock)
        {
            if (!_byId.Remove(connectionId, out var c))
                return null;
            _all = _byId.Values.ToArray();
            if (c.User != null && _byUser.TryGetValue(c.User, out var list))
            {
                list.Remove(c);
                if (list.Count == 0)
                    _byUser.Remove(c.User);
            }
            foreach (var g in c.Groups)
                if (_byGroup.TryGetValue(g, out var members))
                {
                    members.Remove(c);
                    if (members.Count == 0)
                        _byGroup.Remove(g);
                }
            c.Groups.Clear();
            var p = _protocols[c.Protocol];
            if (p.Count == 1)
            {
                _protocols.Remove(c.Protocol);
                _protocolList = _protocols.Values.Select(v => v.Protocol).ToArray();
            }
            else
                _protocols[c.Protocol] = (p.Protocol, p.Count - 1);
            return c;
        }
    }

    /// <summary>Adds a local connection to a group; false if the connection is not local.</summary>
    public bool AddToGroup(string connectionId, string group)
    {
        lock (_lock)
        {
            if (!_byId.TryGetValue(connectionId, out var c))
                return false;
            if (c.Groups.Add(group))
            {
                if (!_byGroup.TryGetValue(group, out var members))
                    _byGroup[group] = members = new HashSet<LocalConnection>();
                members.Add(c);
            }
            return true;
        }
    }

    /// <summary>Removes a local connection from a group; false if the connection is not local.</summary>
    public bool RemoveFromGroup(string connectionId, string group)
    {
        lock (_lock)
        {
            if (!_byId.TryGetValue(connectionId, out var c))
                return false;
            if (c.Groups.Remove(group) && _byGroup.TryGetValue(group, out var members))
            {
                members.Remove(c);
                if (members.Count == 0)
                    _byGroup.Remove(group);
            }
            return true;
        }
    }

    /// <summary>The groups of a local connection (a copy), or null.</summary>
    public string[]? GroupsOf(string connectionId)
    {
        lock (_lock)
            return _byId.TryGetValue(connectionId, out var c) ? c.Groups.ToArray() : null;
    }

    /// <summary>Every (connection, group) pair, to register them again.</summary>
    public (string[] Connections, string[] Groups) Memberships()
    {
        var ids = new List<string>();
        var groups = new List<string>();
        lock (_lock)
            foreach (var c in _byId.Values)
                foreach (var g in c.Groups)
                {
                    ids.Add(c.Id);
                    groups.Add(g);
                }
        return (ids.ToArray(), groups.ToArray());
    }

    /// <summary>
    /// The local connections a message of this kind reaches: those matching
    /// list 1 (every one for All), not in list 2, each once. Consumer only.
    /// </summary>
    public void Match(EnvelopeKind kind, string[] targets, string[] excluded, List<LocalConnection> into)
    {
        into.Clear();
        // a long exclusion list is looked up, not scanned, once per connection
        var excludedSet = excluded.Length > 8 ? new HashSet<string>(excluded, StringComparer.Ordinal) : null;
        bool IsExcluded(string id) => excludedSet?.Contains(id) ?? Contains(excluded, id);
        if (kind == EnvelopeKind.All)
        {
            foreach (var c in All)
                if (excluded.Length == 0 || !IsExcluded(c.Id))
                    into.Add(c);
            return;
        }
        lock (_lock)
        {
            switch (kind)
            {
                case EnvelopeKind.Connections:
                    foreach (var id in targets)
                        if (_byId.TryGetValue(id, out var c))
                            into.Add(c);
                    break;
                case EnvelopeKind.Groups:
                    foreach (var g in targets)
                        if (_byGroup.TryGetValue(g, out var members))
                            into.AddRange(members);
                    break;
                case EnvelopeKind.Users:
                    foreach (var u in targets)
                        if (_byUser.TryGetValue(u, out var list))
                            into.AddRange(list);
                    break;
            }
        }
        // several listed groups or users (or a connection id twice) reach a connection once
        bool dedupe = targets.Length > 1 && into.Count > 1;
        if (!dedupe && excluded.Length == 0)
            return;
        _seen.Clear();
        int kept = 0;
        for (int i = 0; i < into.Count; i++)
        {
            var c = into[i];
            if ((dedupe && !_seen.Add(c)) || (excluded.Length > 0 && IsExcluded(c.Id)))
                continue;
            into[kept++] = c;
        }
        into.RemoveRange(kept, into.Count - kept);
    }

    private static bool Contains(string[] names, string id)
    {
        foreach (var n in names)
            if (string.Equals(n, id, StringComparison.Ordinal))
                return true;
        return false;
    }
}
