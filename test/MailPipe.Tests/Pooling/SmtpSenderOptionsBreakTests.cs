namespace MailPipe.Tests.Pooling;

/// <summary>Breaker probes of the shared sender's settings from the outside: a setting the constructor accepts must work.</summary>
public sealed class SmtpSenderOptionsBreakTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    /// <summary>
    /// 60 days (more than a timer takes, 2^32 - 2 ms) was accepted, then every send came back NotSent with a misleading
    /// error ("AuthenticationError ... out of the range (Parameter 'delay')" for Connect, "Network error" for Reply).
    /// </summary>
    [Theory]
    [InlineData("Reply")]
    [InlineData("Connect")]
    [InlineData("Send")]
    [InlineData("DataTermination")]
    public async Task A_timeout_longer_than_a_timer_takes_is_refused_by_the_constructor(string setting)
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        var options = PoolTestMessages.Options(server.Port);
        var days = TimeSpan.FromDays(60);
        options.Timeouts = setting switch
        {
            "Reply" => options.Timeouts with { Reply = days },
            "Connect" => options.Timeouts with { Connect = days },
            "Send" => options.Timeouts with { Send = days },
            _ => options.Timeouts with { DataTermination = days },
        };

        FluentActions.Invoking(() => new SmtpSender(options)).Should().Throw<ArgumentOutOfRangeException>()
            .Which.ParamName.Should().Be("Timeouts." + setting);

        // The longest accepted timeout works.
        options.Timeouts = SmtpTimeouts.Interactive with { Reply = TimeSpan.FromMilliseconds(uint.MaxValue - 1) };
        await using var longest = new SmtpSender(options);
        (await longest.SendAsync(PoolTestMessages.Create("longest-" + setting, 0).Message).WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
    }

    /// <summary>
    /// The error names the setting the caller set: <c>Timeouts.Reply</c> came back as <c>ReceiveTimeout</c> (and
    /// <c>Timeouts.DataTermination</c> as <c>DataTerminationTimeout</c>), properties of the session's options that
    /// <see cref="SmtpSenderOptions"/> does not have.
    /// </summary>
    [Theory]
    [InlineData("Reply")]
    [InlineData("Connect")]
    [InlineData("Send")]
    [InlineData("DataTermination")]
    public void A_timeout_out_of_range_is_named_as_the_Timeouts_setting(string setting)
    {
        var options = PoolTestMessages.Options(2525);
        var bad = TimeSpan.FromDays(60);
        options.Timeouts = setting switch
        {
            "Reply" => options.Timeouts with { Reply = bad },
            "Connect" => options.Timeouts with { Connect = TimeSpan.Zero },
            "Send" => options.Timeouts with { Send = TimeSpan.FromSeconds(-2) },
            _ => options.Timeouts with { DataTermination = bad },
        };

        FluentActions.Invoking(() => new SmtpSender(options)).Should().Throw<ArgumentOutOfRangeException>()
            .Which.ParamName.Should().Be("Timeouts." + setting);
    }

    /// <summary>
    /// The TLS handshake's timeout and <c>DisposeTimeout</c> also go to a timer: 60 days was accepted by the constructor,
    /// then the STARTTLS handshake threw an untyped <see cref="ArgumentOutOfRangeException"/> ('delay') after the server's
    /// 220, and <c>DisposeAsync</c> threw one ('timeout') instead of disposing.
    /// </summary>
    [Theory]
    [InlineData("HandshakeTimeout")]
    [InlineData("DisposeTimeout")]
    public async Task A_TLS_handshake_or_dispose_timeout_longer_than_a_timer_takes_is_refused_by_the_constructor(string setting)
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        var options = PoolTestMessages.Options(server.Port);
        if (setting == "HandshakeTimeout")
        {
            options.Tls.HandshakeTimeout = TimeSpan.FromDays(60);
        }
        else
        {
            options.DisposeTimeout = TimeSpan.FromDays(60);
        }

        FluentActions.Invoking(() => new SmtpSender(options)).Should().Throw<ArgumentOutOfRangeException>()
            .Which.ParamName.Should().Be(setting);

        // The longest accepted value works, and disposal with it too.
        options.Tls.HandshakeTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        options.DisposeTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        var longest = new SmtpSender(options);
        (await longest.SendAsync(PoolTestMessages.Create("longest-" + setting, 0).Message).WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await longest.DisposeAsync().AsTask().WaitAsync(Limit);
    }

    [Fact]
    public void A_session_with_a_TLS_handshake_timeout_longer_than_a_timer_takes_is_refused_by_the_constructor()
    {
        var options = new SmtpSessionOptions();
        options.Tls.HandshakeTimeout = TimeSpan.FromDays(60);

        FluentActions.Invoking(() => new AsyncSmtpSession(options)).Should().Throw<ArgumentOutOfRangeException>()
            .Which.ParamName.Should().Be("HandshakeTimeout");
    }

    /// <summary>
    /// Breaker probe: a host with the port or a scheme in it (a natural first try) was accepted by the constructor, which
    /// left the mistake to each connect (a name lookup of <c>smtp.example.com:587</c>); the DI package refuses it at
    /// start-up with this message.
    /// </summary>
    [Theory]
    [InlineData("smtp.example.com:587")]
    [InlineData("127.0.0.1:2525")]
    [InlineData("smtp://smtp.example.com")]
    public async Task A_host_with_a_port_or_a_scheme_is_refused_by_the_constructor(string host)
    {
        var options = PoolTestMessages.Options(2525);
        options.Host = host;

        var thrown = FluentActions.Invoking(() => new SmtpSender(options)).Should().Throw<ArgumentException>().Which;
        thrown.ParamName.Should().Be("Host");
        thrown.Message.Should().Contain("Port");

        options.Host = "::1"; // an IPv6 literal has colons and is a host
        await using var literal = new SmtpSender(options);
    }

    /// <summary>
    /// Breaker10: a host with a space or a control character (a trailing newline from a secret file, a pasted blank)
    /// was accepted by the constructor, and each message was NotSent with ErrorCode AuthenticationError ("Opening a
    /// connection failed: an SMTP command argument must not contain CR, LF or NUL") or a failed name lookup; the DI
    /// package refuses it at start-up with this message.
    /// </summary>
    [Theory]
    [InlineData("smtp.example.com\n")]
    [InlineData("smtp.example.com\r\n")]
    [InlineData(" smtp.example.com")]
    [InlineData("smtp example.com")]
    [InlineData("smtp.example.com\t")]
    [InlineData("smtp.example.com\0")]
    public void A_host_with_a_space_or_a_control_character_is_refused_by_the_constructor(string host)
    {
        var options = PoolTestMessages.Options(2525);
        options.Host = host;

        var thrown = FluentActions.Invoking(() => new SmtpSender(options)).Should().Throw<ArgumentException>().Which;
        thrown.ParamName.Should().Be("Host");
        thrown.Message.Should().Contain("space or a control character");
    }

    [Theory]
    [InlineData("[127.0.0.1]")]
    [InlineData("localhost")]
    public async Task A_host_the_constructor_accepts_is_reached(string host)
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        var options = PoolTestMessages.Options(server.Port);
        options.Host = host;
        SmtpSender sender;
        try
        {
            sender = new SmtpSender(options);
        }
        catch (ArgumentException ex)
        {
            ex.ParamName.Should().Be("Host");
            return;
        }

        await using (sender)
        {
            var result = await sender.SendAsync(PoolTestMessages.Create("host", 0).Message).WaitAsync(Limit);
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        }
    }
}
