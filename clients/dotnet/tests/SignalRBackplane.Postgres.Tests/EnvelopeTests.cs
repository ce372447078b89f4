using System.Text;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>Envelope version 2 as the extension writes it (src/signalr.c), read by the adapter.</summary>
public sealed class EnvelopeTests
{
    [Fact]
    public void ReadsEveryFieldOfAKeyedEnvelope()
    {
        var key = Guid.NewGuid();
        byte[] data = Envelope.Write(EnvelopeKind.Groups, EnvelopeFlags.None, key, "ChatHub",
                                     new[] { "room 1", "ünïcödé" }, new[] { "c1" }, Encoding.UTF8.GetBytes("payload"));
        var e = Envelope.Parse(data);
        Assert.Equal(EnvelopeKind.Groups, e.Kind);
        Assert.Equal(EnvelopeFlags.Keyed, e.Flags);
        Assert.Equal(key, e.BatchKey);
        Assert.Equal("ChatHub", e.Hub);
        Assert.Equal(new[] { "room 1", "ünïcödé" }, e.List1);
        Assert.Equal(new[] { "c1" }, e.List2);
        Assert.Equal("payload", Encoding.UTF8.GetString(e.Payload.Span));
        Assert.True(e.IsMessage);
    }

    [Fact]
    public void TheBatchKeyIsTheUuidInNetworkOrder()
    {
        // what PostgreSQL stores for '00112233-4455-6677-8899-aabbccddeeff'
        byte[] data = { 2, 1, 1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
                        0, 1, (byte) 'H', 0, 0, 0, 0, 0, 0, 0, 0 };
        var e = Envelope.Parse(data);
        Assert.Equal(Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), e.BatchKey);
        Assert.Equal("H", e.Hub);
        Assert.Empty(e.List1);
        Assert.Empty(e.List2);
        Assert.True(e.Payload.IsEmpty);
    }

    [Fact]
    public void UnkeyedAndUnregisteredFlags()
    {
        var joined = Envelope.Parse(Envelope.Write(EnvelopeKind.Joined, EnvelopeFlags.Unregistered, null, "H",
                                                   new[] { "c1", "g" }, Array.Empty<string>(), default));
        Assert.Null(joined.BatchKey);
        Assert.Equal(EnvelopeFlags.Unregistered, joined.Flags);
        Assert.False(joined.IsMessage);
        // results and failures name no hub
        var result = Envelope.Parse(Envelope.Write(EnvelopeKind.Result, EnvelopeFlags.None, null, "",
                                                   new[] { "inv-1" }, Array.Empty<string>(), new byte[] { 4, 1, 2 }));
        Assert.Equal("", result.Hub);
        Assert.Equal(3, result.Payload.Length);
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { 1, 1, 0, 0, 0 })]                       // version 1
    [InlineData(new byte[] { 2, 0, 0, 0, 0 })]                       // kind 0
    [InlineData(new byte[] { 2, 11, 0, 0, 0 })]                      // kind 11
    [InlineData(new byte[] { 2, 1, 1, 1, 2, 3 })]                    // key cut short
    [InlineData(new byte[] { 2, 1, 0, 0, 5, 65 })]                   // hub cut short
    [InlineData(new byte[] { 2, 1, 0, 0, 0, 0, 0, 0 })]              // list 1 count cut short
    [InlineData(new byte[] { 2, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff })] // 4 billion names in no bytes
    [InlineData(new byte[] { 2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 9, 65 })] // a name cut short
    public void RejectsMalformedEnvelopes(byte[] data)
    {
        Assert.Throws<InvalidDataException>(() => Envelope.Parse(data));
    }

    [Fact]
    public void PayloadFormsRoundTripAndSqlPayloadsAreJson()
    {
        var forms = new List<Microsoft.AspNetCore.SignalR.SerializedMessage>
        {
            new("json", Encoding.UTF8.GetBytes("{}\u001e")),
            new("messagepack", new byte[] { 1, 2, 3 }),
        };
        var read = Payload.Read(Payload.Write(forms));
        Assert.Equal(new[] { "json", "messagepack" }, read.Select(f => f.ProtocolName));
        Assert.Equal(new byte[] { 1, 2, 3 }, read[1].Serialized.ToArray());
        var raw = Payload.Read(Encoding.UTF8.GetBytes("{\"type\": 1}\u001e"));
        Assert.Equal("json", Assert.Single(raw).ProtocolName);
        Assert.Throws<InvalidDataException>(() => Payload.Read(new byte[] { 0xff, 1, 4, (byte) 'j' }));
    }
}
