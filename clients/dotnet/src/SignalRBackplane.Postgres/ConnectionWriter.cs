using System.Diagnostics;
using Microsoft.AspNetCore.SignalR;

namespace SignalRBackplane.Postgres;

/// <summary>
/// Writes to one connection without ever making its caller wait: the stream
/// consumer hands each message over and moves on. When the connection's
/// previous write is still pending, messages queue here, bounded in bytes;
/// the connection is aborted when the queue overflows or a write hangs longer
/// than the write timeout (checked by <see cref="CheckHung"/>), as SignalR's
/// transports abort a send that does not complete.
/// Locking: <c>_lock</c> guards the queue and the busy flag; the write itself
/// runs outside it, by one thread at a time (whoever set busy).
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

    // aborted: told (connection, reason) once, when this writer aborts the connection
    public ConnectionWriter(HubConnectionContext connection, long bufferSize, Action<HubConnectionContext, string> aborted)
    {
        _connection = connection;
        _bufferSize = bufferSize;
        _aborted = aborted;
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
