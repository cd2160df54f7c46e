namespace MailPipe;

/// <summary>
/// One caller's message in the pool: its state (waiting, taken by a connection, done), its completion (the request is
/// the caller's completion source itself: one object less per message) and its attempts.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The tracker wraps the caller's stream, which the caller owns and disposes.")]
internal sealed class SendRequest : TaskCompletionSource<SmtpSendResult>
{
    /// <summary>In the queue, waiting for a connection.</summary>
    public const int Waiting = 0;

    /// <summary>Taken by a connection: in a batch being sent.</summary>
    public const int Taken = 1;

    /// <summary>Dropped before it was taken (cancelled, acquire timeout, disposal); the completion is set by whoever dropped it.</summary>
    public const int Dropped = 2;

    /// <summary>Whether the content is a seekable stream: a retry reads it again from the message's start.</summary>
    private readonly bool _seekable;
    private readonly ReadTrackingStream? _tracker;
    private int _state;
    private volatile bool _readOnce;
    private CancellationTokenRegistration _registration;
    private SmtpSender? _sender;

    public SendRequest(SmtpMessage message, CancellationToken cancellationToken)
        : base(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        Token = cancellationToken;
        if (message.Stream is { } stream)
        {
            if (stream.CanSeek)
            {
                _seekable = true;
            }
            else
            {
                // A copy, not a new message: the stream read by another send and the message's own token are kept.
                _tracker = new ReadTrackingStream(stream);
                message = message.ReadingThrough(_tracker);
            }
        }

        // Only a writer's or selector's message needs watching (the lambda, capturing this request, is allocated only then).
        Message = !message.IsFromCallersCode ? message : message.Observing(chosen => _readOnce = _readOnce || chosen is null || chosen.IsOnePassSource);
    }

    /// <summary>The message as handed to a session (a non-seekable stream is wrapped so that its reads are seen).</summary>
    public SmtpMessage Message { get; }

    /// <summary>The caller's activity when it called SendAsync: the parent of the transaction span, whichever flow writes it.</summary>
    public System.Diagnostics.ActivityContext TelemetryParent { get; } = MailPipeTelemetry.CaptureParent();

    /// <summary>The caller's token.</summary>
    public CancellationToken Token { get; }

    /// <summary>How many times a connection took this message.</summary>
    public int Attempts { get; set; }

    /// <summary>The queue it waits in (<see cref="RequestQueue"/>), or null. Under the pool's lock.</summary>
    public RequestQueue? Queue { get; set; }

    /// <summary>The request before it in its queue. Under the pool's lock.</summary>
    public SendRequest? Previous { get; set; }

    /// <summary>The request after it in its queue. Under the pool's lock.</summary>
    public SendRequest? Next { get; set; }

    /// <summary>
    /// Whether the message can be sent again without sending a fragment: in memory, a stream that can seek back, a
    /// stream not a byte of which was read, or a content writer (also one a message made per connection chose, such as
    /// MailPipe.MimeKit's) or pipe reader that no send has started on yet: a writer's run may have read the caller's
    /// one-pass sources (a network stream it copies), and a selector that chose a one-pass source could hand it
    /// on half read.
    /// </summary>
    public bool IsReplayable => Message.Bytes is not null || _seekable || _tracker is { BytesRead: 0 }
        || (Message.Stream is null && Message.IsReplayable && !_readOnce);

    public bool IsWaiting => Volatile.Read(ref _state) == Waiting;

    /// <summary>Moves a waiting request to <paramref name="state"/>; false when someone else moved it first.</summary>
    public bool TryClaim(int state) => Interlocked.CompareExchange(ref _state, state, Waiting) == Waiting;

    /// <summary>
    /// Puts a taken request back to waiting (for its retry). A full fence: the caller's token, read after it, is read
    /// after the request is seen waiting (<see cref="SmtpSender"/>'s TryRequeue). A seekable stream is not rewound here:
    /// each send reads it through a view from the message's start (<see cref="Sending.SeekableContent"/>), and another
    /// send may be reading it now.
    /// </summary>
    public void Requeue() => Interlocked.Exchange(ref _state, Waiting);

    /// <summary>
    /// When it joined the queue (its SendAsync; kept when a batch gives it back unsent, renewed only for its retry on a
    /// fresh connection): the start of its acquire timeout (a <see cref="TimeProvider"/> timestamp).
    /// </summary>
    public long EnqueuedAt { get; set; }

    /// <summary>Watches the caller's token while the request waits.</summary>
    public void StartWaiting(SmtpSender sender)
    {
        if (Token.CanBeCanceled)
        {
            _sender = sender;
            _registration = Token.UnsafeRegister(static (s, _) => ((SendRequest)s!)._sender!.OnCancelled((SendRequest)s!), this);

            // It joined the queue before this (outside the pool's lock): a disposal, a batch or the acquire timeout may
            // have completed it already, finding no registration to dispose; left, the registration would hold the
            // request, its message and the sender on a long-lived token. A completion sets the task before it disposes
            // the registration, so one of the two sees the other.
            Interlocked.MemoryBarrier();
            if (Task.IsCompleted)
            {
                _registration.Dispose();
            }
        }
    }

    /// <summary>Completes the caller's task (and stops watching its token); hides the base's, which would leave the registration.</summary>
    public new bool TrySetResult(SmtpSendResult result)
    {
        var set = base.TrySetResult(result);
        Cleanup();
        return set;
    }

    /// <summary>Fails the caller's task (and stops watching its token).</summary>
    public new bool TrySetException(Exception exception)
    {
        var set = base.TrySetException(exception);
        Cleanup();
        return set;
    }

    /// <summary>Cancels the caller's task with its own token (and stops watching it).</summary>
    public new bool TrySetCanceled()
    {
        var set = TrySetCanceled(Token);
        Cleanup();
        return set;
    }

    /// <summary>Stops watching the token: after the task is set (see <see cref="StartWaiting"/>).</summary>
    private void Cleanup() => _registration.Dispose();
}

/// <summary>A read-only pass-through that counts the bytes read, so that a retry can tell whether a fragment was consumed.</summary>
internal sealed class ReadTrackingStream(Stream inner) : Stream
{
    private long _bytesRead;

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private int Count(int read)
    {
        Interlocked.Add(ref _bytesRead, read);
        return read;
    }
}
