using System.Runtime.CompilerServices;
using System.Text;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// What MailPipe's I/O core does with RFC 2920 pipelining and the least work per message: the public raw API
/// (<see cref="AsyncSmtpSession.SendBytesAsync"/> + <see cref="AsyncSmtpSession.ReceiveReplyAsync"/>) sends each
/// message's content and end-of-data together with the next message's MAIL, RCPT… and DATA in one write, then reads
/// the replies: one wait per message. The content is dot-stuffed once, up front (SendBytes takes prepared bytes).
/// Not an API to use: what the I/O core can do with one wait per message, to compare <c>SendBatchAsync</c> with.
/// </summary>
internal sealed class MailPipeRawPipelinedClient : InProcessClientRunner
{
    public override string Name => "mailpipe-raw-pipelined";

    public override string Description => "MailPipe raw API, RFC 2920 groups [content + . + MAIL + RCPT… + DATA] in one write via SendBytesAsync, replies via ReceiveReplyAsync: 1 wait per message (upper bound, not a sending API)";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", port, cancellationToken: cancellationToken);
        var ehlo = await session.EhloAsync("client.example.test", cancellationToken);
        Expect(250, ehlo.Code, "EHLO");
        if (!session.Capabilities.SupportsPipelining)
        {
            throw new InvalidOperationException("The server does not advertise PIPELINING.");
        }

        return new Session(session, workload);
    }

    /// <summary>The data as it goes on the wire, for content that already uses CRLF line ends: a leading '.' doubled, then ".\r\n".</summary>
    internal static byte[] Stuff(byte[] message)
    {
        var output = new List<byte>(message.Length + (message.Length / 40) + 8);
        var atLineStart = true;
        foreach (var b in message)
        {
            if (atLineStart && b == (byte)'.')
            {
                output.Add((byte)'.');
            }

            output.Add(b);
            atLineStart = b == (byte)'\n';
        }

        output.AddRange(".\r\n"u8.ToArray());
        return [.. output];
    }

    private sealed class Session : IClientSession
    {
        private readonly AsyncSmtpSession _session;
        private readonly int _recipients;
        private readonly ReadOnlyMemory<byte> _envelope;
        private readonly ReadOnlyMemory<byte> _content;
        private readonly ReadOnlyMemory<byte> _contentAndNextEnvelope;
        private bool _dataAccepted;

        public Session(AsyncSmtpSession session, Workload workload)
        {
            _session = session;
            _recipients = workload.Recipients.Count;
            var envelope = new StringBuilder();
            envelope.Append("MAIL FROM:<").Append(Workload.Sender).Append(">\r\n");
            foreach (var recipient in workload.Recipients)
            {
                envelope.Append("RCPT TO:<").Append(recipient).Append(">\r\n");
            }

            envelope.Append("DATA\r\n");
            var envelopeBytes = Encoding.ASCII.GetBytes(envelope.ToString());
            var content = Stuff(workload.Message);
            _envelope = envelopeBytes;
            _content = content;
            _contentAndNextEnvelope = (byte[])[.. content, .. envelopeBytes];
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        public async ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken)
        {
            if (!_dataAccepted)
            {
                await _session.SendBytesAsync(_envelope, cancellationToken);
                await ReadEnvelopeRepliesAsync(cancellationToken);
            }

            await _session.SendBytesAsync(isLast ? _content : _contentAndNextEnvelope, cancellationToken);
            Expect(250, (await _session.ReceiveReplyAsync(cancellationToken)).Code, "end of data");
            _dataAccepted = false;
            if (!isLast)
            {
                await ReadEnvelopeRepliesAsync(cancellationToken);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _session.QuitAsync();
            await _session.DisposeAsync();
        }

        private async Task ReadEnvelopeRepliesAsync(CancellationToken cancellationToken)
        {
            Expect(250, (await _session.ReceiveReplyAsync(cancellationToken)).Code, "MAIL");
            for (var i = 0; i < _recipients; i++)
            {
                Expect(250, (await _session.ReceiveReplyAsync(cancellationToken)).Code, "RCPT");
            }

            Expect(354, (await _session.ReceiveReplyAsync(cancellationToken)).Code, "DATA");
            _dataAccepted = true;
        }
    }
}
