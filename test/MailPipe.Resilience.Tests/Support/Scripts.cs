using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Resilience.Tests.Support;

/// <summary>Transcripts for the scripted server: a server without extensions, so that the session sends one command at a time.</summary>
internal static class Scripts
{
    public const string Sender = "sender@example.test";
    public const string Body = "Subject: retry\r\n\r\nHello.\r\n";

    public static readonly string[] Greeting = ["S: 220 mail.example.test ESMTP", "C: EHLO client.example.test", "S: 250 mail.example.test"];

    public static SmtpMessage Message(params string[] recipients) =>
        SmtpMessage.FromBytes(new SmtpEnvelope(Sender, recipients), Encoding.ASCII.GetBytes(Body));

    /// <summary>The content lines and the final dot, as the client sends them.</summary>
    public static string[] Data(string finalReply) => ["C: Subject: retry", "C: ", "C: Hello.", "C: .", $"S: {finalReply}"];

    public static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();
        return session;
    }
}
