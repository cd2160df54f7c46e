using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Tests.Shared;
using static MailPipe.IntegrationTests.Cli.CliProcess;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests;

/// <summary>
/// Acceptance review (session 21) of issues #2, #3, #4 and #9 against the real Postfix, written from the issues' words
/// through the public API and the CLI only: a cancelled send never delivers (nor in part), the same object reconnects
/// and delivers once; implicit TLS + AUTH delivers once; a cancelled batch's results agree with the Maildir; the CLI's
/// exit codes 0/2/5/6 against the real server.
/// </summary>
public sealed class Acc21ReviewerTests
{
    private static string[] StoredFiles(string recipient)
    {
        var directory = Path.Combine(TestServers.PostfixMaildir, recipient, "new");
        return Directory.Exists(directory) ? Directory.GetFiles(directory) : [];
    }

    private static AsyncSmtpSession PlainSession(bool chunking) => new(new SmtpSessionOptions
    {
        UseChunking = chunking,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ReceiveTimeout = TimeSpan.FromSeconds(30),
    });

    private static async Task ConnectPlainAsync(AsyncSmtpSession session)
    {
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.EhloAsync(EhloDomain)).Code.Should().Be(250);
    }

    // Issue #2: "A cancelled DATA must never send the terminating dot"; "a cancelled or timed-out operation closes the
    // connection and the session reports it is disconnected; the same object can ConnectAsync again afterwards".
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelled_while_the_content_streams_nothing_is_delivered_and_the_same_object_reconnects_and_delivers_once(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipient = TestServers.UniqueRecipient("acc21-cancel");
        await using var session = PlainSession(chunking);
        await ConnectPlainAsync(session);
        using var cts = new CancellationTokenSource();
        var head = Encoding.ASCII.GetBytes("Subject: acc21 cancelled\r\n\r\n" + string.Concat(Enumerable.Repeat("line of the body\r\n", 2000)));
        await using var content = new StallingStream(head);

        var send = session.SendAsync(new SmtpEnvelope(Sender, recipient), content, cts.Token);
        await content.Stalled.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        var thrown = await FluentActions.Awaiting(() => send).Should().ThrowAsync<OperationCanceledException>();
        thrown.Which.Should().NotBeOfType<SmtpOutcomeUnknownException>("the end of data was never written");
        session.IsConnected.Should().BeFalse();

        await ConnectPlainAsync(session);
        var result = await session.SendAsync(new SmtpEnvelope(Sender, recipient), "Subject: acc21 after\r\n\r\nok\r\n"u8.ToArray());
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        await Maildir.WaitForPostfixAsync(recipient);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var files = StoredFiles(recipient);
        files.Should().ContainSingle("the cancelled message must never arrive, not even in part");
        Encoding.ASCII.GetString(await File.ReadAllBytesAsync(files[0])).Should().Contain("Subject: acc21 after").And.NotContain("acc21 cancelled");
    }

    // Issue #3 acceptance 1: the implicit TLS port, authenticate, then a message that arrives in the Maildir.
    [Fact]
    public async Task Implicit_TLS_then_automatic_AUTH_delivers_the_message_once()
    {
        TestServers.RequireListening(TestServers.PostfixTlsPort);
        var recipient = TestServers.UniqueRecipient("acc21-smtps");
        await using var session = NewSession();

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, SmtpTlsMode.Implicit, EhloDomain)).Code.Should().Be(250);
        session.IsEncrypted.Should().BeTrue();
        var auth = await session.AuthenticateAsync(new System.Net.NetworkCredential(TestServers.User, TestServers.Password));
        auth.Code.Should().Be(235, auth.ToString());
        var content = Encoding.ASCII.GetBytes("Subject: acc21 smtps\r\n\r\nimplicit TLS and AUTH\r\n");
        var result = await session.SendAsync(new SmtpEnvelope(Sender, recipient), content);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = await Maildir.WaitForPostfixAsync(recipient);
        Encoding.ASCII.GetString(stored[0]).Should().Contain("with ESMTPSA");
        Maildir.StripTraceHeaders(stored[0]).Should().Equal(content);
        await Task.Delay(TimeSpan.FromSeconds(1));
        StoredFiles(recipient).Should().ContainSingle();
    }

    // Issue #9 contract: "A cancelled or failed batch keeps what is decided ... a caller who retries the batch sends
    // them twice." Every result the exception carries must agree with what Postfix stored.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_batch_cancelled_mid_way_reports_results_that_agree_with_the_Maildir(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipients = Enumerable.Range(0, 4).Select(i => TestServers.UniqueRecipient($"acc21-batch{i}")).ToArray();
        await using var session = PlainSession(chunking);
        await ConnectPlainAsync(session);
        await using var stalling = new StallingStream(Encoding.ASCII.GetBytes("Subject: acc21 batch stalled\r\n\r\nbody\r\n"));
        var messages = new[]
        {
            SmtpMessage.FromBytes(new SmtpEnvelope(Sender, recipients[0]), "Subject: acc21 batch 0\r\n\r\nx\r\n"u8.ToArray()),
            SmtpMessage.FromBytes(new SmtpEnvelope(Sender, recipients[1]), "Subject: acc21 batch 1\r\n\r\nx\r\n"u8.ToArray()),
            SmtpMessage.FromStream(new SmtpEnvelope(Sender, recipients[2]), stalling),
            SmtpMessage.FromBytes(new SmtpEnvelope(Sender, recipients[3]), "Subject: acc21 batch 3\r\n\r\nx\r\n"u8.ToArray()),
        };
        using var cts = new CancellationTokenSource();

        var send = session.SendBatchAsync(messages, cts.Token);
        await stalling.Stalled.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        var thrown = await FluentActions.Awaiting(() => send).Should().ThrowAsync<SmtpBatchCanceledException>();
        var results = thrown.Which.Results;
        results.Should().HaveCountGreaterThanOrEqualTo(2, "the two messages before the stalled one were written");
        session.IsConnected.Should().BeFalse();

        // Postfix delivers to the Maildir after its 250: wait for each accepted message's copy, then let any copy that
        // should not exist arrive before counting (a fixed 3 s wait counted an accepted copy a loaded Postfix had not delivered yet).
        foreach (var accepted in results.Where(r => r.Outcome == SmtpSendOutcome.Accepted))
        {
            await Maildir.WaitForPostfixAsync(accepted.Envelope.Recipients[0].Address);
        }

        await Task.Delay(TimeSpan.FromSeconds(3));
        for (var i = 0; i < results.Count; i++)
        {
            results[i].Envelope.Recipients.Should().ContainSingle().Which.Address.Should().Be(recipients[i], "results are in the batch's order");
            var stored = StoredFiles(recipients[i]).Length;
            switch (results[i].Outcome)
            {
                case SmtpSendOutcome.Accepted:
                    stored.Should().Be(1, $"message {i} was reported Accepted");
                    break;
                case SmtpSendOutcome.NotSent:
                case SmtpSendOutcome.Refused:
                    stored.Should().Be(0, $"message {i} was reported {results[i].Outcome}: a retry must not duplicate it");
                    break;
                default:
                    stored.Should().BeLessThanOrEqualTo(1);
                    break;
            }
        }

        results[2].Outcome.Should().NotBe(SmtpSendOutcome.Accepted);
        StoredFiles(recipients[2]).Should().BeEmpty("the stalled message never reached its end of data");
        StoredFiles(recipients[3]).Should().BeEmpty("the message after the cancellation is never sent");
    }

    // Issue #2 exit codes through `mailpipe send` against the real Postfix.
    [Theory]
    [InlineData("sender@example.test", "acc21-cli-ok", 0)]
    [InlineData("sender@example.test", "unknown-acc21", 5)]
    [InlineData("sender@example.test", "tempfail", 5)]
    [InlineData("eod-reject@example.test", "acc21-cli-eod", 6)]
    [InlineData("eod-tempfail@example.test", "acc21-cli-eodtemp", 6)]
    public async Task Cli_send_exit_code_follows_the_servers_replies(string from, string to, int exitCode)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipient = to == "tempfail" ? "tempfail@example.test" : TestServers.UniqueRecipient(to);

        var run = await RunAsync("send", "--server", Server(TestServers.PostfixPort), "--from", from, "--to", recipient, "--subject", "acc21 cli", "--body", "hello");

        run.ExitCode.Should().Be(exitCode, run.ToString());
        if (exitCode == 0)
        {
            await Maildir.WaitForPostfixAsync(recipient);
            await Task.Delay(TimeSpan.FromSeconds(1));
            StoredFiles(recipient).Should().ContainSingle();
        }
        else if (recipient != "tempfail@example.test")
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            StoredFiles(recipient).Should().BeEmpty();
        }
    }

    [Fact]
    public async Task Cli_send_to_a_port_where_nobody_listens_exits_2()
    {
        var run = await RunAsync("send", "--server", "127.0.0.1:1", "--from", Sender, "--to", TestServers.UniqueRecipient(), "--body", "x");

        run.ExitCode.Should().Be(2, run.ToString());
    }

    // Issue #2: "Send, receive and connect timeouts ... raise the timed-out error; the caller's token raises
    // OperationCanceledException; the two are never confused", the session is then disconnected and the same object
    // connects again. Over a real loopback socket whose peer accepts and never greets.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_silent_server_times_out_or_cancels_never_the_one_for_the_other_and_the_same_object_connects_again(bool cancel)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ReceiveTimeout = TimeSpan.FromSeconds(cancel ? 60 : 1) });
        using var cts = new CancellationTokenSource(cancel ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(60));

        var connect = session.ConnectAsync(TestServers.Host, port, waitForGreeting: true, cts.Token);
        using var accepted = await silent.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));

        if (cancel)
        {
            var thrown = await FluentActions.Awaiting(() => connect).Should().ThrowAsync<OperationCanceledException>();
            thrown.Which.CancellationToken.Should().Be(cts.Token);
        }
        else
        {
            var thrown = await FluentActions.Awaiting(() => connect).Should().ThrowAsync<SmtpException>();
            thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        }

        session.IsConnected.Should().BeFalse();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.EhloAsync(EhloDomain)).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    /// <summary>Returns its bytes, then blocks the next read until the caller's token is cancelled (at most 60 s, then ends).</summary>
    private sealed class StallingStream(byte[] head) : ForwardOnlyStream
    {
        private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _position;

        public Task Stalled => _stalled.Task;

        public bool StallEndedByCancellation { get; private set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position < head.Length)
            {
                var count = Math.Min(buffer.Length, head.Length - _position);
                head.AsMemory(_position, count).CopyTo(buffer);
                _position += count;
                return count;
            }

            _stalled.TrySetResult();
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(60), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                StallEndedByCancellation = true;
                throw;
            }

            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("synchronous read");
    }
}
