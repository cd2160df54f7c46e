using System.Text;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance (another team's reading of the package README): <c>AddMailPipe</c> bound from an appsettings JSON
/// document in a generic host, every documented key and default, and a wrong setting stopping the start with a message
/// that names the key.
/// </summary>
public sealed class PeerConfigurationTests
{
    private static string Json(string smtp) => "{ \"Smtp\": " + smtp + " }";

    [Fact]
    public async Task Only_Host_and_TlsMode_give_every_documented_default()
    {
        var builder = PeerHost.Builder(Json("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\" }"));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        await host.StartAsync();

        var options = host.Services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get(Options.DefaultName);
        options.Port.Should().Be(587);
        options.UserName.Should().BeNull();
        options.Password.Should().BeNull();
        options.EhloName.Should().BeNull();
        options.Tls.CaFile.Should().BeNull();
        options.Tls.AcceptCertificateNameMismatch.Should().BeFalse();
        options.Pool.MaxConnections.Should().Be(4);
        options.Pool.MaxMessagesPerConnection.Should().Be(100);
        options.Pool.IdleTimeout.Should().Be(TimeSpan.FromSeconds(30));
        options.Pool.MaxLifetime.Should().Be(TimeSpan.FromMinutes(10));
        options.Timeouts.Connect.Should().Be(TimeSpan.FromSeconds(10));
        options.Timeouts.Reply.Should().Be(TimeSpan.FromSeconds(30));

        host.Services.GetRequiredService<ISmtpSender>().Should().BeSameAs(host.Services.GetRequiredService<SmtpSender>(), "no decorator was added");
        host.Services.GetRequiredService<SmtpSender>().Name.Should().Be("127.0.0.1:587", "the sender's name is host:port by default");
        await host.StopAsync();
    }

    [Fact]
    public async Task Every_key_set_in_appsettings_sends_through_Postfix_with_STARTTLS_AUTH_and_the_EHLO_name()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipient = TestServers.UniqueRecipient("peer-keys");
        var ca = TestServers.TlsCertificate.Replace("\\", "\\\\", StringComparison.Ordinal);
        var builder = PeerHost.Builder(Json($$"""
            {
              "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "StartTlsRequired",
              "UserName": "testuser", "Password": "Test-Pass-123", "EhloName": "peer-client.example.test",
              "Tls": { "CaFile": "{{ca}}", "AcceptCertificateNameMismatch": false },
              "Pool": { "MaxConnections": 2, "MaxMessagesPerConnection": 0, "IdleTimeout": "00:00:20", "MaxLifetime": "00:05:00" },
              "Timeouts": { "Connect": "00:00:05", "Reply": "00:01:30" }
            }
            """));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        await host.StartAsync();

        var options = host.Services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get(Options.DefaultName);
        options.Pool.MaxConnections.Should().Be(2);
        options.Pool.MaxMessagesPerConnection.Should().Be(0);
        options.Pool.IdleTimeout.Should().Be(TimeSpan.FromSeconds(20));
        options.Pool.MaxLifetime.Should().Be(TimeSpan.FromMinutes(5));
        options.Timeouts.Connect.Should().Be(TimeSpan.FromSeconds(5));
        options.Timeouts.Reply.Should().Be(TimeSpan.FromSeconds(90));

        var sender = host.Services.GetRequiredService<ISmtpSender>();
        var (id, content) = PeerHost.Message("every key");
        var result = await sender.SendAsync(new SmtpEnvelope("peer@example.test", recipient), content);
        result.IsAccepted.Should().BeTrue(result.ToString());

        var stored = File.ReadAllText((await TestServers.WaitForMaildirAsync(recipient)).Single());
        stored.Should().Contain("Message-Id: " + id);
        stored.Should().Contain("Received: from peer-client.example.test ", "EhloName is the EHLO argument");
        stored.Should().Contain("with ESMTPSA", "STARTTLS (S) and AUTH (A) were used");
        await host.StopAsync();
    }

    [Theory]
    [InlineData("{ \"TlsMode\": \"None\" }", "Smtp:Host is required")]
    [InlineData("{ \"Host\": \"127.0.0.1\" }", "Smtp:TlsMode is required")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"starttls\" }", "Smtp:TlsMode 'starttls' is not a TLS mode")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"2\" }", "Smtp:TlsMode '2' is not a TLS mode")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Port\": 70000 }", "Smtp:Port must be between 1 and 65535; it is 70000")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Port\": 0 }", "Smtp:Port must be between 1 and 65535; it is 0")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Port\": \"smtp\" }", "Smtp:Port must be a whole number")]
    [InlineData("{ \"Host\": \"smtp.example.com:587\", \"TlsMode\": \"None\" }", "Smtp:Host 'smtp.example.com:587'")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"UserName\": \"u\" }", "Smtp:UserName and Smtp:Password go together")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Password\": \"p\" }", "Smtp:UserName and Smtp:Password go together")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"EhloName\": \"my host\" }", "Smtp:EhloName 'my host'")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Tls\": { \"CaFile\": \"/nonexistent/peer17b.pem\" } }", "Smtp:Tls:CaFile '/nonexistent/peer17b.pem' does not exist")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Tls\": { \"AcceptCertificateNameMismatch\": \"yes\" } }", "Smtp:Tls:AcceptCertificateNameMismatch must be true or false")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Pool\": { \"MaxConnections\": 0 } }", "Smtp:Pool:MaxConnections must be at least 1; it is 0")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Pool\": { \"MaxMessagesPerConnection\": -1 } }", "Smtp:Pool:MaxMessagesPerConnection must be 0 (no limit) or more")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Pool\": { \"MaxNonMailCommandsPerConnection\": -1 } }", "Smtp:Pool:MaxNonMailCommandsPerConnection must be 0 (no limit) or more")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Pool\": { \"IdleTimeout\": \"30\" } }", "Smtp:Pool:IdleTimeout must be a time span")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Pool\": { \"MaxLifetime\": \"00:00:00\" } }", "Smtp:Pool:MaxLifetime must be a positive time span")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Timeouts\": { \"Connect\": \"50.00:00:00\" } }", "Smtp:Timeouts:Connect must be at most")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Timeouts\": { \"Reply\": \"-00:00:01\" } }", "Smtp:Timeouts:Reply must be a positive time span")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Pool\": { \"MaxConection\": 2 } }", "Smtp:Pool:MaxConection is not a MailPipe setting")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Hots\": \"x\" }", "Smtp:Hots is not a MailPipe setting")]
    [InlineData("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Bluk\": { \"Host\": \"x\" } }", "AddKeyedMailPipe(\"Bluk\"")]
    public async Task A_wrong_setting_stops_the_start_with_a_message_naming_the_key(string smtp, string expected)
    {
        var builder = PeerHost.Builder(Json(smtp));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();

        var start = async () => await host.StartAsync();
        (await start.Should().ThrowAsync<OptionsValidationException>()).Which.Message.Should().Contain(expected);
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once()
    {
        var builder = PeerHost.Builder(Json("{ \"TlsMode\": \"starttls\", \"Port\": 70000 }"));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();

        var start = async () => await host.StartAsync();
        var failures = (await start.Should().ThrowAsync<OptionsValidationException>()).Which.Failures;
        failures.Should().HaveCount(3);
        string.Join("\n", failures).Should().Contain("Smtp:TlsMode 'starttls'").And.Contain("Smtp:Host is required").And.Contain("Smtp:Port must be between 1 and 65535; it is 70000");
    }

    [Fact]
    public async Task An_infinite_time_is_accepted_as_the_README_says()
    {
        var builder = PeerHost.Builder(Json("""
            { "Host": "127.0.0.1", "TlsMode": "None",
              "Pool": { "IdleTimeout": "-00:00:00.001", "MaxLifetime": "-00:00:00.001" },
              "Timeouts": { "Connect": "-00:00:00.001", "Reply": "-00:00:00.001" } }
            """));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        await host.StartAsync();
        host.Services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get(Options.DefaultName).Pool.IdleTimeout.Should().Be(Timeout.InfiniteTimeSpan);
        await host.StopAsync();
    }

    [Fact]
    public async Task The_environment_form_of_the_keys_works_as_documented()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var recipient = TestServers.UniqueRecipient("peer-env");
        var builder = PeerHost.Builder("{}");
        // What Smtp__Host=... in the environment gives: the configuration keys with ':' for '__'.
        Microsoft.Extensions.Configuration.MemoryConfigurationBuilderExtensions.AddInMemoryCollection(builder.Configuration, new Dictionary<string, string?>
        {
            ["Smtp:Host"] = "127.0.0.1",
            ["Smtp:Port"] = TestServers.PostfixPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Smtp:TlsMode"] = "none",
            ["Smtp:Pool:MaxConnections"] = "1",
        });
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        await host.StartAsync();
        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", recipient), Encoding.ASCII.GetBytes("Subject: env\r\n\r\nx\r\n"));
        result.IsAccepted.Should().BeTrue(result.ToString());
        await host.StopAsync();
    }

    [Fact]
    public async Task Keyed_senders_nested_in_the_default_section_each_send_through_their_own_pool()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var port = TestServers.PostfixPort;
        var builder = PeerHost.Builder(Json($$"""
            { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None",
              "Bulk": { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 } } }
            """));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"));
        using var host = builder.Build();
        await host.StartAsync();

        var main = host.Services.GetRequiredService<ISmtpSender>();
        var bulk = host.Services.GetRequiredKeyedService<ISmtpSender>("bulk");
        bulk.Should().NotBeSameAs(main);
        host.Services.GetRequiredKeyedService<SmtpSender>("bulk").Name.Should().Be("bulk", "the key is the sender's name");
        host.Services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get("bulk").Pool.MaxConnections.Should().Be(1);
        host.Services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get(Options.DefaultName).Pool.MaxConnections.Should().Be(4, "nothing is inherited either way");

        foreach (var sender in new[] { main, bulk })
        {
            var recipient = TestServers.UniqueRecipient("peer-keyed");
            (await sender.SendAsync(new SmtpEnvelope("peer@example.test", recipient), Encoding.ASCII.GetBytes("Subject: keyed\r\n\r\nx\r\n"))).IsAccepted.Should().BeTrue();
            await TestServers.WaitForMaildirAsync(recipient);
        }

        await host.StopAsync();
    }

    [Fact]
    public async Task Real_environment_variables_with_double_underscores_configure_the_sender()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var prefix = "PEER17B_" + Guid.NewGuid().ToString("N")[..8] + "_";
        string[] names = ["Smtp__Host", "Smtp__Port", "Smtp__TlsMode", "Smtp__Pool__MaxConnections", "Smtp__Timeouts__Reply"];
        string[] values = ["127.0.0.1", TestServers.PostfixPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "None", "3", "00:00:45"];
        for (var i = 0; i < names.Length; i++)
        {
            Environment.SetEnvironmentVariable(prefix + names[i], values[i]);
        }

        try
        {
            var builder = PeerHost.Builder("{}");
            Microsoft.Extensions.Configuration.EnvironmentVariablesExtensions.AddEnvironmentVariables(builder.Configuration, prefix);
            builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
            using var host = builder.Build();
            await host.StartAsync();
            var options = host.Services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get(Options.DefaultName);
            options.Pool.MaxConnections.Should().Be(3);
            options.Timeouts.Reply.Should().Be(TimeSpan.FromSeconds(45));
            var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-envvar")), "Subject: env\r\n\r\nx\r\n"u8.ToArray());
            result.IsAccepted.Should().BeTrue(result.ToString());
            await host.StopAsync();
        }
        finally
        {
            foreach (var name in names)
            {
                Environment.SetEnvironmentVariable(prefix + name, null);
            }
        }
    }

    [Fact]
    public async Task Code_only_configuration_names_MailPipeOptions_and_code_after_a_section_wins()
    {
        var builder = PeerHost.Builder("{}");
        builder.Services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; o.Port = 0; });
        using (var host = builder.Build())
        {
            var start = async () => await host.StartAsync();
            (await start.Should().ThrowAsync<OptionsValidationException>()).Which.Message.Should().Contain("MailPipeOptions.Port must be between 1 and 65535; it is 0");
        }

        builder = PeerHost.Builder(Json("{ \"Host\": \"127.0.0.1\", \"TlsMode\": \"None\", \"Port\": 25 }"));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"), o => o.Port = 2526);
        using (var host = builder.Build())
        {
            await host.StartAsync();
            host.Services.GetRequiredService<SmtpSender>().Name.Should().Be("127.0.0.1:2526", "the code runs after the section");
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Port_465_without_implicit_TLS_is_a_warning_at_start_up_naming_the_keys()
    {
        using var logs = new LogCapture();
        var builder = PeerHost.Builder(Json("{ \"Host\": \"smtp.example.com\", \"Port\": 465, \"TlsMode\": \"StartTlsRequired\" }"));
        builder.Logging.AddProvider(logs);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        await host.StartAsync();

        var warning = logs.Entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.PortTlsModeMismatch, "once, at start-up, before any message").Which;
        warning.Category.Should().Be("MailPipe.Configuration");
        warning.Level.Should().Be(Microsoft.Extensions.Logging.LogLevel.Warning);
        warning.Message.Should().Contain("Smtp:Port is 465 and Smtp:TlsMode is StartTlsRequired");
        await host.StopAsync();
    }
}
