using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>Each invalid configuration stops the host's start with the message a user sees (no server needed).</summary>
public sealed class OptionsValidationTests
{
    private static readonly Dictionary<string, string?> Valid = new()
    {
        ["Smtp:Host"] = "127.0.0.1",
        ["Smtp:Port"] = "2525",
        ["Smtp:TlsMode"] = "StartTlsRequired",
    };

    [Fact]
    public async Task Missing_host()
    {
        var failures = await StartFailuresAsync(("Smtp:Host", null));
        failures.Should().Equal("Smtp:Host is required: the SMTP server's host name or IP address (environment variable Smtp__Host).");
    }

    [Fact]
    public async Task Missing_tls_mode()
    {
        var failures = await StartFailuresAsync(("Smtp:TlsMode", null));
        failures.Should().Equal("Smtp:TlsMode is required, with no default: one of None, Implicit, StartTlsRequired, StartTlsWhenAvailable (environment variable Smtp__TlsMode).");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("65536")]
    [InlineData("-25")]
    public async Task Port_out_of_range(string port)
    {
        var failures = await StartFailuresAsync(("Smtp:Port", port));
        failures.Should().Equal($"Smtp:Port must be between 1 and 65535; it is {port}.");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    public async Task Max_connections_below_one(string value)
    {
        var failures = await StartFailuresAsync(("Smtp:Pool:MaxConnections", value));
        failures.Should().Equal($"Smtp:Pool:MaxConnections must be at least 1; it is {value}.");
    }

    [Theory]
    [InlineData("Timeouts:Connect")]
    [InlineData("Timeouts:Reply")]
    public async Task Timeout_longer_than_a_timer_takes(string key)
    {
        // Breaker probe: 60 days passed start-up, then every send was NotSent with a misleading network or AUTH error.
        var failures = await StartFailuresAsync(("Smtp:" + key, "60.00:00:00"));
        failures.Should().Equal($"Smtp:{key} must be at most 49.17:02:47.2940000 (a timer's limit) or -00:00:00.001 for none; it is 60.00:00:00.");
    }

    [Theory]
    [InlineData("Timeouts:Connect")]
    [InlineData("Timeouts:Reply")]
    [InlineData("Pool:IdleTimeout")]
    [InlineData("Pool:MaxLifetime")]
    public async Task Negative_timeout(string key)
    {
        var failures = await StartFailuresAsync(("Smtp:" + key, "-00:00:05"));
        failures.Should().Equal($"Smtp:{key} must be a positive time span such as 00:00:30; it is -00:00:05.");
    }

    [Theory]
    [InlineData("Timeouts:Connect")]
    [InlineData("Timeouts:Reply")]
    [InlineData("Pool:IdleTimeout")]
    [InlineData("Pool:MaxLifetime")]
    public async Task Zero_timeout(string key)
    {
        var failures = await StartFailuresAsync(("Smtp:" + key, "00:00:00"));
        failures.Should().Equal($"Smtp:{key} must be a positive time span such as 00:00:30; it is 00:00:00.");
    }

    [Theory]
    [InlineData("smtp.example.com:587")]
    [InlineData("smtp://smtp.example.com")]
    public async Task Host_with_a_port_or_a_scheme(string host)
    {
        var failures = await StartFailuresAsync(("Smtp:Host", host));
        failures.Should().Equal($"Smtp:Host '{host}' is not a host name or IP address: give the name alone, such as smtp.example.com, and the port in Smtp:Port.");
    }

    [Fact]
    public async Task An_IPv6_literal_host_is_valid()
    {
        (await StartFailuresAsync(("Smtp:Host", "::1"))).Should().BeEmpty();
        (await StartFailuresAsync(("Smtp:Host", "[::1]"))).Should().BeEmpty();
    }

    [Fact]
    public async Task An_EhloName_longer_than_a_domain_is_named()
    {
        // Breaker10: it passed start-up and every connection's EHLO was a line the server refused (500).
        var failures = await StartFailuresAsync(("Smtp:EhloName", new string('a', 300)));
        failures.Should().Equal("Smtp:EhloName is 300 octets long; a domain is at most 255 (RFC 5321 §4.5.3.1.2).");
    }

    [Fact]
    public async Task An_EhloName_with_no_A_label_form_is_named_by_its_key()
    {
        // It passed the options check, then the sender refused it and the start failed with
        // "SmtpSenderOptions.EhloName (set in code with ConfigureSender) was refused", for a value from Smtp:EhloName.
        var failures = await StartFailuresAsync(("Smtp:EhloName", "bü..example"));
        failures.Should().ContainSingle().Which.Should().StartWith("Smtp:EhloName 'bü..example' is not a domain for EHLO");
    }

    [Fact]
    public async Task The_READMEs_no_limit_time_is_accepted_for_every_time_key()
    {
        // The package README: "Each time must be positive, or -00:00:00.001 (Timeout.InfiniteTimeSpan) for no limit".
        (await StartFailuresAsync(
            ("Smtp:Pool:IdleTimeout", "-00:00:00.001"),
            ("Smtp:Pool:MaxLifetime", "-00:00:00.001"),
            ("Smtp:Timeouts:Connect", "-00:00:00.001"),
            ("Smtp:Timeouts:Reply", "-00:00:00.001"))).Should().BeEmpty();
        (await StartFailuresAsync(("Smtp:Pool:IdleTimeout", "-00:00:01"))).Should().ContainSingle().Which.Should().Contain("Smtp:Pool:IdleTimeout must be a positive time span");
    }

    [Fact]
    public async Task Tls_mode_is_taken_by_name_only()
    {
        (await StartFailuresAsync(("Smtp:TlsMode", "1"))).Should().Equal("Smtp:TlsMode '1' is not a TLS mode. Use one of: None, Implicit, StartTlsRequired, StartTlsWhenAvailable.");
        (await StartFailuresAsync(("Smtp:TlsMode", "starttls"))).Should().Equal("Smtp:TlsMode 'starttls' is not a TLS mode. Use one of: None, Implicit, StartTlsRequired, StartTlsWhenAvailable.");
    }

    [Fact]
    public async Task Unreadable_values_and_unknown_keys_are_named()
    {
        var failures = await StartFailuresAsync(("Smtp:Port", "smtp"), ("Smtp:Pool:MaxConection", "4"), ("Smtp:Timeouts:Reply", "30s"), ("Smtp:Tls:AcceptCertificateNameMismatch", "yes"));
        failures.Should().BeEquivalentTo(
            "Smtp:Port must be a whole number; 'smtp' is not one.",
            "Smtp:Tls:AcceptCertificateNameMismatch must be true or false; 'yes' is neither.",
            "Smtp:Timeouts:Reply must be a time span such as 00:00:30 (hh:mm:ss) or 1.00:00:00 (d.hh:mm:ss); '30s' is not one.",
            "Smtp:Pool:MaxConection is not a MailPipe setting. The settings are: Host, Port, TlsMode, UserName, Password, EhloName, Tls:CaFile, Tls:AcceptCertificateNameMismatch, Pool:MaxConnections, Pool:MaxMessagesPerConnection, Pool:MaxNonMailCommandsPerConnection, Pool:IdleTimeout, Pool:MaxLifetime, Timeouts:Connect, Timeouts:Reply.");
    }

    [Fact]
    public async Task An_empty_password_is_named_as_not_set()
    {
        // Smtp__Password= (a secret that did not arrive) was reported as "set both", to a user who had set both.
        var failures = await StartFailuresAsync(("Smtp:UserName", "me"), ("Smtp:Password", ""));
        failures.Should().Equal("Smtp:UserName and Smtp:Password go together: set both for AUTH, or neither (an empty value counts as not set).");
    }

    [Fact]
    public async Task The_READMEs_example_message_is_the_one_a_user_sees()
    {
        // The README showed the problems in another order than the exception lists them (values that cannot be read come first).
        var root = System.Reflection.CustomAttributeExtensions.GetCustomAttributes<System.Reflection.AssemblyMetadataAttribute>(typeof(OptionsValidationTests).Assembly).Single(a => a.Key == "RepositoryRoot").Value!;
        var readme = await File.ReadAllTextAsync(Path.Combine(root, "src/MailPipe.Extensions.DependencyInjection/README.md"));
        var example = readme[readme.IndexOf("## Checked at start-up", StringComparison.Ordinal)..];
        example = example[(example.IndexOf("```text\n", StringComparison.Ordinal) + 8)..];
        example = example[..example.IndexOf("\n```", StringComparison.Ordinal)];

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Smtp:Port"] = "70000", ["Smtp:TlsMode"] = "starttls" });
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        var start = () => host.StartAsync();
        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        $"{failure.GetType().FullName}: {failure.Message}".Should().Be(example);
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once()
    {
        var failures = await StartFailuresAsync(("Smtp:Host", null), ("Smtp:TlsMode", null), ("Smtp:Port", "0"), ("Smtp:Pool:MaxConnections", "0"), ("Smtp:Timeouts:Connect", "-00:00:01"), ("Smtp:UserName", "me"), ("Smtp:Tls:CaFile", "/nonexistent/ca.pem"));
        failures.Should().HaveCount(7);
        failures.Should().Contain("Smtp:UserName and Smtp:Password go together: set both for AUTH, or neither (an empty value counts as not set).");
        failures.Should().Contain("Smtp:Tls:CaFile '/nonexistent/ca.pem' does not exist (a PEM file of trusted root certificates is expected).");
    }

    /// <summary>
    /// Breaker probe: a CA file that exists but holds no certificate (a key file, a DER file, a broken block) passed
    /// start-up, and the first resolution of the sender (the first request) threw an ArgumentException or a
    /// CryptographicException.
    /// </summary>
    [Theory]
    [InlineData("not a certificate\n", "holds no PEM certificate")]
    [InlineData("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "is not a valid PEM certificate file")]
    public async Task A_ca_file_without_a_valid_certificate_is_reported_at_start_up(string content, string reason)
    {
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(path, content);
            var failures = await StartFailuresAsync(("Smtp:Tls:CaFile", path));
            failures.Should().ContainSingle().Which.Should().StartWith($"Smtp:Tls:CaFile '{path}' {reason}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_ca_file_that_is_a_directory_is_named_as_one()
    {
        // It was reported as "does not exist", sending the user to look for a path that is there.
        var directory = Directory.CreateTempSubdirectory("mailpipe-ca-").FullName;
        try
        {
            var failures = await StartFailuresAsync(("Smtp:Tls:CaFile", directory));
            failures.Should().Equal($"Smtp:Tls:CaFile '{directory}' is a directory; a PEM file of trusted root certificates is expected.");
        }
        finally
        {
            Directory.Delete(directory);
        }
    }

    [Fact]
    public async Task The_same_section_added_twice_reports_each_problem_once()
    {
        // AddMailPipe(section) again "adds configuration": it read the section twice and listed each bad key twice.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(Valid) { ["Smtp:Pool:MaxConection"] = "3", ["Smtp:Port"] = "x" });
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        var start = () => host.StartAsync();
        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        failure.Failures.Should().HaveCount(2).And.OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task Options_set_in_code_are_named_as_properties()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMailPipe(o => o.Port = 70000);
        using var host = builder.Build();
        var start = () => host.StartAsync();
        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        failure.Failures.Should().BeEquivalentTo(
            "MailPipeOptions.Host is required: the SMTP server's host name or IP address.",
            "MailPipeOptions.Port must be between 1 and 65535; it is 70000.",
            "MailPipeOptions.TlsMode is required, with no default: one of None, Implicit, StartTlsRequired, StartTlsWhenAvailable.");
    }

    [Fact]
    public async Task A_keyed_sender_is_validated_under_its_own_section()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Smtp:Bulk:Host"] = "127.0.0.1", ["Smtp:Bulk:Port"] = "99999" });
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"));
        using var host = builder.Build();
        var start = () => host.StartAsync();
        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        failure.OptionsName.Should().Be("bulk");
        failure.Failures.Should().Contain("Smtp:Bulk:Port must be between 1 and 65535; it is 99999.");
    }

    [Fact]
    public async Task A_valid_configuration_starts_and_opens_no_connection()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(Valid);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        using var host = builder.Build();
        await host.StartAsync();
        var sender = host.Services.GetRequiredService<SmtpSender>();
        sender.GetStatistics().Opened.Should().Be(0);
        await host.StopAsync();
    }

    [Fact]
    public async Task The_sample_does_not_start_without_a_host()
    {
        // The sample run as a process, as a user starts it: under WebApplicationFactory a start that fails can surface
        // as the factory's own ObjectDisposedException instead of the validation's (a race of its deferred host).
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "MailPipe.Samples.WebApi.dll"));
        start.Environment["Smtp__Host"] = "";
        start.Environment["Smtp__TlsMode"] = "None";
        start.Environment["ASPNETCORE_URLS"] = "http://127.0.0.1:0";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        var text = await output + await error;
        process.ExitCode.Should().NotBe(0, text);
        text.Should().Contain("Microsoft.Extensions.Options.OptionsValidationException: Smtp:Host is required: the SMTP server's host name or IP address (environment variable Smtp__Host).");
    }

    private static async Task<IReadOnlyList<string>> StartFailuresAsync(params (string Key, string? Value)[] changes)
    {
        var settings = new Dictionary<string, string?>(Valid);
        foreach (var (key, value) in changes)
        {
            if (value is null)
            {
                settings.Remove(key);
            }
            else
            {
                settings[key] = value;
            }
        }

        return await HostStartFailuresAsync(settings);
    }

    /// <summary>
    /// Starts a host whose MailPipe is configured from the Smtp section of <paramref name="settings"/> (and whatever
    /// <paramref name="configure"/> adds to it); returns the failures of the options' validation that stopped the start,
    /// none when it started.
    /// </summary>
    internal static async Task<IReadOnlyList<string>> HostStartFailuresAsync(Dictionary<string, string?> settings, Action<IMailPipeBuilder, IConfiguration>? configure = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        var mailPipe = builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        configure?.Invoke(mailPipe, builder.Configuration);
        using var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch (OptionsValidationException failure)
        {
            return failure.Failures.ToList();
        }

        await host.StopAsync();
        return [];
    }
}
