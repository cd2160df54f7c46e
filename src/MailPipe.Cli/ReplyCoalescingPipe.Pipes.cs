using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using SmtpServer;
using SmtpServer.IO;
using SmtpServer.Net;

namespace MailPipe.Cli;

/// <content>The reader SmtpServer is given: reads with an idle deadline (the writer: ReplyCoalescingPipe.Output.cs).</content>
internal sealed partial class ReplyCoalescingPipe
{
    /// <summary>The reader SmtpServer reads commands and messages from.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A PipeReader ends with Complete/CompleteAsync, which dispose the timer source.")]
    private sealed class InputReader : PipeReader
    {
        private static readonly ReadResult EndOfInput = new(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);

        private readonly ReplyCoalescingPipe _pipe;
        private CancellationTokenSource _idle = new();
        private ReadOnlySequence<byte> _last;
        private bool _inMessage;
        private bool _dataTaken;
        private ReadOnlySequence<byte> _bareLine;
        private ReadOnlySequence<byte> _bareLineSource;
        private int _insertedAt;
        private int _inserted;

        public InputReader(ReplyCoalescingPipe pipe, PipeReader inner)
        {
            _pipe = pipe;
            Inner = inner;
        }

        public PipeReader Inner { get; set; }

        /// <summary>
        /// Reads for SmtpServer. Outside a message, a command line is handed over only once its LF is here: SmtpServer
        /// keeps a position of a read that ended mid-line to search the next one, and a line ending in a bare LF is
        /// handed over as a copy (<see cref="EndBareLine"/>), in which such a position does not exist (the session
        /// failed, closed without a reply, when a bare-LF line came in two reads).
        /// </summary>
        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                var result = await ReadOnceAsync(cancellationToken).ConfigureAwait(false);
                if (_inMessage || result.IsCanceled || result.IsCompleted || result.Buffer.PositionOf((byte)'\n') is not null)
                {
                    return result;
                }

                Inner.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
        }

