using System.IO.Pipelines;

namespace MailPipe;

/// <summary>The one-pass sources of a message (a non-seekable stream, a pipe reader), wrapped to note their first read: such content is never sent again once read.</summary>
public sealed partial class SmtpMessage
{
    /// <summary>A non-seekable stream that notes when it is first read (for every copy of its message, which share it).</summary>
    private sealed class ReadTrackingStream(Stream inner, ReadTrackingStream? original = null) : Stream
    {
        private volatile bool _read;

        /// <summary>The transaction of the send that holds the stream (on the caller's wrapper, the root of a chain of wrappers).</summary>
        private MailTransaction? _holder;

        public bool WasRead => _read || original is { WasRead: true };

        /// <summary>Claims the stream for one send; false while another send holds it.</summary>
        public bool TryClaim(MailTransaction tx) => original?.TryClaim(tx) ?? Interlocked.CompareExchange(ref _holder, tx, null) is null;

        /// <summary>Ends <paramref name="tx"/>'s claim, if it holds the stream.</summary>
        public void Release(MailTransaction tx)
        {
            if (original is null)
            {
                Interlocked.CompareExchange(ref _holder, null, tx);
            }
            else
            {
                original.Release(tx);
            }
        }

        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            _read = true;
            return inner.Read(buffer, offset, count);
        }

        public override int Read(Span<byte> buffer)
        {
            _read = true;
            return inner.Read(buffer);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            _read = true;
            return inner.ReadAsync(buffer, offset, count, cancellationToken);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _read = true;
            return inner.ReadAsync(buffer, cancellationToken);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        // The caller's stream is the caller's: disposing the wrapper (the session never does) leaves it open.
    }

    /// <summary>A pipe reader that notes when it is first read (for every copy of its message, which share it).</summary>
    private sealed class ReadTrackingPipeReader(PipeReader inner) : PipeReader
    {
        private volatile bool _read;

        /// <summary>The transaction of the send that holds the reader.</summary>
        private MailTransaction? _holder;

        public bool WasRead => _read;

        /// <summary>Claims the reader for one send; false while another send holds it.</summary>
        public bool TryClaim(MailTransaction tx) => Interlocked.CompareExchange(ref _holder, tx, null) is null;

        /// <summary>Ends <paramref name="tx"/>'s claim, if it holds the reader.</summary>
        public void Release(MailTransaction tx) => Interlocked.CompareExchange(ref _holder, null, tx);

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            _read = true;
            return inner.ReadAsync(cancellationToken);
        }

        public override bool TryRead(out ReadResult result)
        {
            _read = true;
            return inner.TryRead(out result);
        }
    }
}
