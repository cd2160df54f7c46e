using System.Net;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite (another team's black-box reading of README.md and the XML docs): every documented default
/// of SmtpSenderOptions, SmtpTimeouts and SmtpSessionOptions, and the sender constructor's argument checks.
/// </summary>
public sealed class PeerDefaultsTests
{
    [Fact]
    public void SmtpSenderOptions_defaults_are_the_ones_the_README_table_lists()
    {
        var options = new SmtpSenderOptions();

        options.Host.Should().BeEmpty("Host is required: no default server");
        options.Port.Should().Be(587);
        options.TlsMode.Should().Be(SmtpTlsMode.StartTlsRequired);
        options.Tls.Should().NotBeNull();
        options.EhloName.Should().BeNull();
        options.Credentials.Should().BeNull();
        options.CredentialsProvider.Should().BeNull();
        options.OAuthUserName.Should().BeNull();
        options.AccessTokenProvider.Should().BeNull();
        options.Authentication.Should().BeNull();
        options.MaxConnections.Should().Be(4);
        options.MaxBatchSize.Should().Be(16);
        options.MaxMessagesPerConnection.Should().Be(100);
        options.IdleTimeout.Should().Be(TimeSpan.FromSeconds(30));
        options.MaxLifetime.Should().Be(TimeSpan.FromMinutes(10));
        options.NoopAfterIdle.Should().Be(TimeSpan.FromSeconds(5));
        options.AcquireTimeout.Should().Be(TimeSpan.FromSeconds(30));
        options.RetryOnFreshConnection.Should().BeTrue();
        options.DisposeTimeout.Should().Be(TimeSpan.FromSeconds(5));
        options.Timeouts.Should().Be(SmtpTimeouts.Interactive);
        options.Session.Should().BeNull();
        options.TimeProvider.Should().BeSameAs(TimeProvider.System);
        options.LoggerFactory.Should().BeNull();
        options.MeterFactory.Should().BeNull();
        options.Name.Should().BeNull();
    }

    [Fact]
    public void SmtpTimeouts_Interactive_Rfc5321_and_a_new_instance_have_the_documented_values()
    {
        var interactive = SmtpTimeouts.Interactive;
        interactive.Connect.Should().Be(TimeSpan.FromSeconds(10));
        interactive.Send.Should().Be(TimeSpan.FromSeconds(30));
        interactive.Reply.Should().Be(TimeSpan.FromSeconds(30));
        interactive.DataTermination.Should().Be(TimeSpan.FromSeconds(60));

        var rfc = SmtpTimeouts.Rfc5321;
        rfc.Connect.Should().Be(TimeSpan.FromSeconds(60));
        rfc.Send.Should().Be(TimeSpan.FromMinutes(3));
        rfc.Reply.Should().Be(TimeSpan.FromMinutes(5));
        rfc.DataTermination.Should().Be(TimeSpan.FromMinutes(10));

        new SmtpTimeouts().Should().Be(SmtpTimeouts.Interactive, "the property defaults are the Interactive values");
        (SmtpTimeouts.Interactive with { Reply = TimeSpan.FromSeconds(1) }).Should().NotBe(SmtpTimeouts.Interactive);
    }

    [Fact]
    public void SmtpSessionOptions_defaults_are_the_ones_the_README_table_lists()
    {
        var options = new SmtpSessionOptions();

        options.ConnectTimeout.Should().Be(TimeSpan.FromSeconds(60));
        options.SendTimeout.Should().Be(TimeSpan.FromMinutes(3));
        options.ReceiveTimeout.Should().Be(TimeSpan.FromMinutes(5));
        options.DataTerminationTimeout.Should().Be(TimeSpan.FromMinutes(10));
        options.AllowCleartextAuthentication.Should().BeFalse();
        options.UsePipelining.Should().BeTrue();
        options.UseChunking.Should().BeTrue();
        options.ChunkSize.Should().Be(262_144);
        options.MaxTransactionsInFlight.Should().Be(16);
        options.DataFlushThreshold.Should().Be(65_536);
        options.Limits.Should().BeSameAs(SmtpProtocolLimits.Default);
        options.Limits.MaxReplyLineLength.Should().Be(8_192);
        options.Limits.MaxReplyLines.Should().Be(1_000);
        options.Limits.MaxReplyBytes.Should().Be(262_144);
        options.LoggerFactory.Should().BeNull();
        options.LogAddresses.Should().BeFalse();
        options.MeterFactory.Should().BeNull();
        options.TimeProvider.Should().BeSameAs(TimeProvider.System);
        options.Tls.Should().NotBeNull();
    }

    [Fact]
    public async Task The_sender_is_named_host_colon_port_by_default_and_copies_its_options()
    {
        var options = new SmtpSenderOptions { Host = "127.0.0.1", Port = 2525, TlsMode = SmtpTlsMode.None };
        await using var sender = new SmtpSender(options);
        sender.Name.Should().Be("127.0.0.1:2525");

        options.Name = "changed-later";
        options.Port = 2600;
        sender.Name.Should().Be("127.0.0.1:2525", "the options are read when the sender is created; later changes have no effect");

        await using var named = new SmtpSender(new SmtpSenderOptions { Host = "127.0.0.1", Name = "relay-a" });
        named.Name.Should().Be("relay-a");
    }

    public static TheoryData<string, Func<SmtpSenderOptions, SmtpSenderOptions>, Type> BadOptions() => new()
    {
        { "no host", o => o, typeof(ArgumentException) },
        { "host with port", o => { o.Host = "127.0.0.1:2525"; return o; }, typeof(ArgumentException) },
        { "host with scheme", o => { o.Host = "smtp://127.0.0.1"; return o; }, typeof(ArgumentException) },
        { "host with space", o => { o.Host = "smtp example.com"; return o; }, typeof(ArgumentException) },
        { "port 0", o => { o.Host = "127.0.0.1"; o.Port = 0; return o; }, typeof(ArgumentOutOfRangeException) },
        { "port 65536", o => { o.Host = "127.0.0.1"; o.Port = 65536; return o; }, typeof(ArgumentOutOfRangeException) },
        { "MaxConnections 0", o => { o.Host = "127.0.0.1"; o.MaxConnections = 0; return o; }, typeof(ArgumentOutOfRangeException) },
        { "MaxBatchSize 0", o => { o.Host = "127.0.0.1"; o.MaxBatchSize = 0; return o; }, typeof(ArgumentOutOfRangeException) },
        { "MaxMessagesPerConnection -1", o => { o.Host = "127.0.0.1"; o.MaxMessagesPerConnection = -1; return o; }, typeof(ArgumentOutOfRangeException) },
        { "AcquireTimeout 0", o => { o.Host = "127.0.0.1"; o.AcquireTimeout = TimeSpan.Zero; return o; }, typeof(ArgumentOutOfRangeException) },
        { "DisposeTimeout negative", o => { o.Host = "127.0.0.1"; o.DisposeTimeout = TimeSpan.FromSeconds(-2); return o; }, typeof(ArgumentOutOfRangeException) },
        { "DisposeTimeout too long", o => { o.Host = "127.0.0.1"; o.DisposeTimeout = TimeSpan.FromMilliseconds(4294967295); return o; }, typeof(ArgumentOutOfRangeException) },
        { "Timeouts.Reply 0", o => { o.Host = "127.0.0.1"; o.Timeouts = SmtpTimeouts.Interactive with { Reply = TimeSpan.Zero }; return o; }, typeof(ArgumentOutOfRangeException) },
        { "Timeouts.Connect too long", o => { o.Host = "127.0.0.1"; o.Timeouts = SmtpTimeouts.Interactive with { Connect = TimeSpan.FromMilliseconds(4294967295) }; return o; }, typeof(ArgumentOutOfRangeException) },
        { "EhloName with space", o => { o.Host = "127.0.0.1"; o.EhloName = "my client"; return o; }, typeof(ArgumentException) },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void A_bad_setting_is_refused_by_the_constructor_with_the_documented_exception(string why, Func<SmtpSenderOptions, SmtpSenderOptions> make, Type expected)
    {
        var act = () => new SmtpSender(make(new SmtpSenderOptions()));

        var thrown = act.Should().Throw<ArgumentException>(why).Which;
        thrown.Should().BeOfType(expected, why);
    }

    [Fact]
    public void Null_options_are_an_ArgumentNullException()
    {
        var act = () => new SmtpSender(null!);
        act.Should().Throw<ArgumentNullException>();
    }

    [Fact]
    public void A_timeout_out_of_range_names_the_setting_as_the_sender_has_it()
    {
        var act = () => new SmtpSender(new SmtpSenderOptions
        {
            Host = "127.0.0.1",
            Timeouts = SmtpTimeouts.Interactive with { Reply = TimeSpan.FromSeconds(-5) },
        });

        act.Should().Throw<ArgumentOutOfRangeException>().Which.Message.Should().Contain("Timeouts.Reply");
    }

    [Fact]
    public async Task Infinite_timeouts_and_the_largest_finite_one_are_accepted()
    {
        var largest = TimeSpan.FromMilliseconds(4294967294);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = "127.0.0.1",
            IdleTimeout = Timeout.InfiniteTimeSpan,
            MaxLifetime = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            AcquireTimeout = Timeout.InfiniteTimeSpan,
            DisposeTimeout = largest,
            MaxMessagesPerConnection = 0,
            Timeouts = new SmtpTimeouts { Connect = largest, Send = Timeout.InfiniteTimeSpan, Reply = largest, DataTermination = Timeout.InfiniteTimeSpan },
            Credentials = new NetworkCredential("u", "p"),
        });

        sender.GetStatistics().Opened.Should().Be(0, "no connection is opened until the first message");
    }

    public static TheoryData<string, Action<SmtpSessionOptions>> BadSessionOptions() => new()
    {
        { "ConnectTimeout 0", o => o.ConnectTimeout = TimeSpan.Zero },
        { "SendTimeout negative", o => o.SendTimeout = TimeSpan.FromSeconds(-1) },
        { "ReceiveTimeout too long", o => o.ReceiveTimeout = TimeSpan.FromMilliseconds(4294967295) },
        { "DataTerminationTimeout 0", o => o.DataTerminationTimeout = TimeSpan.Zero },
        { "ChunkSize 1023", o => o.ChunkSize = 1023 },
        { "DataFlushThreshold 1023", o => o.DataFlushThreshold = 1023 },
        { "MaxTransactionsInFlight 0", o => o.MaxTransactionsInFlight = 0 },
        { "MaxReplyLineLength 511", o => o.Limits = new SmtpProtocolLimits { MaxReplyLineLength = 511 } },
    };

    [Theory]
    [MemberData(nameof(BadSessionOptions))]
    public void A_session_setting_out_of_range_is_refused_by_the_session_and_by_the_sender(string why, Action<SmtpSessionOptions> set)
    {
        var options = new SmtpSessionOptions();
        set(options);

        FluentActions.Invoking(() => new AsyncSmtpSession(options)).Should().Throw<ArgumentOutOfRangeException>(why);
        if (!why.Contains("Timeout", StringComparison.Ordinal))
        {
            // The sender replaces the session's timeouts with its own Timeouts; the rest is checked.
            FluentActions.Invoking(() => new SmtpSender(new SmtpSenderOptions { Host = "127.0.0.1", Session = options }))
                .Should().Throw<ArgumentOutOfRangeException>(why);
        }
    }

    [Fact]
    public async Task The_smallest_documented_sizes_are_accepted()
    {
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions
        {
            ChunkSize = 1024,
            DataFlushThreshold = 1024,
            MaxTransactionsInFlight = 1,
            Limits = new SmtpProtocolLimits { MaxReplyLineLength = 512, MaxReplyLines = 1, MaxReplyBytes = 512 },
        });

        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public void A_null_setting_object_is_an_ArgumentNullException()
    {
        FluentActions.Invoking(() => new AsyncSmtpSession(new SmtpSessionOptions { Limits = null! })).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new AsyncSmtpSession(new SmtpSessionOptions { Tls = null! })).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new SmtpSender(new SmtpSenderOptions { Host = "127.0.0.1", Timeouts = null! })).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new SmtpSender(new SmtpSenderOptions { Host = "127.0.0.1", Tls = null! })).Should().Throw<ArgumentNullException>();
    }
}