        private async ValueTask<ReadResult> ReadOnceAsync(CancellationToken cancellationToken)
        {
            if (_pipe.Aborted)
            {
                return EndOfInput;
            }

            if (_pipe.ShuttingDown)
            {
                await _pipe.CloseWithReplyAsync(ShutDownReply).ConfigureAwait(false);
                return EndOfInput;
            }

            if (_pipe._output.HasHeld)
            {
                // The client's next command is already here: answer it before the held replies leave.
                if (Inner.TryRead(out var buffered) && !buffered.IsCanceled)
                {
                    return await CheckAsync(buffered).ConfigureAwait(false);
                }

                try
                {
                    await _pipe._output.SendHeldAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException)
                {
                    _pipe.Abort();
                    return EndOfInput;
                }
            }

            _idle.CancelAfter(_pipe._idleTimeout);
            ReadResult result;
            try
            {
                using (cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _idle))
                {
                    result = await Inner.ReadAsync(_idle.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !_pipe.Aborted)
            {
                await _pipe.CloseWithReplyAsync(IdleTimeoutReply).ConfigureAwait(false);
                return EndOfInput;
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException || (ex is OperationCanceledException && _pipe.Aborted))
            {
                _pipe.Abort();
                return EndOfInput;
            }
            finally
            {
                if (!_idle.TryReset())
                {
                    _idle.Dispose();
                    _idle = new CancellationTokenSource();
                }
            }

            if (result.IsCanceled && _pipe.ShuttingDown)
            {
                await _pipe.CloseWithReplyAsync(ShutDownReply).ConfigureAwait(false);
                return EndOfInput;
            }

            return await CheckAsync(result).ConfigureAwait(false);
        }

        /// <summary>
        /// Outside a message, a line that has not ended within <see cref="MaxCommandLine"/> bytes gets 500 and the
        /// close (SmtpServer alone would hold it up to the message size limit). Inside a message, data that has not
        /// ended where a message within the size limit must have gets 552 and the close. (SmtpServer's own strict limit counted the whole buffer,
        /// the terminating dot and any pipelined command after it included, and inside DATA it swallowed its 552 and
        /// waited for more input: the client saw nothing until the idle timeout.)
        /// </summary>
        private async ValueTask<ReadResult> CheckAsync(ReadResult result)
        {
            StartMessageIfAccepted();
            _last = result.Buffer;
            if (!_inMessage && result.Buffer.Length > MaxCommandLine && result.Buffer.Slice(0, MaxCommandLine).PositionOf((byte)'\n') is null)
            {
                await _pipe.CloseWithReplyAsync(LineTooLongReply).ConfigureAwait(false);
                return EndOfInput;
            }

            // A message of at most the limit (its final CRLF included) is at most 4/3 of it on the wire (a line "."
            // CRLF goes as ".." CRLF) and ends with CRLF "." CRLF within that + 3 bytes. The store refuses a message
            // that ended but is over the limit.
            var onWire = _pipe._maxMessageSize + ((_pipe._maxMessageSize + 2) / 3) + 3;
            if (_inMessage && result.Buffer.Length > onWire && !EndsWithin(result.Buffer.Slice(0, onWire)))
            {
                await _pipe.CloseWithReplyAsync(MessageTooBigReply).ConfigureAwait(false);
                return EndOfInput;
            }

            return EndBareLine(result);
        }

        /// <summary>
        /// Outside a message, a command line ending in a bare LF is given to SmtpServer (which waits for CRLF) as a copy
        /// ending in CRLF, alone; <see cref="AdvanceTo(SequencePosition, SequencePosition)"/> maps its positions back. A
        /// bare LF ends a command line at Postfix, Exim and aiosmtpd alike, and RFC 5321 §2.3.8 forbids the client to
        /// send it, not the server to take it; the client would otherwise get no reply at all. Message data is left
        /// alone: only CRLF "." CRLF ends a message (no SMTP smuggling). A <c>RCPT TO:&lt;Postmaster&gt;</c> line (no
        /// domain, which SmtpServer's parser refuses with 502, while RFC 5321 §4.5.1 requires a server to take it) is
        /// given as a copy too, with <see cref="ReceivedMailboxes.PostmasterDomain"/> after the local part.
        /// </summary>
        private ReadResult EndBareLine(ReadResult result)
        {
            _bareLine = default;
            _inserted = 0;
            if (_inMessage || result.IsCanceled || result.Buffer.PositionOf((byte)'\n') is not { } lineFeed)
            {
                return result;
            }

            var line = result.Buffer.Slice(0, lineFeed);
            var crlf = !line.IsEmpty && line.Slice(line.Length - 1).FirstSpan[0] == (byte)'\r';
            var content = crlf ? line.Slice(0, line.Length - 1) : line;
            var postmaster = ReceivedMailboxes.PostmasterPathEnd(content);
            if (crlf && postmaster < 0)
            {
                return result;
            }

            byte[] inserted = postmaster < 0 ? [] : [(byte)'@', .. ReceivedMailboxes.PostmasterDomainBytes];
            var copy = new byte[content.Length + inserted.Length + 2];
            var at = postmaster < 0 ? (int)content.Length : postmaster;
            content.Slice(0, at).CopyTo(copy);
            inserted.CopyTo(copy, at);
            content.Slice(at).CopyTo(copy.AsSpan(at + inserted.Length));
            copy[^2] = (byte)'\r';
            copy[^1] = (byte)'\n';
            _bareLineSource = result.Buffer.Slice(0, line.Length + 1);
            _bareLine = new ReadOnlySequence<byte>(copy);
            _insertedAt = at;
            _inserted = inserted.Length;
            _last = _bareLine;
            return new ReadResult(_bareLine, isCanceled: false, isCompleted: false);
        }

        /// <summary>
        /// A position in the copy made by <see cref="EndBareLine"/> as a position in the input: before the inserted
        /// domain, the same offset; within it, where it was inserted; after it, shifted back; at or past its CR, after the LF.
        /// </summary>
        private SequencePosition InInput(SequencePosition position)
        {
            var offset = _bareLine.Slice(0, position).Length;
            if (offset >= _bareLine.Length - 2)
            {
                return _bareLineSource.End;
            }

            return _bareLineSource.GetPosition(offset <= _insertedAt ? offset : Math.Max(_insertedAt, offset - _inserted));
        }

        /// <summary>Whether <paramref name="data"/> holds the end of a message (CRLF "." CRLF).</summary>
        private static bool EndsWithin(ReadOnlySequence<byte> data)
        {
            var reader = new SequenceReader<byte>(data);
            return reader.TryReadTo(out ReadOnlySequence<byte> _, "\r\n.\r\n"u8, advancePastDelimiter: false);
        }

        /// <summary>
        /// Follows SmtpServer through its input: a consumed <c>DATA</c> line that SmtpServer answers with 354 starts a
        /// message (<see cref="StartMessageIfAccepted"/>), and the next consumption (the message up to its terminating
        /// dot) ends it.
        /// </summary>
        private void Consumed(SequencePosition consumed)
        {
            var line = _last.Slice(_last.Start, consumed);
            if (line.IsEmpty)
            {
                return;
            }

            if (_inMessage)
            {
                _inMessage = false;
                return;
            }

            LastRawCommand = _inserted > 0 ? _bareLineSource.ToArray()
                : line.Length <= MaxCommandLine && !IsPlain(line) ? line.ToArray() : null;
            Span<byte> text = stackalloc byte[16];
            if (line.Length > text.Length)
            {
                return;
            }

            line.CopyTo(text);
            if (System.Text.Ascii.EqualsIgnoreCase(text[..(int)line.Length].TrimEnd("\r\n "u8), "DATA"u8))
            {
                _dataTaken = true;
                _pipe._output.LastReplyCode = 0;
            }
        }

        /// <summary>
        /// After a consumed DATA line, at the next read (SmtpServer has answered DATA by then): a message follows only
        /// when the answer was 354. A refused DATA (no recipient, bad sequence) is followed by another command, which
        /// may end in a bare LF as any other.
        /// </summary>
        private void StartMessageIfAccepted()
        {
            if (_dataTaken)
            {
                _dataTaken = false;
                _inMessage = _pipe._output.LastReplyCode == 354;
            }
        }

        /// <summary>
        /// The command line SmtpServer took last when it held an octet above 127 (a UTF-8 path, RFC 6531) or a
        /// backslash (a quoted pair), or was a <c>RCPT TO:&lt;Postmaster&gt;</c> given to it with a domain (as the client wrote it), else <see langword="null"/>: SmtpServer decodes a path's domain as ASCII and
        /// unescapes a quoted local part as a .NET regular expression would (<c>\u0041</c> becomes <c>A</c>), so its
        /// mailbox filter reads the path from here while the command runs (see <see cref="ReceivedMailboxes"/>).
        /// </summary>
        public byte[]? LastRawCommand { get; private set; }

        private static bool IsPlain(ReadOnlySequence<byte> line)
        {
            foreach (var segment in line)
            {
                if (!System.Text.Ascii.IsValid(segment.Span) || segment.Span.Contains((byte)'\\'))
                {
                    return false;
                }
            }

            return true;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (_pipe.Aborted)
            {
                result = EndOfInput;
                return true;
            }

            if (!Inner.TryRead(out result))
            {
                return false;
            }

            StartMessageIfAccepted();
            _last = result.Buffer;
            result = EndBareLine(result);
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed)
        {
            if (!_pipe.Aborted)
            {
                Consumed(consumed);
                Inner.AdvanceTo(_bareLine.IsEmpty ? consumed : InInput(consumed));
                _bareLine = default;
            }
        }

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            if (!_pipe.Aborted)
            {
                Consumed(consumed);
                if (_bareLine.IsEmpty)
                {
                    Inner.AdvanceTo(consumed, examined);
                }
                else
                {
                    Inner.AdvanceTo(InInput(consumed), InInput(examined));
                    _bareLine = default;
                }
            }
        }

        public override void CancelPendingRead() => Inner.CancelPendingRead();

        public override void Complete(Exception? exception = null)
        {
            // SmtpServer ends every session with CompleteAsync; this path only completes the reader.
            Inner.Complete(exception);
            _idle.Dispose();
        }

        /// <summary>SmtpServer's last call on a session: the held replies (221 to QUIT, a 421) leave before the close.</summary>
        public override async ValueTask CompleteAsync(Exception? exception = null)
        {
            if (!_pipe.Aborted && _pipe._output.HasHeld)
            {
                try
                {
                    using var limit = new CancellationTokenSource(ClosingWriteLimit);
                    await _pipe._output.SendHeldAsync(limit.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
                {
                    // The client is gone or not reading.
                }
            }

            await Inner.CompleteAsync(exception).ConfigureAwait(false);
            _idle.Dispose();
        }
    }
}
