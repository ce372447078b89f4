using System.Buffers.Binary;
using System.Text;

namespace SignalRBackplane.Postgres;

/// <summary>What one envelope of the application stream asks of its readers (format in src/signalr.c).</summary>
internal enum EnvelopeKind : byte
{
    All = 1,          // list 2: excluded connections
    Connections = 2,  // list 1: connection ids; list 2: excluded
    Groups = 3,       // list 1: group names; list 2: excluded
    Users = 4,        // list 1: user ids; list 2: excluded
    Invoke = 5,       // list 1: connection, invocation, invoking server
    Result = 6,       // list 1: invocation; payload: the completion
    Failed = 7,       // list 1: invocation, error text
    Cancel = 8,       // list 1: connection, invocation
    Joined = 9,       // list 1: connection, group (changed by someone other than its holder)
    Left = 10,        // list 1: connection, group
}

[Flags]
internal enum EnvelopeFlags : byte
{
    None = 0,
    Keyed = 1,         // a 16-byte batch key follows the flags
    Unregistered = 2,  // joined: the registry did not know the connection; its holder registers the membership
}

/// <summary>
/// One envelope, version 2: version, kind, flags, [batch key], hub, list 1,
/// list 2, payload; integers big-endian, names as uint16 length + UTF-8.
/// </summary>
internal readonly record struct Envelope(EnvelopeKind Kind, EnvelopeFlags Flags, Guid? BatchKey, string Hub,
                                         string[] List1, string[] List2, ReadOnlyMemory<byte> Payload)
{
    public const byte Version = 2;

    public bool IsMessage => Kind is >= EnvelopeKind.All and <= EnvelopeKind.Users;

    /// <summary>Parses one envelope; InvalidDataException when it is not a well-formed version 2 envelope.</summary>
    public static Envelope Parse(ReadOnlyMemory<byte> data)
    {
        var s = data.Span;
        int pos = 0;
        if (s.Length < 3)
            throw new InvalidDataException("truncated envelope");
        if (s[0] != Version)
            throw new InvalidDataException($"unknown envelope version {s[0]}");
        var kind = (EnvelopeKind) s[1];
        if (kind is < EnvelopeKind.All or > EnvelopeKind.Left)
            throw new InvalidDataException($"unknown envelope kind {s[1]}");
        var flags = (EnvelopeFlags) s[2];
        pos = 3;
        Guid? key = null;
        if ((flags & EnvelopeFlags.Keyed) != 0)
        {
            Need(s, pos, 16);
            // a uuid's 16 bytes in network order, as PostgreSQL stores it
            key = new Guid(s.Slice(pos, 16), bigEndian: true);
            pos += 16;
        }
        string hub = ReadName(s, ref pos);
        var list1 = ReadList(s, ref pos);
        var list2 = ReadList(s, ref pos);
        return new Envelope(kind, flags, key, hub, list1, list2, data[pos..]);
    }

    private static void Need(ReadOnlySpan<byte> s, int pos, int n)
    {
        if (n < 0 || s.Length - pos < n)
            throw new InvalidDataException("truncated envelope");
    }

    private static string ReadName(ReadOnlySpan<byte> s, ref int pos)
    {
        Need(s, pos, 2);
        int len = BinaryPrimitives.ReadUInt16BigEndian(s[pos..]);
        pos += 2;
        Need(s, pos, len);
        string name = len == 0 ? "" : Encoding.UTF8.GetString(s.Slice(pos, len));
        pos += len;
        return name;
    }

    private static string[] ReadList(ReadOnlySpan<byte> s, ref int pos)
    {
        Need(s, pos, 4);
        uint count = BinaryPrimitives.ReadUInt32BigEndian(s[pos..]);
        pos += 4;
        // each name takes at least its 2-byte length: a count beyond that is corrupt
        if (count > (uint) (s.Length - pos) / 2)
            throw new InvalidDataException("truncated envelope");
        if (count == 0)
            return Array.Empty<string>();
        var list = new string[count];
        for (int i = 0; i < list.Length; i++)
            list[i] = ReadName(s, ref pos);
        return list;
    }

    /// <summary>Writes an envelope as the extension does (for tests and tools).</summary>
    public static byte[] Write(EnvelopeKind kind, EnvelopeFlags flags, Guid? key, string hub,
                               IReadOnlyList<string> list1, IReadOnlyList<string> list2, ReadOnlySpan<byte> payload)
    {
        if (key.HasValue)
            flags |= EnvelopeFlags.Keyed;
        else
            flags &= ~EnvelopeFlags.Keyed;
        using var ms = new MemoryStream();
        ms.WriteByte(Version);
        ms.WriteByte((byte) kind);
        ms.WriteByte((byte) flags);
        if (key.HasValue)
        {
            Span<byte> k = stackalloc byte[16];
            key.Value.TryWriteBytes(k, bigEndian: true, out _);
            ms.Write(k);
        }
        WriteName(ms, hub);
        WriteList(ms, list1);
        WriteList(ms, list2);
        ms.Write(payload);
        return ms.ToArray();
    }

    private static void WriteName(MemoryStream ms, string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(len, checked((ushort) bytes.Length));
        ms.Write(len);
        ms.Write(bytes);
    }

    private static void WriteList(MemoryStream ms, IReadOnlyList<string> list)
    {
        Span<byte> count = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint) list.Count);
        ms.Write(count);
        foreach (var name in list)
            WriteName(ms, name);
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

    /// <summary>The protocol forms of a payload; InvalidDataException when it is malformed.</summary>
    public static List<Microsoft.AspNetCore.SignalR.SerializedMessage> Read(ReadOnlyMemory<byte> payload)
    {
        var list = new List<Microsoft.AspNetCore.SignalR.SerializedMessage>(2);
        var s = payload.Span;
        if (s.Length == 0 || s[0] != Marker)
        {
            // raw JSON hub-protocol bytes sent from SQL
            list.Add(new Microsoft.AspNetCore.SignalR.SerializedMessage("json", payload));
            return list;
        }
        if (s.Length < 2)
            throw new InvalidDataException("truncated payload");
        int count = s[1];
        int pos = 2;
        for (int i = 0; i < count; i++)
        {
            if (pos >= s.Length || s.Length - pos - 1 < s[pos] + 4)
                throw new InvalidDataException("truncated payload");
            int n = s[pos];
            string name = Encoding.ASCII.GetString(s.Slice(pos + 1, n));
            pos += 1 + n;
            int len = BinaryPrimitives.ReadInt32BigEndian(s[pos..]);
            pos += 4;
            if (len < 0 || s.Length - pos < len)
                throw new InvalidDataException("truncated payload");
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
        if (payload.Length == 0 || payload.Length < 1 + payload.Span[0])
            throw new InvalidDataException("truncated completion");
        int n = payload.Span[0];
        return (Encoding.ASCII.GetString(payload.Span.Slice(1, n)), payload[(1 + n)..]);
    }
}
