using System.Text;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// What a user building a service has: a generic host made by <see cref="Host.CreateApplicationBuilder()"/> whose
/// configuration is an appsettings JSON document, and Postfix's Maildir to count what was delivered.
/// </summary>
internal static class PeerHost
{
    /// <summary>A host builder whose configuration is <paramref name="json"/> (as appsettings.json would give it).</summary>
    public static HostApplicationBuilder Builder(string json)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory });
        // Only this document: the test folder holds the sample's appsettings.json, which the default sources would read.
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        return builder;
    }

    /// <summary>A message with a Message-Id of its own, to count its copies in a Maildir.</summary>
    public static (string MessageId, byte[] Content) Message(string subject)
    {
        var id = $"<{Guid.NewGuid():N}@peer17b.test>";
        var content = Encoding.ASCII.GetBytes($"From: peer@example.test\r\nTo: someone@example.test\r\nMessage-Id: {id}\r\nSubject: {subject}\r\n\r\nHello from the peer suite.\r\n");
        return (id, content);
    }

    /// <summary>
    /// How many copies of <paramref name="messageId"/> the Maildir of <paramref name="recipient"/> holds, once a first
    /// copy and a marker (a message sent after the one under test, on a connection of its own, so after any retry of
    /// it was queued) have both arrived: Postfix delivers asynchronously and not always in the order it queued.
    /// </summary>
    public static async Task<int> CopiesAsync(string recipient, string messageId, Func<Task> sendMarker)
    {
        await sendMarker();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var texts = TestServers.MaildirFiles(recipient).Select(File.ReadAllText).ToList();
            var copies = texts.Count(t => t.Contains("Message-Id: " + messageId, StringComparison.Ordinal));
            if (copies > 0 && texts.Any(t => t.Contains("Subject: marker", StringComparison.Ordinal)))
            {
                return copies;
            }

            if (DateTime.UtcNow > deadline)
            {
                return copies;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Sends the marker of <see cref="CopiesAsync"/> to <paramref name="recipient"/> on a fresh connection of its own.</summary>
    public static async Task SendMarkerAsync(string recipient)
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None, EhloName = "marker.peer17b.test" });
        var result = await sender.SendAsync(new SmtpEnvelope("marker@example.test", recipient), "Subject: marker\r\n\r\nmarker\r\n"u8.ToArray());
        result.IsAccepted.Should().BeTrue(result.ToString());
    }
}
