using System.Runtime.CompilerServices;

namespace MailPipe.EndToEnd.Clients;

/// <summary>MailPipe's <see cref="AsyncSmtpSession"/> command by command: MAIL, RCPT…, DATA, then the content from memory.</summary>
internal sealed class MailPipeSessionClient : InProcessClientRunner
{
    public override string Name => "mailpipe";

    public override string Description => "MailPipe AsyncSmtpSession, one command at a time: MailFromAsync, RcptToAsync per recipient, DataAsync, SendMessageDataAsync(ReadOnlyMemory<byte>)";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", port, cancellationToken: cancellationToken);
        var ehlo = await session.EhloAsync("client.example.test", cancellationToken);
        Expect(250, ehlo.Code, "EHLO");
        return new Session(session, workload);
    }

    private sealed class Session(AsyncSmtpSession session, Workload workload) : IClientSession
    {
        private readonly ReadOnlyMemory<byte> _message = workload.Message;

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
        public async ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken)
        {
            Expect(250, (await session.MailFromAsync(Workload.Sender, cancellationToken: cancellationToken)).Code, "MAIL");
            var recipients = workload.Recipients;
            for (var i = 0; i < recipients.Count; i++)
            {
                Expect(250, (await session.RcptToAsync(recipients[i], cancellationToken: cancellationToken)).Code, "RCPT");
            }

            Expect(354, (await session.DataAsync(cancellationToken)).Code, "DATA");
            Expect(250, (await session.SendMessageDataAsync(_message, cancellationToken)).Code, "end of data");
        }

        public async ValueTask DisposeAsync()
        {
            await session.QuitAsync();
            await session.DisposeAsync();
        }
    }
}
