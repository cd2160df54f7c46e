using System.Net.Sockets;
using System.Security.Cryptography;

namespace MailPipe.Tests.Tls;

/// <summary>
/// With TLS 1.3 a server that requires a client certificate and refuses ours (or none) sends its alert after the
/// client's handshake has finished (RFC 8446 §4.4.2.4: certificate_required; unknown_ca for one it does not trust),
/// so the failure comes from the first read, not the handshake. It was reported with .NET's outer words only:
/// "Connection closed while waiting for the greeting: The decryption operation failed, see inner exception." — the
/// alert, in the inner exceptions, was in no log line, health check or CLI message (met with
/// <c>openssl s_server -Verify 1 -verify_return_error -tls1_3</c>; TLS 1.2 fails in the handshake and was named).
/// A read failure's message now carries the inner exceptions' messages, on one line, each once.
/// </summary>
public class TlsAlertAfterHandshakeTests
{
    [Fact]
    public async Task A_TLS_alert_read_after_the_handshake_is_named_in_the_message()
    {
        // What SslStream throws on Linux when the alert arrives (its inner types are internal: the same messages).
        var failure = new IOException(
            "The decryption operation failed, see inner exception.",
            new IOException("Decrypt failed with OpenSSL error - SSL_ERROR_SSL.", new CryptographicException("error:0A00045C:SSL routines::tlsv13 alert certificate required")));
        await using var session = new AsyncSmtpSession();

        var thrown = (await FluentActions.Awaiting(() => session.ConnectAsync(new ReadFailsStream(failure)))
            .Should().ThrowAsync<SmtpException>()).Which;

        thrown.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        thrown.Message.Should().Be("Connection closed while waiting for the greeting: Decrypt failed with OpenSSL error - SSL_ERROR_SSL: error:0A00045C:SSL routines::tlsv13 alert certificate required.");
        thrown.InnerException.Should().BeSameAs(failure);
    }

    [Fact]
    public async Task A_socket_error_inside_a_read_failure_is_not_repeated_and_a_line_break_does_not_reach_the_message()
    {
        var reset = new IOException("Unable to read data from the transport connection: Connection reset by peer.", new SocketException((int)SocketError.ConnectionReset));
        var multiLine = new IOException("outer, see inner exception", new InvalidOperationException("first line\r\nsecond line"));
        await using var first = new AsyncSmtpSession();
        await using var second = new AsyncSmtpSession();

        var resetMessage = (await FluentActions.Awaiting(() => first.ConnectAsync(new ReadFailsStream(reset))).Should().ThrowAsync<SmtpException>()).Which.Message;
        var multiLineMessage = (await FluentActions.Awaiting(() => second.ConnectAsync(new ReadFailsStream(multiLine))).Should().ThrowAsync<SmtpException>()).Which.Message;

        resetMessage.Should().Be("Connection closed while waiting for the greeting: Unable to read data from the transport connection: Connection reset by peer.");
        multiLineMessage.Should().Be("Connection closed while waiting for the greeting: first line second line.");
    }

    /// <summary>A connection whose every read fails with <paramref name="failure"/>; writes are taken.</summary>
    private sealed class ReadFailsStream(Exception failure) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => throw failure;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromException<int>(failure);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
        }
    }
}
