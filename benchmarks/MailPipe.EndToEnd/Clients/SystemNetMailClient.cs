using System.Net.Mail;
using System.Net.Mime;
using System.Text;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// System.Net.Mail.SmtpClient, <c>SendMailAsync</c> per message. It builds the MIME itself from a
/// <see cref="MailMessage"/> holding the same body text. It keeps its connection between sends (EHLO once), sends
/// MAIL, RCPT… and DATA one at a time, and writes the content in several small writes.
/// </summary>
internal sealed class SystemNetMailClient : InProcessClientRunner
{
    public override string Name => "sysnetmail";

    public override string Description => "System.Net.Mail.SmtpClient.SendMailAsync(MailMessage), same body text; it builds the MIME itself";

    protected override Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var client = new SmtpClient("127.0.0.1", port)
        {
            DeliveryMethod = SmtpDeliveryMethod.Network,
            EnableSsl = false,
            UseDefaultCredentials = false,
        };
        var message = new MailMessage
        {
            From = new MailAddress(Workload.Sender, "Sender"),
            Subject = "MailPipe end-to-end benchmark",
            Body = workload.BodyText,
            BodyEncoding = Encoding.ASCII,
            BodyTransferEncoding = TransferEncoding.SevenBit,
        };
        foreach (var recipient in workload.Recipients)
        {
            message.To.Add(recipient);
        }

        return Task.FromResult<IClientSession>(new Session(client, message));
    }

    private sealed class Session(SmtpClient client, MailMessage message) : IClientSession
    {
        public ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) => new(client.SendMailAsync(message, cancellationToken));

        public ValueTask DisposeAsync()
        {
            message.Dispose();
            client.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
