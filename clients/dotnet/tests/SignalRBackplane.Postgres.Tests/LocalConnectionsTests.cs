namespace SignalRBackplane.Postgres.Tests;

/// <summary>The in-memory filter every hub server applies to the application stream.</summary>
public sealed class LocalConnectionsTests : IDisposable
{
    private readonly List<TestClient> _clients = new();
    private readonly LocalConnections _local = new();

    private string Connect(string? user = null)
    {
        var client = new TestClient(user);
        _clients.Add(client);
        _local.Add(new LocalConnection(client.Context, new ConnectionWriter(client.Context, 1 << 20, (_, _) => { })));
        return client.ConnectionId;
    }

    private string[] Match(EnvelopeKind kind, string[] targets, params string[] excluded)
    {
        var into = new List<LocalConnection>();
        _local.Match(kind, targets, excluded, into);
        return into.Select(c => c.Id).OrderBy(i => i).ToArray();
    }

    private static string[] Sorted(params string[] ids) => ids.OrderBy(i => i).ToArray();

    [Fact]
    public void EveryKindMatchesItsConnectionsOnceWithoutTheExcluded()
    {
        string a = Connect("alice"), b = Connect("bob"), c = Connect("alice"), d = Connect();
        Assert.True(_local.AddToGroup(a, "g1"));
        Assert.True(_local.AddToGroup(a, "g2"));
        Assert.True(_local.AddToGroup(b, "g2"));
        Assert.False(_local.AddToGroup("elsewhere", "g1"));

        Assert.Equal(Sorted(a, b, c, d), Match(EnvelopeKind.All, Array.Empty<string>()));
        Assert.Equal(Sorted(a, c, d), Match(EnvelopeKind.All, Array.Empty<string>(), b));
        Assert.Equal(Sorted(b, d), Match(EnvelopeKind.Connections, new[] { b, d, "elsewhere", d }));
        // a is in both groups and gets the message once
        Assert.Equal(Sorted(a, b), Match(EnvelopeKind.Groups, new[] { "g1", "g2", "g3" }));
        Assert.Equal(Sorted(a), Match(EnvelopeKind.Groups, new[] { "g2" }, b));
        Assert.Equal(Sorted(a, c), Match(EnvelopeKind.Users, new[] { "alice" }));
        Assert.Equal(Sorted(a, b, c), Match(EnvelopeKind.Users, new[] { "alice", "bob" }));

        // a long exclusion list
        var many = Enumerable.Range(0, 50).Select(i => $"x{i}").Append(c).ToArray();
        Assert.Equal(Sorted(a, b, d), Match(EnvelopeKind.All, Array.Empty<string>(), many));
    }

    [Fact]
    public void LeavingAndDisconnectingUpdateTheMaps()
    {
        string a = Connect("alice"), b = Connect("bob");
        _local.AddToGroup(a, "g");
        _local.AddToGroup(b, "g");
        Assert.True(_local.RemoveFromGroup(a, "g"));
        Assert.Equal(Sorted(b), Match(EnvelopeKind.Groups, new[] { "g" }));
        Assert.NotNull(_local.Remove(b));
        Assert.Empty(Match(EnvelopeKind.Groups, new[] { "g" }));
        Assert.Empty(Match(EnvelopeKind.Users, new[] { "bob" }));
        Assert.Equal(Sorted(a), Match(EnvelopeKind.All, Array.Empty<string>()));
        Assert.Null(_local.Remove(b));
        Assert.Empty(_local.Memberships().Connections);
    }

    [Fact]
    public void ProtocolsInUseFollowTheConnections()
    {
        Assert.Empty(_local.Protocols);
        string a = Connect(), b = Connect();
        Assert.Equal(new[] { "json" }, _local.Protocols.Select(p => p.Name));
        _local.Remove(a);
        Assert.Single(_local.Protocols);
        _local.Remove(b);
        Assert.Empty(_local.Protocols);
    }

    public void Dispose()
    {
        foreach (var c in _clients)
            c.Dispose();
    }
}
