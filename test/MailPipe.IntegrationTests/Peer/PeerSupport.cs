using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>What the peer acceptance suite's classes share: the message they send and a session greeted with EHLO.</summary>
internal static class PeerSupport
{
    /// <summary>A small RFC 5322 message from <paramref name="from"/>, with a unique Message-Id when asked (to find it in the Maildir).</summary>
    public static byte[] Message(string from, string subject, bool messageId = false, string body = "Peer acceptance test.") =>
        Encoding.ASCII.GetBytes($"From: <{from}>\r\nSubject: {subject}\r\n{(messageId ? $"Message-Id: <{Guid.NewGuid():N}@example.test>\r\n" : "")}\r\n{body}\r\n");

    /// <summary>A session connected to <paramref name="port"/> on the test host and greeted with EHLO (250 asserted).</summary>
    public static async Task<AsyncSmtpSession> ConnectAsync(int port, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options ?? new SmtpSessionOptions());
        await session.ConnectAsync(TestServers.Host, port);
        (await session.HelloAsync("peer-client.example.test")).Code.Should().Be(250);
        return session;
    }
}
