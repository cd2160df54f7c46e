using System.Buffers;
using System.IO.Pipelines;

namespace MailPipe;

/// <summary>
/// One send's run of a content writer (<see cref="SmtpMessage.FromWriter"/>): a pipe whose writing end is a stream
/// given to the caller's writer and whose reading end is this reader, read by the session like any content pipe. The
/// writer starts on the first read (so a transaction refused before its content never calls it) and is held back by
/// the pipe's thresholds while the server reads: the content is never buffered whole.
/// </summary>
internal sealed class WriterContent : PipeReader
{
    /// <summary>Bytes written and not yet read at which the writer's next flush waits (and at which it resumes).</summary>
    private const int PauseThreshold = 256 * 1024, ResumeThreshold = 128 * 1024;

    /// <summary>Written bytes handed to the reader at the latest when this many have gathered.</summary>
    internal const int HandOverThreshold = 16 * 1024;

    private readonly Func<Stream, CancellationToken, Task> _writer;
    private readonly Pipe _pipe = new(new PipeOptions(
        pauseWriterThreshold: PauseThreshold,
        resumeWriterThreshold: ResumeThreshold,
        minimumSegmentSize: 16 * 1024,
        useSynchronizationContext: false));

    /// <summary>The message's runs that outlived their sends: this run starts after they end.</summary>
    private readonly StoppedRuns? _stopped;

    private Task? _writing;

    public WriterContent(Func<Stream, CancellationToken, Task> writer, StoppedRuns? stopped = null)
    {
        _writer = writer;
        _stopped = stopped;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        // Started inline: a small message is written whole before the first read returns, without a thread hop.
        _writing ??= RunAsync(cancellationToken);
        return _pipe.Reader.ReadAsync(cancellationToken);
    }

    public override bool TryRead(out ReadResult result)
    {
        _writing ??= RunAsync(CancellationToken.None);
        return _pipe.Reader.TryRead(out result);
    }

    public override void AdvanceTo(SequencePosition consumed) => _pipe.Reader.AdvanceTo(consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => _pipe.Reader.AdvanceTo(consumed, examined);

    public override void CancelPendingRead() => _pipe.Reader.CancelPendingRead();

    /// <summary>The session never completes a content reader it did not make; <see cref="Release"/> does, at the end of the transaction.</summary>
    public override void Complete(Exception? exception = null) => _pipe.Reader.Complete(exception);

    /// <summary>
    /// The send is over (its result is made): stop reading, so that a writer still writing (the send stopped early)
    /// gets an <see cref="IOException"/> from its next write instead of waiting for ever. Idempotent.
    /// </summary>
    public void Release()
    {
        _pipe.Reader.Complete();
        if (_writing is { IsCompleted: false } writing)
        {
            _stopped?.Add(writing);
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var output = _pipe.Writer;
        var stream = new WriterStream(output, cancellationToken);
        try
        {
            // A retry's run waits for a run of the same message that its send left behind (ended at its next write):
            // the writer's calls never overlap for one message sent again, whatever state they share.
            if (_stopped?.Pending is { IsCompleted: false } pending)
            {
                await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            await _writer(stream, cancellationToken).ConfigureAwait(false);
            stream.Finished = true;
            await output.CompleteAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            // The send's own cancellation: the session sees it as a cancellation, as for any content source.
            await output.CompleteAsync(ex).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Whatever the writer threw is a content failure (the session never ends a message whose content failed).
            // The exceptions the session would take for its own (bad arguments, wrong state, cancellation, SMTP)
            // are wrapped so that they are reported as the content failure they are.
            await output.CompleteAsync(ex is ArgumentException or InvalidOperationException or OperationCanceledException or SmtpException
                ? new ContentWriterException(ex)
                : ex).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A content writer's own <see cref="ArgumentException"/>, <see cref="InvalidOperationException"/>,
    /// <see cref="OperationCanceledException"/> or <see cref="SmtpException"/>, wrapped so that the session does not take
    /// it for one of its own; unwrapped again when it becomes the <see cref="SmtpErrorCode.ContentReadFailed"/>
    /// exception's inner exception (<see cref="SmtpContentRules.Failure"/>), so that the caller finds the writer's exception there.
    /// </summary>
    internal sealed class ContentWriterException(Exception writerException)
        : IOException($"The message content writer failed: {writerException.Message}", writerException);

    /// <summary>The runs of one message's writer that outlived their sends (their reader released first), shared by the message and its copies.</summary>
    internal sealed class StoppedRuns
    {
        private readonly Lock _lock = new();
        private Task _pending = Task.CompletedTask;

        /// <summary>Completes when every run added so far has ended (a run never faults: its failures go into its pipe).</summary>
        public Task Pending
        {
            get
            {
                lock (_lock)
                {
                    return _pending;
                }
            }
        }

        public void Add(Task run)
        {
            lock (_lock)
            {
                _pending = _pending.IsCompleted ? run : Task.WhenAll(_pending, run);
            }
        }
    }

    /// <summary>The stream the caller's writer writes into: bytes go into the pipe and are handed over every <see cref="HandOverThreshold"/> bytes, a hand-over waiting while the pipe is full.</summary>
    private sealed class WriterStream(PipeWriter output, CancellationToken sendCancellation) : Stream
    {
        /// <summary>Set when the writer's task completed: writes after that would be lost.</summary>
        public bool Finished { get; set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => !Finished;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => throw SynchronousWrite();

        public override void Write(ReadOnlySpan<byte> buffer) => throw SynchronousWrite();

        public override void WriteByte(byte value) => throw SynchronousWrite();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(Finished, this);
            output.Write(buffer.Span);
            return output.UnflushedBytes >= HandOverThreshold ? HandOverAsync(cancellationToken) : ValueTask.CompletedTask;
        }

        /// <summary>Nothing to do: the bytes are handed over as they gather and when the writer's task completes.</summary>
        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) =>
            output.UnflushedBytes > 0 ? HandOverAsync(cancellationToken).AsTask() : Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private async ValueTask HandOverAsync(CancellationToken cancellationToken)
        {
            // The writer's token, or the send's: either stops a write that waits for the server.
            var token = cancellationToken.CanBeCanceled ? cancellationToken : sendCancellation;
            var result = await output.FlushAsync(token).ConfigureAwait(false);
            if (result.IsCompleted)
            {
                throw new IOException("The send stopped reading the message content (the transaction ended or failed); the rest of the content is not sent.");
            }
        }

        private static NotSupportedException SynchronousWrite() =>
            new("The content stream of SmtpMessage.FromWriter is written with WriteAsync: a synchronous Write would block a thread while the server reads.");
    }
}
