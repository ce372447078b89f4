using System.Diagnostics;
using Microsoft.AspNetCore.Connections.Abstractions;
using Microsoft.AspNetCore.SignalR;

namespace SignalRBackplane.Postgres;

/// <summary>
/// Writes to one connection without ever making its caller wait: the stream
/// consumer hands each message over and moves on. When the connection's
/// previous write is still pending, messages queue here, bounded in bytes;
/// the connection is aborted when the queue overflows or a write hangs longer
/// than the write timeout (checked by <see cref="CheckHung"/>), as SignalR's
/// transports abort a send that does not complete.
/// The stream consumer stages the messages of one read (<see cref="Stage"/>)
/// and writes them as one buffer at its end (<see cref="WriteStaged"/>): one
/// flush and one WebSocket frame for several messages, as a transport does
/// with writes that queue up. Not for stateful-reconnect connections, whose
/// buffer counts messages by write.
/// Locking: <c>_lock</c> guards the queue and the busy flag; the write itself
/// runs outside it, by one thread at a time (whoever set busy). The staged
/// list belongs to the consumer's thread.
/// </summary>
internal sealed class ConnectionWriter
{
    private readonly HubConnectionContext _connection;
    private readonly long _bufferSize;
    private readonly Action<HubConnectionContext, string> _aborted;
    private readonly object _lock = new();
    private Queue<(SerializedHubMessage Message, int Size)>? _queue;
    private long _queuedBytes;
    private bool _busy;
    private bool _closed;
    private bool _abortReported;
    // Stopwatch timestamp at which the pending write started; 0 while no write is pending
    private long _pendingSince;
    // a combined write stays below this; a larger read goes out in several
    private const int MaxCombinedBytes = 64 * 1024;
    private readonly bool _coalesce;
    private List<SerializedHubMessage>? _staged;

    // aborted: told (connection, reason) once, when this writer aborts the connection
    public ConnectionWriter(HubConnectionContext connection, long bufferSize, Action<HubConnectionContext, string> aborted)
    {
        _connection = connection;
        _bufferSize = bufferSize;
        _aborted = aborted;
        // the feature is there when the connection may reconnect statefully (its buffer counts writes)
#pragma warning disable CA2252 // a preview interface: only asked whether it is there
        _coalesce = connection.Features.Get<IStatefulReconnectFeature>() == null;
#pragma warning restore CA2252
    }

    public HubConnectionContext Connection => _connection;

    /// <summary>Bytes waiting behind the pending write.</summary>
    public long QueuedBytes
    {
        get { lock (_lock) return _queuedBytes; }
    }

    /// <summary>
    /// Writes the message, or queues it behind a pending write. Never blocks:
    /// when the connection's transport takes the bytes at once (the common
    /// case) this is one synchronous WriteAsync, with no task and no hop.
    /// </summary>
    public void Write(SerializedHubMessage message)
    {
        bool start = false, overflow = false;
        lock (_lock)
        {
            if (_closed)
                return;
            if (_busy)
                overflow = !Enqueue(message);
            else
                start = _busy = true;
        }
        if (start)
            Run(message);
        else if (overflow)
            AbortConnection($"more than {_bufferSize} bytes waited for a slow client");
    }

    /// <summary>
    /// Stages a message of the read being delivered; <paramref name="staged"/>
    /// collects the writers to finish with <see cref="WriteStaged"/>.
    /// Called by the stream consumer only.
    /// </summary>
    public void Stage(SerializedHubMessage message, List<ConnectionWriter> staged)
    {
        if (!_coalesce)
        {
            Write(message);
            return;
        }
        _staged ??= new List<SerializedHubMessage>();
        if (_staged.Count == 0)
            staged.Add(this);
        _staged.Add(message);
    }

