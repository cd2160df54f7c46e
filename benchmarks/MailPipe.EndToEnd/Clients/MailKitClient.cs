using System.Net;
using System.Net.Sockets;
using MailKit.Security;
using MimeKit;
using MailKitSmtpClient = MailKit.Net.Smtp.SmtpClient;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// MailKit's SmtpClient, async API, one connection: <c>SendAsync(message, sender, recipients)</c> per message. The
/// <see cref="MimeMessage"/> is parsed once from the same bytes; MailKit serialises it on every send (as a user's would).
/// With <paramref name="noDelay"/> the harness connects the socket itself with <see cref="Socket.NoDelay"/> and hands it
/// to MailKit (<c>ConnectAsync(Socket, …)</c>): MailKit has no NoDelay setting of its own.
/// </summary>
internal sealed class MailKitClient(bool noDelay) : InProcessClientRunner
{
    public override string Name => noDelay ? "mailkit-nodelay" : "mailkit";

    public override string Description => noDelay
        ? "MailKit 4.18 SmtpClient.SendAsync over a socket the harness connected with NoDelay = true (Nagle off)"
        : "MailKit 4.18 SmtpClient.SendAsync, default connection (ConnectAsync(host, port, SecureSocketOptions.None))";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var client = new MailKitSmtpClient();
        try
        {
            if (noDelay)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
                await client.ConnectAsync(socket, "127.0.0.1", port, SecureSocketOptions.None, cancellationToken);
            }
            else
            {
                await client.ConnectAsync("127.0.0.1", port, SecureSocketOptions.None, cancellationToken);
            }
        }
        catch
        {
            client.Dispose();
            throw;
        }

        using var stream = new MemoryStream(workload.Message, writable: false);
        var message = await MimeMessage.LoadAsync(stream, cancellationToken);
        var sender = MailboxAddress.Parse(Workload.Sender);
        var recipients = workload.Recipients.Select(MailboxAddress.Parse).ToArray();
        return new Session(client, message, sender, recipients);
    }

    private sealed class Session(MailKitSmtpClient client, MimeMessage message, MailboxAddress sender, MailboxAddress[] recipients) : IClientSession
    {
        public ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) =>
            new(client.SendAsync(message, sender, recipients, cancellationToken));

        public async ValueTask DisposeAsync()
        {
            try
            {
                await client.DisconnectAsync(quit: true);
            }
            finally
            {
                client.Dispose();
                message.Dispose();
            }
        }
    }
}
