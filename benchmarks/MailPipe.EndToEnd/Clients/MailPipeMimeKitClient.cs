using System.Runtime.CompilerServices;
using MimeKit;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// MailPipe.MimeKit: <c>AsyncSmtpSession.SendAsync(MimeMessage)</c> per message, or with <paramref name="batch"/>
/// <c>SendBatchAsync(IEnumerable&lt;MimeMessage&gt;)</c> over the whole run. The <see cref="MimeMessage"/> is the one the
/// MailKit client sends (parsed once from the same bytes); MimeKit writes it into the SMTP data on every send, as
/// MailKit does, and the envelope comes from its headers (From, To).
/// </summary>
internal sealed class MailPipeMimeKitClient(bool batch) : InProcessClientRunner
{
    public override string Name => batch ? "mailpipe-mimekit-batch" : "mailpipe-mimekit";

    public override string Description => batch
        ? "MailPipe.MimeKit AsyncSmtpSession.SendBatchAsync(IEnumerable<MimeMessage>) over the whole run (pipelined across messages)"
        : "MailPipe.MimeKit AsyncSmtpSession.SendAsync(MimeMessage) per message (envelope from the headers, MimeKit writes into the data as it goes out)";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", port, cancellationToken: cancellationToken);
        Expect(250, (await session.EhloAsync("client.example.test", cancellationToken)).Code, "EHLO");
        using var stream = new MemoryStream(workload.Message, writable: false);
        var message = await MimeMessage.LoadAsync(stream, cancellationToken);
        return batch ? new BatchSession(session, message) : new Session(session, message);
    }

    private static void Check(SmtpSendResult result)
    {
        if (!result.IsAccepted)
        {
            throw new InvalidOperationException($"Message not accepted: {result}");
        }
    }

    private class Session(AsyncSmtpSession session, MimeMessage message) : IClientSession
    {
        protected AsyncSmtpSession Smtp => session;

        protected MimeMessage Message => message;

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        public async ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) =>
            Check(await session.SendAsync(message, cancellationToken));

        public async ValueTask DisposeAsync()
        {
            await session.QuitAsync();
            await session.DisposeAsync();
            message.Dispose();
        }
    }

    private sealed class BatchSession(AsyncSmtpSession session, MimeMessage message) : Session(session, message), IBatchClientSession
    {
        public async Task SendBatchAsync(int count, CancellationToken cancellationToken)
        {
            var results = await Smtp.SendBatchAsync(Enumerable.Repeat(Message, count), cancellationToken);
            foreach (var result in results)
            {
                Check(result);
            }
        }
    }
}
