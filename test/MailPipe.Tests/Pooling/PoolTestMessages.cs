using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>Messages with unique Message-Ids for the pool tests, and a sender aimed at a loopback port.</summary>
internal static class PoolTestMessages
{
    public static (SmtpMessage Message, string MessageId) Create(string tag, int i, int bodyBytes = 1024)
    {
        var id = $"<{tag}-{i}-{Guid.NewGuid():N}@pool.test>";
        var header = $"From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: {tag} {i}\r\nMessage-Id: {id}\r\n\r\n";
        var body = new StringBuilder(bodyBytes + 80);
        while (body.Length < bodyBytes)
        {
            body.Append("The quick brown fox jumps over the lazy dog 0123456789.\r\n");
        }

        var envelope = new SmtpEnvelope("sender@example.test", $"rcpt-{tag}@example.test");
        return (SmtpMessage.FromBytes(envelope, Encoding.ASCII.GetBytes(header + body)), id);
    }

    /// <summary>
    /// Checks each result against what <paramref name="server"/> stored: Accepted exactly once, Unknown at most once,
    /// anything else never.
    /// </summary>
    public static void ShouldMatchServer(this IReadOnlyList<SmtpSendResult> results, IReadOnlyList<(SmtpMessage Message, string MessageId)> messages, LoopbackSmtpServer server)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            var copies = server.CountOf(messages[i].MessageId);
            switch (results[i].Outcome)
            {
                case SmtpSendOutcome.Accepted:
                    copies.Should().Be(1, $"message {i} was reported Accepted");
                    break;
                case SmtpSendOutcome.Unknown:
                    copies.Should().BeLessThanOrEqualTo(1, $"message {i} is Unknown but never delivered twice");
                    break;
                default:
                    copies.Should().Be(0, $"message {i} was reported {results[i].Outcome}");
                    break;
            }
        }
    }

    public static SmtpSenderOptions Options(int port, int maxConnections = 2, int maxBatchSize = 16) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        TlsMode = SmtpTlsMode.None,
        EhloName = "client.pool.test",
        MaxConnections = maxConnections,
        MaxBatchSize = maxBatchSize,
        AcquireTimeout = TimeSpan.FromSeconds(20),
    };
}
