using System.Buffers.Binary;
using System.Text;

namespace SignalRBackplane.Postgres;

/// <summary>What the extension appends to a hub server's stream (format in src/signalr.c).</summary>
internal enum EnvelopeKind : byte
{
    All = 1,          // ids: excluded connections
    Connections = 2,  // ids: local connections to deliver to
    Invoke = 3,       // ids: connection, invocation, invoking server
    Result = 4,       // ids: invocation; payload: the completion
    Failed = 5,       // ids: invocation, error message
    Cancel = 6,       // ids: connection, invocation
    Joined = 7,       // ids: connection, group (another server added our connection)
    Left = 8,         // ids: connection, group (another server removed it)
}

internal readonly record struct Envelope(EnvelopeKind Kind, string Hub, string[] Ids, ReadOnlyMemory<byte> Payload)
{
    public static Envelope Parse(ReadOnlyMemory<byte> data)
    {
        var s = data.Span;
        if (s.Length < 8 || s[0] != 1)
            throw new InvalidDataException("unknown envelope version");
        var kind = (EnvelopeKind) s[1];
        int pos = 2;
        int hubLen = BinaryPrimitives.ReadUInt16BigEndian(s[pos..]);
        pos += 2;
        string hub = Encoding.UTF8.GetString(s.Slice(pos, hubLen));
        pos += hubLen;
        int count = checked((int) BinaryPrimitives.ReadUInt32BigEndian(s[pos..]));
        pos += 4;
        var ids = new string[count];
        for (int i = 0; i < count; i++)
        {
            int len = BinaryPrimitives.ReadUInt16BigEndian(s[pos..]);
            pos += 2;
            ids[i] = Encoding.UTF8.GetString(s.Slice(pos, len));
            pos += len;
        }
        return new Envelope(kind, hub, ids, data[pos..]);
    }
}

/// <summary>
/// A message payload: the hub message serialized once per protocol in use
/// ([0xFF][count] then per protocol [name length][name][int32 length][bytes]),
/// or, from SQL (signalr_bp.json_invocation), raw JSON hub-protocol bytes.
/// </summary>
internal static class Payload
{
    private const byte Marker = 0xFF;

    public static byte[] Write(IReadOnlyList<Microsoft.AspNetCore.SignalR.SerializedMessage> messages)
    {
        int size = 2;
        foreach (var m in messages)
            size += 1 + Encoding.ASCII.GetByteCount(m.ProtocolName) + 4 + m.Serialized.Length;
        var buf = new byte[size];
        buf[0] = Marker;
        buf[1] = checked((byte) messages.Count);
        int pos = 2;
        foreach (var m in messages)
        {
            int n = Encoding.ASCII.GetBytes(m.ProtocolName, buf.AsSpan(pos + 1));
            buf[pos] = checked((byte) n);
            pos += 1 + n;
            BinaryPrimitives.WriteInt32BigEndian(buf.AsSpan(pos), m.Serialized.Length);
            pos += 4;
            m.Serialized.Span.CopyTo(buf.AsSpan(pos));
            pos += m.Serialized.Length;
        }
        return buf;
    }

    public static List<Microsoft.AspNetCore.SignalR.SerializedMessage> Read(ReadOnlyMemory<byte> payload)
    {
        var list = new List<Microsoft.AspNetCore.SignalR.SerializedMessage>();
        var s = payload.Span;
        if (s.Length == 0 || s[0] != Marker)
        {
            // raw JSON hub-protocol bytes sent from SQL
            list.Add(new Microsoft.AspNetCore.SignalR.SerializedMessage("json", payload));
            return list;
        }
        int count = s[1];
        int pos = 2;
        for (int i = 0; i < count; i++)
        {
            int n = s[pos];
            string name = Encoding.ASCII.GetString(s.Slice(pos + 1, n));
            pos += 1 + n;
            int len = BinaryPrimitives.ReadInt32BigEndian(s[pos..]);
            pos += 4;
            list.Add(new Microsoft.AspNetCore.SignalR.SerializedMessage(name, payload.Slice(pos, len)));
            pos += len;
        }
        return list;
    }

    /// <summary>[name length][protocol name][bytes]: a completion from one client's protocol.</summary>
    public static byte[] WriteSingle(string protocol, ReadOnlySpan<byte> bytes)
    {
        int n = Encoding.ASCII.GetByteCount(protocol);
        var buf = new byte[1 + n + bytes.Length];
        buf[0] = checked((byte) n);
        Encoding.ASCII.GetBytes(protocol, buf.AsSpan(1));
        bytes.CopyTo(buf.AsSpan(1 + n));
        return buf;
    }

    public static (string Protocol, ReadOnlyMemory<byte> Bytes) ReadSingle(ReadOnlyMemory<byte> payload)
    {
        int n = payload.Span[0];
        return (Encoding.ASCII.GetString(payload.Span.Slice(1, n)), payload[(1 + n)..]);
    }
}
