using System.Buffers;
using System.IO.Pipelines;

namespace MailPipe.Cli;

/// <content>The writer SmtpServer is given: replies held while more commands wait.</content>
internal sealed partial class ReplyCoalescingPipe
{
    /// <summary>The writer SmtpServer writes replies to: <see cref="FlushAsync"/> holds them until <see cref="SendHeldAsync"/>.</summary>
    private sealed class HeldOutputWriter : PipeWriter
    {
        private readonly TimeSpan _sendLimit;
        private readonly Action _abort;
        private long _held;
        private Memory<byte> _writing;
        private int _lineLength;
        private int _lineCode;

        /// <param name="inner">The socket's (or TLS stream's) writer.</param>
        /// <param name="sendLimit">How long a send may wait for the client to read (the idle timeout).</param>
        /// <param name="abort">Closes the connection: a send that waits longer fails, and the session ends.</param>
        public HeldOutputWriter(PipeWriter inner, TimeSpan sendLimit, Action abort)
        {
            Inner = inner;
            _sendLimit = sendLimit;
            _abort = abort;
        }

        public PipeWriter Inner { get; set; }

        /// <summary>Whether replies were written and not sent yet.</summary>
        public bool HasHeld => _held > 0;

        /// <summary>The reply code of the last complete reply line written (354 for the go-ahead to DATA), or 0 (also set by the reader).</summary>
        public int LastReplyCode { get; set; }

        public override void Advance(int bytes)
        {
            Note(_writing.Span[..bytes]);
            _writing = default;
            Inner.Advance(bytes);
            _held += bytes;
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => _writing = Inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => (_writing = Inner.GetMemory(sizeHint)).Span;

        /// <summary>Follows the reply lines written, for <see cref="LastReplyCode"/>.</summary>
        private void Note(ReadOnlySpan<byte> written)
        {
            foreach (var b in written)
            {
                if (b == (byte)'\n')
                {
                    LastReplyCode = _lineLength >= 3 && _lineCode >= 0 ? _lineCode : 0;
                    (_lineLength, _lineCode) = (0, 0);
                }
                else if (_lineLength++ < 3)
                {
                    _lineCode = _lineCode >= 0 && char.IsAsciiDigit((char)b) ? (_lineCode * 10) + (b - '0') : -1;
                }
            }
        }

        public override void CancelPendingFlush() => Inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => Inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => Inner.CompleteAsync(exception);

        /// <summary>Holds the replies (sent by the next read that would wait), unless too many are held already.</summary>
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
            _held > MaxHeldBytes ? SendHeldCoreAsync(cancellationToken) : ValueTask.FromResult(new FlushResult(isCanceled: false, isCompleted: false));

        /// <summary>Sends the held replies.</summary>
        public async ValueTask SendHeldAsync(CancellationToken cancellationToken) => await SendHeldCoreAsync(cancellationToken).ConfigureAwait(false);

        private ValueTask<FlushResult> SendHeldCoreAsync(CancellationToken cancellationToken)
        {
            if (_held == 0)
            {
                return ValueTask.FromResult(new FlushResult(isCanceled: false, isCompleted: false));
            }

            _held = 0;
            var flush = Inner.FlushAsync(cancellationToken);
            return flush.IsCompleted ? flush : WaitForClientAsync(flush);
        }

        /// <summary>
        /// The client is not reading its replies (its window is full): it gets the idle timeout as a client that does
        /// not write does, and then the connection is closed (the flush fails), so that it cannot hold a connection slot.
        /// </summary>
        private async ValueTask<FlushResult> WaitForClientAsync(ValueTask<FlushResult> flush)
        {
            using var limit = new CancellationTokenSource(_sendLimit);
            using (limit.Token.UnsafeRegister(static state => ((Action)state!)(), _abort))
            {
                return await flush.ConfigureAwait(false);
            }
        }
    }
}
