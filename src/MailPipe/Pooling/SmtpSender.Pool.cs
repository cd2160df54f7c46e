using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>
/// The pool: a queue of waiting messages, idle connections, and one worker per busy or opening connection. Every
/// state change happens under <c>_lock</c>; I/O never does. A worker takes up to <see cref="SmtpSenderOptions.MaxBatchSize"/>
/// waiting messages at a time and sends them as one pipelined batch on its connection.
/// </summary>
public sealed partial class SmtpSender
{
    private long _nextConnectionId;
    private string? _server;

    internal int MaxConnections => _options.MaxConnections;

    /// <summary>host:port, for the connection log scope.</summary>
    private string Server => _server ??= Transport.SmtpEndpointText.Format(_options.Host, _options.Port);

    private void Enqueue(params ReadOnlySpan<SendRequest> requests)
    {
        List<Work>? start = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var now = _time.GetTimestamp();
            foreach (var request in requests)
            {
                request.EnqueuedAt = now;
                _queue.Enqueue(request);
                _waiting++;
            }

            Dispatch(ref start);
            if (_waiting > 0)
            {
                ArmHousekeeping();
            }
        }

        foreach (var request in requests)
        {
            request.StartWaiting(this);
        }

        if (start is not null)
        {
            Start(start);
        }
    }

    /// <summary>
    /// The caller's token fired: a message still waiting is dropped; one already taken is left to its batch (the
    /// session sees the token too: before the first byte the transaction is skipped; while its content is written it
    /// is reset with RSET between BDAT chunks, or with DATA the connection is closed, never the final dot), unless it
    /// is alone on its connection and its content is not being written: then that batch is cancelled (the session
    /// closes the connection and never writes the end of data after the cancellation; the caller learns NotSent or
    /// Unknown as for any cancellation).
    /// </summary>
    internal void OnCancelled(SendRequest request)
    {
        if (request.TryClaim(SendRequest.Dropped))
        {
            lock (_lock)
            {
                _waiting--;

                // Out of the queue now, not when a batch or the acquire timeout's tick reaches it: with no acquire timeout
                // and no connection taking messages (a server that stopped answering), a service whose callers give up
                // would otherwise keep every one of their messages.
                request.Queue?.Remove(request);
            }

            request.TrySetCanceled();
            return;
        }

        CancellationTokenSource? cancel = null;
        lock (_lock)
        {
            foreach (var connection in _all)
            {
                if (connection.InFlight.Count == 1 && connection.InFlight.Peek() == request && connection.BatchCancellation is { } batch
                    && !connection.Session.IsWritingContentOf(request.Token))
                {
                    connection.CancelledByCaller = true; // takes no more messages into this batch
                    cancel = batch;
                    break;
                }
            }
        }

        try
        {
            cancel?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The batch ended meanwhile.
        }
    }

    /// <summary>
    /// Hands waiting messages to idle connections, and opens a connection when every open one already has a full
    /// batch waiting (and the limit allows). Under the lock; the work is started after it is released.
    /// </summary>
    private void Dispatch(List<Work> start)
    {
        List<Work>? work = start;
        Dispatch(ref work);
    }

    /// <summary>As <see cref="Dispatch(List{Work})"/>; the list is made only when there is work to start.</summary>
    private void Dispatch(ref List<Work>? start)
    {
        while (_waiting > 0 && _idle.TryPop(out var connection))
        {
            var batch = TakeBatch(BatchLimit(connection));
            if (batch.Count == 0)
            {
                _idle.Push(connection);
                break;
            }

            connection.IsIdle = false;
            _busy++;
            (start ??= []).Add(new Work(connection, batch));
        }

        // Connections in the middle of a batch take waiting messages while they have room. A feeder already woken takes
        // them when it runs; otherwise wake as many waiting feeders with room as the messages need (a feeder that is
        // writing takes more before it waits again). Fewer wake-ups, and the messages of callers completed together
        // go out together.
        var unserved = _waiting;
        if (unserved > 0)
        {
            foreach (var feeding in _all)
            {
                if (feeding.IsWakePending)
                {
                    unserved -= Room(feeding);
                }
            }

            foreach (var feeding in _all)
            {
                if (unserved <= 0)
                {
                    break;
                }

                if (feeding.IsWaitingForWork && Room(feeding) is var room and > 0)
                {
                    feeding.Wake();
                    unserved -= room;
                }
            }
        }

        while (_waiting > (_busy + _opening) * _options.MaxBatchSize && _open < _options.MaxConnections && !_disposed
            && ((_busy == 0 && _opening == 0) || _openBackoffUntil == 0 || _time.GetTimestamp() >= _openBackoffUntil))
        {
            _open++;
            _opening++;
            (start ??= []).Add(new Work(null, null));
        }
    }

    /// <summary>
    /// Whether the running batch of <paramref name="connection"/> may take one more message. Under the lock. A batch
    /// keeps every result until it ends, so a busy connection ends its batch after <see cref="SmtpSenderOptions.MaxMessagesPerBatch"/>
    /// messages and starts the next (one round trip without new messages), which bounds its memory.
    /// </summary>
    private bool HasRoom(PooledConnection connection) =>
        connection.InFlight.Count < _options.MaxBatchSize
        && connection.BatchMessages < _options.MaxMessagesPerBatch
        && !connection.CancelledByCaller
        && (_options.MaxMessagesPerConnection == 0 || connection.Messages < _options.MaxMessagesPerConnection)
        && NonMailRoom(connection) > 0
        && connection.Session.IsConnected
        && !_disposed;

    /// <summary>
    /// Whether a server ended a session of this sender at a limit (<see cref="IsDroppedAtSessionLimit"/>): from then on
    /// a connection that has counted no nonmail command yet is held to <see cref="SmtpSenderOptions.MaxNonMailCommandsPerConnection"/> too.
    /// </summary>
    private volatile bool _sessionLimitMet;

    /// <summary>
    /// How many more messages a connection may take within <see cref="SmtpSenderOptions.MaxNonMailCommandsPerConnection"/>:
    /// each message in flight or taken may add one counted RSET (before it, after a refused predecessor). A connection
    /// that has counted none yet is not held to it until a server ended a session of this sender at a limit
    /// (<see cref="_sessionLimitMet"/>): a first burst of refusals past it ends in a drop whose messages are sent again,
    /// but every fresh connection after it would burst and drop again, and a message dropped on each would run out of
    /// attempts (NotSent after 4).
    /// </summary>
    private int NonMailRoom(PooledConnection connection)
    {
        var counted = connection.Session.NonMailCommands;
        return _options.MaxNonMailCommandsPerConnection == 0 || (counted == 0 && !_sessionLimitMet) ? int.MaxValue
            : _options.MaxNonMailCommandsPerConnection - counted - connection.InFlight.Count;
    }

    /// <summary>Whether a connection is too near <see cref="SmtpSenderOptions.MaxNonMailCommandsPerConnection"/> for another batch (a NOOP before it and the RSET of its first message).</summary>
    private bool IsNearNonMailLimit(PooledConnection connection) =>
        _options.MaxNonMailCommandsPerConnection > 0 && connection.Session.NonMailCommands >= _options.MaxNonMailCommandsPerConnection - 1;

    /// <summary>How many more messages the running batch of <paramref name="connection"/> may take now. Under the lock.</summary>
    private int Room(PooledConnection connection)
    {
        if (!HasRoom(connection))
        {
            return 0;
        }

        var room = Math.Min(Math.Min(_options.MaxBatchSize - connection.InFlight.Count, _options.MaxMessagesPerBatch - connection.BatchMessages), NonMailRoom(connection));
        return _options.MaxMessagesPerConnection == 0 ? room : Math.Min(room, _options.MaxMessagesPerConnection - connection.Messages);
    }

    /// <summary>
    /// The most messages a batch taken for <paramref name="connection"/> may hold: <see cref="SmtpSenderOptions.MaxBatchSize"/>,
    /// or fewer when <see cref="SmtpSenderOptions.MaxMessagesPerConnection"/> leaves fewer (a connection that reached it
    /// is closed, so at least 1 is left).
    /// </summary>
    private int BatchLimit(PooledConnection connection) =>
        Math.Max(1, Math.Min(NonMailRoom(connection), _options.MaxMessagesPerConnection == 0 ? _options.MaxBatchSize
            : Math.Min(_options.MaxBatchSize, _options.MaxMessagesPerConnection - connection.Messages)));

    /// <summary>Takes up to a batch of waiting messages (or <paramref name="max"/>), retries first. Under the lock.</summary>
    private List<SendRequest> TakeBatch(int max = 0)
    {
        max = max > 0 ? max : _options.MaxBatchSize;
        var batch = new List<SendRequest>(Math.Min(_waiting, max));
        while (batch.Count < max && (_retryQueue.TryDequeue(out var request) || _queue.TryDequeue(out request)))
        {
            if (request.TryClaim(SendRequest.Taken))
            {
                _waiting--;
                batch.Add(request);
            }
        }

        return batch;
    }

    /// <summary>Takes the next waiting message, retries first. Under the lock.</summary>
    private bool TryTakeNext([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SendRequest? next)
    {
        while (_retryQueue.TryDequeue(out next) || _queue.TryDequeue(out next))
        {
            if (next.TryClaim(SendRequest.Taken))
            {
                _waiting--;
                return true;
            }
        }

        return false;
    }

    private void Start(List<Work> start)
    {
        foreach (var work in start)
        {
            lock (_lock)
            {
                _workers++;
            }

            RunDetached(static s => _ = s.Sender.RunWorkerAsync(s.Work.Connection, s.Work.Batch), (Sender: this, Work: work));
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> outside the current execution context: a worker serves every caller's messages on
    /// connections that outlive them, and the timers run for the pool's life. Started on the flow of the caller whose
    /// message woke the pool (or that made the sender), it kept that caller's <see cref="System.Diagnostics.Activity.Current"/>
    /// and logger scopes for everything it did next: the runtime's spans of a connection opened for another caller's
    /// message (socket connect, TLS) went under the first caller's request, and so did the transcripts' trace ids.
    /// </summary>
    private static void RunDetached<TState>(Action<TState> action, TState state)
    {
        if (ExecutionContext.IsFlowSuppressed())
        {
            action(state);
            return;
        }

        using (ExecutionContext.SuppressFlow())
        {
            action(state);
        }
    }

    private List<SendRequest> TakeAll()
    {
        List<SendRequest> all = [];
        while (_waiting > 0)
        {
            var batch = TakeBatch();
            if (batch.Count == 0)
            {
                break;
            }

            all.AddRange(batch);
        }

        return all;
    }

    /// <summary>Puts a clean connection back. Under the lock.</summary>
    /// <summary>
    /// A connection just opened with nothing to send: back to the idle stack, unless the sender was disposed while it
    /// opened (then its slot is released and the caller closes it, as disposal closes the idle ones). Under the lock.
    /// </summary>
    /// <returns>Whether it went back to the idle stack.</returns>
    private bool ReturnIdleUnlessDisposed(PooledConnection opened)
    {
        _busy--;
        if (_disposed)
        {
            _open--;
            return false;
        }

        ReturnIdle(opened);
        return true;
    }

    private void ReturnIdle(PooledConnection connection)
    {
        connection.IdleSince = _time.GetTimestamp();
        connection.IsIdle = true;
        connection.LentFromIdle = true;
        _idle.Push(connection);
    }

    private bool IsPastLifetime(PooledConnection connection) =>
        _options.MaxLifetime != Timeout.InfiniteTimeSpan && _time.GetElapsedTime(connection.CreatedAt) >= _options.MaxLifetime;

    private readonly record struct Work(PooledConnection? Connection, List<SendRequest>? Batch);
}
