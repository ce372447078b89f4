using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Options;

namespace SignalRBackplane.Postgres.Tests;

/// <summary>A JSON invocation made in SQL, given to MessagePack clients.</summary>
public sealed class TranscoderTests
{
    private static readonly IHubProtocol Json = new JsonHubProtocol();
    private static readonly IHubProtocol MessagePack = new MessagePackHubProtocol(Options.Create(new MessagePackHubProtocolOptions()));

    // what signalr_bp.json_invocation('m', '[1, "two", 3.5, true, null, {"k": [1]}]') returns
    private static readonly byte[] FromSql =
        Encoding.UTF8.GetBytes("{\"type\": 1, \"target\": \"m\", \"arguments\": [1, \"two\", 3.5, true, null, {\"k\": [1]}]}\u001e");

    [Fact]
    public void AJsonInvocationGetsAMessagePackForm()
    {
        var forms = new List<SerializedMessage> { new("json", FromSql) };
        var message = Transcoder.Complete(forms, new[] { Json, MessagePack }, out int transcoded);
        Assert.Equal(1, transcoded);
        // the JSON form is the original bytes, untouched
        Assert.Equal(FromSql, message.GetSerializedMessage(Json).ToArray());
        var bytes = new ReadOnlySequence<byte>(message.GetSerializedMessage(MessagePack));
        Assert.True(MessagePack.TryParseMessage(ref bytes, new Binder(6), out var parsed));
        var invocation = Assert.IsType<InvocationMessage>(parsed);
        Assert.Equal("m", invocation.Target);
        Assert.Equal(1, Convert.ToInt32(invocation.Arguments[0]));
        Assert.Equal("two", invocation.Arguments[1]);
        Assert.Equal(3.5, Convert.ToDouble(invocation.Arguments[2]));
        Assert.Equal(true, invocation.Arguments[3]);
        Assert.Null(invocation.Arguments[4]);
        var map = Assert.IsAssignableFrom<IDictionary<object, object>>(invocation.Arguments[5]);
        Assert.Single(map);
    }

    [Fact]
    public void FormsAlreadyThereAreNotMadeAgain()
    {
        var forms = new List<SerializedMessage> { new("json", FromSql), new("messagepack", new byte[] { 9 }) };
        var message = Transcoder.Complete(forms, new[] { Json, MessagePack }, out int transcoded);
        Assert.Equal(0, transcoded);
        Assert.Equal(new byte[] { 9 }, message.GetSerializedMessage(MessagePack).ToArray());
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"type\": 3, \"invocationId\": \"1\"}\u001e")]
    [InlineData("{\"type\": 1, \"arguments\": []}\u001e")]
    [InlineData("{\"type\": 1, \"target\": \"m\", \"arguments\": {}}\u001e")]
    [InlineData("[1, 2]")]
    public void WhatIsNotAnInvocationIsLeftAlone(string json)
    {
        var forms = new List<SerializedMessage> { new("json", Encoding.UTF8.GetBytes(json)) };
        var message = Transcoder.Complete(forms, new[] { Json, MessagePack }, out int transcoded);
        Assert.Equal(0, transcoded);
        Assert.Single(forms);
        Assert.Throws<InvalidOperationException>(() => message.GetSerializedMessage(MessagePack));
    }

    private sealed class Binder(int count) : IInvocationBinder
    {
        public IReadOnlyList<Type> GetParameterTypes(string methodName) => Enumerable.Repeat(typeof(object), count).ToArray();
        public Type GetReturnType(string invocationId) => typeof(object);
        public Type GetStreamItemType(string streamId) => typeof(object);
    }
}
