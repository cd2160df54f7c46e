using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>The corpus through Exim (PIPELINING + CHUNKING) and aiosmtpd (neither): byte-exact after CRLF normalisation.</summary>
public sealed class OtherServersTests
{
    [Theory]
    [MemberData(nameof(CorpusNames))]
    public async Task Exim_stores_the_corpus_byte_exact_via_bdat(string name)
    {
        TestServers.RequireListening(TestServers.EximPort);
        var message = Corpus.Read(name);
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        session.Capabilities.SupportsChunking.Should().BeTrue();

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = await Maildir.WaitForEximAsync(recipient);
        Maildir.StripTraceHeaders(stored).Should().Equal(Corpus.NormalizeLineEnds(message));
    }

    [Theory]
    [MemberData(nameof(CorpusNames))]
    public async Task Aiosmtpd_stores_the_corpus_byte_exact_via_data(string name)
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var message = Corpus.Read(name);
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort);
        await session.HelloAsync("client.example.test");
        session.Capabilities.SupportsPipelining.Should().BeFalse();
        session.Capabilities.SupportsChunking.Should().BeFalse();

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = await AiosmtpdStore.WaitForAsync(recipient);
        stored.Should().Equal(Corpus.NormalizeLineEnds(message));
    }

    [Fact]
    public async Task Exim_batch_with_mixed_outcomes()
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        var recipients = Enumerable.Range(0, 12).Select(_ => TestServers.UniqueRecipient()).ToArray();
        var messages = recipients.Select((r, i) => SmtpMessage.FromBytes(
            new SmtpEnvelope(i == 5 ? "eod-reject@example.test" : "sender@example.test", i == 2 ? "unknown-q@example.test" : r),
            System.Text.Encoding.ASCII.GetBytes($"Subject: exim {i}\r\n\r\nbody {i}\r\n")));

        var results = await session.SendBatchAsync(messages);

        for (var i = 0; i < results.Count; i++)
        {
            results[i].Outcome.Should().Be(i is 2 or 5 ? SmtpSendOutcome.Refused : SmtpSendOutcome.Accepted, $"message {i}: {results[i]}");
        }

        await Maildir.WaitForEximAsync(recipients[11]);
    }

    public static TheoryData<string> CorpusNames => Corpus.Names;
}
