using System.Runtime.CompilerServices;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// MailPipe's envelope API: <c>AsyncSmtpSession.SendAsync(SmtpEnvelope, ReadOnlyMemory&lt;byte&gt;)</c> per message
/// (MAIL, RCPT… and DATA pipelined in one flush when the server offers PIPELINING), or with <paramref name="batch"/>
/// <c>SendBatchAsync</c> over the whole run (each message's end of data goes out with the next one's envelope).
/// </summary>
internal sealed class MailPipeSendClient(bool batch) : InProcessClientRunner
{
    public override string Name => batch ? "mailpipe-sendbatch" : "mailpipe-send";

    public override string Description => batch
        ? "MailPipe AsyncSmtpSession.SendBatchAsync(IEnumerable<SmtpMessage>) over the whole run (pipelined across messages)"
        : "MailPipe AsyncSmtpSession.SendAsync(SmtpEnvelope, ReadOnlyMemory<byte>) per message (MAIL, RCPTs and DATA or the first BDAT in one flush)";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", port, cancellationToken: cancellationToken);
        Expect(250, (await session.EhloAsync("client.example.test", cancellationToken)).Code, "EHLO");
        var envelope = new SmtpEnvelope(Workload.Sender, [.. workload.Recipients]);
        return batch ? new BatchSession(session, envelope, workload.Message) : new Session(session, envelope, workload.Message);
    }

    private static void Check(SmtpSendResult result)
    {
        if (!result.IsAccepted)
        {
            throw new InvalidOperationException($"Message not accepted: {result}");
        }
    }

    private class Session(AsyncSmtpSession session, SmtpEnvelope envelope, ReadOnlyMemory<byte> content) : IClientSession
    {
        protected AsyncSmtpSession Smtp => session;

        protected SmtpEnvelope Envelope => envelope;

        protected ReadOnlyMemory<byte> Content => content;

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        public async ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) =>
            Check(await session.SendAsync(envelope, content, cancellationToken));

        public async ValueTask DisposeAsync()
        {
            await session.QuitAsync();
            await session.DisposeAsync();
        }
    }

    private sealed class BatchSession(AsyncSmtpSession session, SmtpEnvelope envelope, ReadOnlyMemory<byte> content)
        : Session(session, envelope, content), IBatchClientSession
    {
        public async Task SendBatchAsync(int count, CancellationToken cancellationToken)
        {
            var message = SmtpMessage.FromBytes(Envelope, Content);
            var results = await Smtp.SendBatchAsync(Enumerable.Repeat(message, count), cancellationToken);
            foreach (var result in results)
            {
                Check(result);
            }
        }
    }
}