    /// <summary>Writes the staged messages, in order, as few buffers as they fit in.</summary>
    public void WriteStaged()
    {
        var staged = _staged;
        if (staged == null || staged.Count == 0)
            return;
        if (staged.Count == 1)
            Write(staged[0]);
        else
        {
            var protocol = _connection.Protocol;
            int first = 0, bytes = 0;
            for (int i = 0; i < staged.Count; i++)
            {
                int size = staged[i].GetSerializedMessage(protocol).Length;
                if (i > first && bytes + size > MaxCombinedBytes)
                {
                    Write(Combine(staged, first, i, bytes, protocol));
                    first = i;
                    bytes = 0;
                }
                bytes += size;
            }
            Write(Combine(staged, first, staged.Count, bytes, protocol));
        }
        staged.Clear();
    }

    // messages [from, to) in this protocol's form, one after the other: a valid stream of messages in every protocol
    private static SerializedHubMessage Combine(List<SerializedHubMessage> staged, int from, int to, int bytes,
                                                Microsoft.AspNetCore.SignalR.Protocol.IHubProtocol protocol)
    {
        if (to - from == 1)
            return staged[from];
        var buffer = new byte[bytes];
        int pos = 0;
        for (int i = from; i < to; i++)
        {
            var form = staged[i].GetSerializedMessage(protocol);
            form.Span.CopyTo(buffer.AsSpan(pos));
            pos += form.Length;
        }
        return new SerializedHubMessage(new[] { new SerializedMessage(protocol.Name, buffer) });
    }

    // under _lock; false when the message does not fit
    private bool Enqueue(SerializedHubMessage message)
    {
        int size = message.GetSerializedMessage(_connection.Protocol).Length;
        _queue ??= new Queue<(SerializedHubMessage, int)>();
        if (_queue.Count > 0 && _queuedBytes + size > _bufferSize)
            return false;
        _queue.Enqueue((message, size));
        _queuedBytes += size;
        return true;
    }

    // writes message, then whatever queued meanwhile, until a write goes asynchronous or nothing is left
    private void Run(SerializedHubMessage message)
    {
        while (true)
        {
            ValueTask write;
            try
            {
                write = _connection.WriteAsync(message);
            }
            catch (Exception)
            {
                AbortConnection("a write failed");
                return;
            }
            if (!write.IsCompleted)
            {
                Volatile.Write(ref _pendingSince, Stopwatch.GetTimestamp());
                _ = AwaitAsync(write);
                return;
            }
            try
            {
                write.GetAwaiter().GetResult();
            }
            catch (Exception)
            {
                AbortConnection("a write failed");
                return;
            }
            if (!TryNext(out message))
                return;
        }
    }

    private async Task AwaitAsync(ValueTask write)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (Exception)
        {
            AbortConnection("a write failed");
            return;
        }
        Volatile.Write(ref _pendingSince, 0);
        if (TryNext(out var next))
            Run(next);
    }

    // the next queued message, or false after clearing busy
    private bool TryNext(out SerializedHubMessage message)
    {
        lock (_lock)
        {
            if (_closed || _queue == null || _queue.Count == 0)
            {
                _busy = false;
                message = null!;
                return false;
            }
            var item = _queue.Dequeue();
            _queuedBytes -= item.Size;
            message = item.Message;
            return true;
        }
    }

    /// <summary>Aborts the connection if its pending write started more than timeout ago; true if it did.</summary>
    public bool CheckHung(long now, TimeSpan timeout)
    {
        long since = Volatile.Read(ref _pendingSince);
        if (since <= 0 || Stopwatch.GetElapsedTime(since, now) <= timeout)
            return false;
        AbortConnection($"a write did not complete within {timeout.TotalSeconds:0.###} s");
        return true;
    }

    /// <summary>Drops what is queued; later writes are ignored (the connection is gone).</summary>
    public void Close()
    {
        lock (_lock)
            CloseLocked();
    }

    private void CloseLocked()
    {
        _closed = true;
        _queue = null;
        _queuedBytes = 0;
    }

    private void AbortConnection(string reason)
    {
        bool first;
        lock (_lock)
        {
            first = !_abortReported;
            _abortReported = true;
            _pendingSince = 0;
            CloseLocked();
        }
        if (!first)
            return;
        _connection.Abort();
        _aborted(_connection, reason);
    }
}
