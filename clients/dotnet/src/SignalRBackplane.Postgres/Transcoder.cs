using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;

namespace SignalRBackplane.Postgres;

/// <summary>
/// Gives a message a form in every protocol in use. Messages sent from SQL
/// (signalr_bp.json_invocation) carry only JSON, and a hub server may support
/// protocols another server does not: the JSON invocation is parsed once and
/// serialized once per missing protocol, whatever the number of receivers.
/// </summary>
internal static class Transcoder
{
    private const byte RecordSeparator = 0x1e;

    /// <summary>
    /// The message with forms for each protocol of <paramref name="inUse"/> it
    /// can have; <paramref name="transcoded"/> counts the forms added.
    /// </summary>
    public static SerializedHubMessage Complete(List<SerializedMessage> forms, IHubProtocol[] inUse, out int transcoded)
    {
        transcoded = 0;
        InvocationMessage? parsed = null;
        bool unreadable = false;
        foreach (var protocol in inUse)
        {
            if (Has(forms, protocol.Name))
                continue;
            if (parsed == null && !unreadable)
            {
                parsed = FromJson(forms);
                unreadable = parsed == null;
            }
            if (parsed == null)
                continue;
            forms.Add(new SerializedMessage(protocol.Name, protocol.GetMessageBytes(parsed)));
            transcoded++;
        }
        return new SerializedHubMessage(forms);
    }

    private static bool Has(List<SerializedMessage> forms, string protocol)
    {
        foreach (var f in forms)
            if (f.ProtocolName == protocol)
                return true;
        return false;
    }

    // the JSON form as an invocation with plain .NET arguments, or null
    private static InvocationMessage? FromJson(List<SerializedMessage> forms)
    {
        foreach (var f in forms)
            if (f.ProtocolName == "json")
                return ParseInvocation(f.Serialized);
        return null;
    }

    /// <summary>A JSON hub-protocol Invocation (record separator optional), or null if it is not one.</summary>
    public static InvocationMessage? ParseInvocation(ReadOnlyMemory<byte> json)
    {
        var span = json.Span;
        if (span.Length > 0 && span[^1] == RecordSeparator)
            json = json[..^1];
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.Number
                || !type.TryGetInt32(out int t) || t != HubProtocolConstants.InvocationMessageType
                || !root.TryGetProperty("target", out var target) || target.ValueKind != JsonValueKind.String)
                return null;
            object?[] args = Array.Empty<object?>();
            if (root.TryGetProperty("arguments", out var arguments))
            {
                if (arguments.ValueKind != JsonValueKind.Array)
                    return null;
                args = new object?[arguments.GetArrayLength()];
                int i = 0;
                foreach (var a in arguments.EnumerateArray())
                    args[i++] = ToObject(a);
            }
            string? invocationId = root.TryGetProperty("invocationId", out var id) && id.ValueKind == JsonValueKind.String
                ? id.GetString() : null;
            return new InvocationMessage(invocationId, target.GetString()!, args);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or FormatException or InvalidOperationException)
        {
            // not JSON, or an object with a key twice: not ours to deliver
            return null;
        }
    }

    // JSON values as the objects every hub protocol serializes: maps, arrays, strings, numbers, booleans, null
    private static object? ToObject(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(ToObject).ToArray(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => ToObject(p.Value)),
        _ => null,
    };
}
