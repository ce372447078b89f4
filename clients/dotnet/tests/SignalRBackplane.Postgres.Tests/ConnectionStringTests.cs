using Npgsql;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>Failover defaults: set where the user left Npgsql's default, kept where the user chose.</summary>
public sealed class ConnectionStringTests
{
    [Fact]
    public void MultiHostStringsGetPrimaryAndAShortRecheck()
    {
        var b = ConnectionStrings.WithDefaults("Host=10.0.0.1:5432,10.0.0.2:5432;Username=hub;Database=app");
        Assert.Equal("primary", b.TargetSessionAttributes);
        Assert.Equal(ConnectionStrings.HostRecheckSeconds, b.HostRecheckSeconds);
        Assert.Equal(ConnectionStrings.ConnectTimeout, b.Timeout);
        Assert.Equal("hub", b.Username);
        Assert.True(b.NoResetOnClose);
    }

    [Fact]
    public void WhatTheUserSetIsKept()
    {
        var b = ConnectionStrings.WithDefaults(
            "Host=a,b;Target Session Attributes=prefer-primary;Host Recheck Seconds=5;Timeout=20");
        Assert.Equal("prefer-primary", b.TargetSessionAttributes);
        Assert.Equal(5, b.HostRecheckSeconds);
        Assert.Equal(20, b.Timeout);
    }

    [Fact]
    public void ASingleHostKeepsItsTargetAndGetsTheConnectTimeout()
    {
        var b = ConnectionStrings.WithDefaults("Host=pg-rw;Database=app");
        Assert.Null(b.TargetSessionAttributes);
        Assert.Equal(new NpgsqlConnectionStringBuilder().HostRecheckSeconds, b.HostRecheckSeconds);
        Assert.Equal(ConnectionStrings.ConnectTimeout, b.Timeout);
    }
}
