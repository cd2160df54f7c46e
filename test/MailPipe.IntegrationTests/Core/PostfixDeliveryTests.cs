using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Core;

/// <summary>Core issue, acceptance 3: every corpus message through AsyncSmtpSession to the real Postfix, byte for byte.</summary>
public sealed class PostfixDeliveryTests
{
    public PostfixDeliveryTests() => TestServers.RequireListening(TestServers.PostfixPort);

    [Theory]
    [MemberData(nameof(CorpusNames))]
    public async Task Corpus_message_is_stored_byte_for_byte_after_CRLF_normalisation(string name)
    {
        var message = Corpus.Read(name);
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        greeting!.Code.Should().Be(220);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);
        await using (var content = new MemoryStream(message))
        {
            var final = await session.SendMessageDataAsync(content);
            final.Code.Should().Be(250, final.ToString());
        }

        (await session.QuitAsync()).Code.Should().Be(221);
        session.IsConnected.Should().BeFalse();

        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(Corpus.NormalizeLineEnds(message));
    }

    [Fact]
    public async Task Chunked_writes_split_anywhere_store_the_same_bytes()
    {
        var message = Corpus.Read("02-dot-lines.eml");
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        await session.MailFromAsync("sender@example.test");
        await session.RcptToAsync(recipient);
        (await session.DataAsync()).Code.Should().Be(354);

        var random = new Random(7);
        var offset = 0;
        while (offset < message.Length)
        {
            var length = Math.Min(random.Next(1, 40), message.Length - offset);
            await session.WriteMessageDataAsync(message.AsMemory(offset, length));
            offset += length;
        }

        (await session.EndMessageDataAsync()).Code.Should().Be(250);
        await session.QuitAsync();

        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Maildir.StripTraceHeaders(stored).Should().Equal(Corpus.NormalizeLineEnds(message));
    }

    [Fact]
    public async Task Negative_replies_are_returned_not_thrown()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);

        var unknown = await session.RcptToAsync("unknown-user@example.test");
        unknown.Code.Should().Be(550);
        unknown.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 1, 1));
        unknown.IsPermanentNegative.Should().BeTrue();

        var tempfail = await session.RcptToAsync("tempfail@example.test");
        tempfail.Code.Should().Be(450);
        tempfail.IsTransientNegative.Should().BeTrue();

        (await session.RsetAsync()).Code.Should().Be(250);
        (await session.NoopAsync()).Code.Should().Be(250);
        session.IsConnected.Should().BeTrue();
    }

    [Fact]
    public async Task Ehlo_capabilities_vrfy_and_raw_commands_work_against_postfix()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);

        session.Capabilities.SupportsPipelining.Should().BeTrue();
        session.Capabilities.SupportsChunking.Should().BeTrue();
        session.Capabilities.MaxMessageSize.Should().Be(10485760);
        session.Capabilities.Contains("enhancedstatuscodes").Should().BeTrue();

        (await session.VrfyAsync("testuser@localhost")).Code.Should().Be(252);

        await session.SendCommandAsync("NOOP");
        (await session.ReceiveReplyAsync()).Code.Should().Be(250);

        (await session.HeloAsync("client.example.test")).Code.Should().Be(250);
        session.Capabilities.Count.Should().Be(0);
    }

    [Fact]
    public async Task Connect_without_greeting_then_receive_it()
    {
        await using var session = new AsyncSmtpSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, waitForGreeting: false)).Should().BeNull();
        var greeting = await session.ReceiveReplyAsync();
        greeting.Code.Should().Be(220);
        greeting.Text.Should().Contain("ESMTP");
    }

    [Fact]
    public async Task Connection_refused_is_a_typed_transient_error()
    {
        await using var session = new AsyncSmtpSession();
        var act = () => session.ConnectAsync(TestServers.Host, 1);
        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        error.OsErrorCode.Should().NotBeNull();
        error.IsTransient.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Cancelling_a_stalled_read_closes_the_connection_and_the_session_can_reconnect()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        using var cts = new CancellationTokenSource();
        var stalled = session.ReceiveReplyAsync(cts.Token);   // Postfix sends nothing unasked: the read stalls
        cts.Cancel();
        await stalled.Invoking(t => t).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    public static TheoryData<string> CorpusNames => Corpus.Names;
}
