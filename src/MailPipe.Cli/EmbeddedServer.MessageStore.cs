using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Win32.SafeHandles;
using SmtpServer;
using SmtpServer.Authentication;
using SmtpServer.ComponentModel;
using SmtpServer.Mail;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace MailPipe.Cli;

/// <content>The message store: one file per message, saved before the 250.</content>
internal sealed partial class EmbeddedServer
{
    /// <summary>Saves each message to <c>&lt;timestamp&gt;-&lt;n&gt;.eml</c>, never over an existing file, before the 250.</summary>
    /// <remarks>
    /// Per message: one <c>open</c> (create, never over an existing file), one <c>pwritev</c> with the whole message,
    /// one <c>close</c>. No <see cref="FileStream"/> (its position and length calls), no advisory lock: the lock that
    /// <see cref="FileShare.None"/> asks for costs two <c>flock</c> calls and protects nothing here, as every file is
    /// new and only ever written by this server.
    /// </remarks>
    private sealed class OutboxMessageStore : MessageStore
    {
        private static readonly ReadOnlyMemory<byte> Crlf = "\r\n"u8.ToArray();

        /// <summary>What a dot-string holds (RFC 5321 §4.1.2 atext and dots; UTF-8 allowed, RFC 6531).</summary>
        private static readonly System.Buffers.SearchValues<char> AtextOrDot = System.Buffers.SearchValues.Create(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~.");
        private readonly Action<SavedMessage>? _received;
        private readonly int _maxMessageSize;
        private readonly Lock _stampLock = new();
        private long _stampSecond = -1;
        private string _stamp = string.Empty;
        private int _count;

        public OutboxMessageStore(string directory, Action<SavedMessage>? received, int maxMessageSize)
        {
            Directory = directory;
            _received = received;
            _maxMessageSize = maxMessageSize;
        }

        public string Directory { get; }

        public ConcurrentQueue<string> Saved { get; } = new();

        public override Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            // SmtpServer un-stuffs every line but the first: it looks for CRLF ".." (RFC 5321 §4.5.2). A first line that
            // starts with a dot came stuffed, as every such line does, so its first dot goes.
            if (!buffer.IsEmpty && buffer.FirstSpan[0] == (byte)'.')
            {
                buffer = buffer.Slice(1);
            }

            // SmtpServer hands over the data without the CRLF that ends its last line (it takes it as part of
            // CRLF "." CRLF); RFC 5321 §4.1.1.4 counts it as the message's, so it goes back in. Empty data was one
            // empty line: SmtpServer never ends a message on a "." right after DATA (it waits for CRLF "." CRLF).
            var parts = new List<ReadOnlyMemory<byte>>(buffer.IsSingleSegment ? 2 : 8);
            foreach (var segment in buffer)
            {
                parts.Add(segment);
            }

            parts.Add(Crlf);
            var size = buffer.Length + Crlf.Length;
            if (size > _maxMessageSize)
            {
                // The size as SIZE counts it (RFC 1870 §3: un-stuffed); the connection stays usable.
                return Task.FromResult(new SmtpResponse(SmtpReplyCode.SizeLimitExceeded, "5.3.4 message size exceeds the limit; not saved"));
            }

            var stamp = Stamp();
            while (true)
            {
                var n = Interlocked.Increment(ref _count);
                var name = string.Create(CultureInfo.InvariantCulture, $"{stamp}-{n}.eml");
                var path = Path.Combine(Directory, name);
                SafeFileHandle file;
                try
                {
                    // A small file is written at once: an asynchronous write would cost a thread-pool hop per message.
                    file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
                }
                catch (IOException) when (File.Exists(path))
                {
                    // The name is taken (a file left from an earlier run): the next number.
                    continue;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return Task.FromResult(new SmtpResponse(SmtpReplyCode.TransactionFailed, $"4.3.0 cannot save the message: {ex.Message}"));
                }

                try
                {
                    using (file)
                    {
                        RandomAccess.Write(file, parts, fileOffset: 0);
                    }
                }
                catch (IOException ex)
                {
                    TryDelete(path);
                    return Task.FromResult(new SmtpResponse(SmtpReplyCode.TransactionFailed, $"4.3.0 cannot save the message: {ex.Message}"));
                }

                Saved.Enqueue(path);
                _received?.Invoke(new SavedMessage(
                    DateTimeOffset.UtcNow,
                    Address(transaction.From),
                    [.. transaction.To.Select(Address)],
                    size,
                    path,
                    context.Properties.TryGetValue(EndpointListener.RemoteEndPointKey, out var remote) ? remote as EndPoint : null,
                    context.Pipe.IsSecure,
                    context.Authentication.IsAuthenticated ? context.Authentication.User : null));
                return Task.FromResult(new SmtpResponse(SmtpReplyCode.Ok, $"2.0.0 saved as {name}"));
            }
        }

        /// <summary>
        /// The mailbox as it was received: SmtpServer hands over a quoted local part (RFC 5321 §4.1.2) without its
        /// quotes and quoted pairs unescaped, so a local part that is not a dot-string is quoted again (RFC 5321 §4.1.2);
        /// where SmtpServer's reading differs from the client's text (a UTF-8 domain, RFC 6531; a quoted pair), the
        /// mailbox is the client's text (<see cref="ReceivedMailboxes"/>).
        /// </summary>
        private static string Address(IMailbox? mailbox)
        {
            if (mailbox?.AsAddress() is null)
            {
                return string.Empty;
            }

            if (ReceivedMailboxes.AsSent(mailbox) is { } sent)
            {
                return sent;
            }

            var local = mailbox.User.AsSpan();
            var dotString = local.Length > 0 && local[0] != '.' && local[^1] != '.' && !local.Contains("..", StringComparison.Ordinal);
            foreach (var c in local)
            {
                dotString &= c > '\x7F' || AtextOrDot.Contains(c);
            }

            return dotString ? $"{mailbox.User}@{mailbox.Host}" : $"\"{mailbox.User.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"@{mailbox.Host}";
        }

        /// <summary>The current second as the file names' timestamp, formatted once per second.</summary>
        private string Stamp()
        {
            var now = DateTime.UtcNow;
            var second = now.Ticks / TimeSpan.TicksPerSecond;
            lock (_stampLock)
            {
                if (second != _stampSecond)
                {
                    _stamp = now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
                    _stampSecond = second;
                }

                return _stamp;
            }
        }

        private static void TryDelete(string path)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Left behind; the reply says the message was not taken.
            }
        }
    }
}
