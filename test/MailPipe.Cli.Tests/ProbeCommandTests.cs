using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary><c>mailpipe probe</c>.</summary>
public sealed class ProbeCommandTests
{
    private static string? Modern(string command) => command.StartsWith("EHLO", StringComparison.Ordinal)
        ? "250-scripted.test greets you\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME"
        : ScriptedSmtpServer.AcceptAll(command);

    [Fact]
    public async Task Reports_the_greeting_and_the_extensions_and_that_STARTTLS_is_not_offered()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test ESMTP ready", Modern);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--helo-name", "client.test");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("greeting: 220 scripted.test ESMTP ready")
            .And.Contain("EHLO: 250 scripted.test")
            .And.Contain("  SIZE 1000000")
            .And.Contain("STARTTLS: not offered");
        server.Commands.Should().Equal("EHLO client.test", "QUIT");
    }

    /// <summary>
    /// Breaker probe: <c>probe</c> (or <c>send</c>) against an implicit-TLS port without <c>--tls</c> waits for a greeting
    /// that never comes (the server waits for the TLS hello) and said only "Timed out ... waiting for the reply to
    /// (greeting)"; it now names the way out.
    /// </summary>
    [Theory]
    [InlineData("probe")]
    [InlineData("send")]
    public async Task A_silent_port_hints_at_implicit_TLS(string command)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var accepted = listener.AcceptTcpClientAsync(); // accepted, never a byte: as a TLS server waiting for the client's hello

        // --timeout also times the connect: 5 s, so that a cold, loaded process's connect does not time out first
        // ("Timed out ... connecting", with no hint): the greeting's timeout is the one this is about.
        string[] arguments = command == "probe"
            ? ["probe", "--server", $"127.0.0.1:{port}", "--timeout", "5s"]
            : ["send", "--server", $"127.0.0.1:{port}", "--timeout", "5s", "--from", "a@example.test", "--to", "b@example.test", "--body", "x"];
        var run = await CliRunner.RunAsync(arguments);

        run.ExitCode.Should().Be(8, run.Output + run.Error);
        (run.Output + run.Error).Should().Contain("waiting for the greeting").And.Contain("--tls")
            .And.NotContain("SmtpTlsMode", "the library's advice names its API; the command line's is --tls, said once");
        (await accepted).Dispose();
    }

    [Fact]
    public async Task Json_is_one_object()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", Modern);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--json");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        using var document = JsonDocument.Parse(run.OutputLines.Single());
        var root = document.RootElement;
        root.GetProperty("type").GetString().Should().Be("probe");
        root.GetProperty("greeting").GetProperty("code").GetInt32().Should().Be(220);
        root.GetProperty("ehlo").GetProperty("domain").GetString().Should().Be("scripted.test");
        root.GetProperty("ehlo").GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).Should().Equal("PIPELINING", "SIZE 1000000", "8BITMIME");
        root.GetProperty("startTlsOffered").GetBoolean().Should().BeFalse();
        root.GetProperty("tls").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("ehloAfterStartTls").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("exitCode").GetInt32().Should().Be(0);
    }

    [Fact]
    public async Task Starttls_required_but_not_offered_exits_2()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", Modern);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--starttls");

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        run.Error.Should().Contain("does not offer STARTTLS");
        run.Output.Should().Contain("  8BITMIME", "what was learnt is still shown");
    }

    [Fact]
    public async Task Starttls_shows_the_extensions_before_and_after_and_the_certificate()
    {
        using var certificate = new TestCertificate("localhost", withLoopbackAddress: true);
        await using var server = await TestSmtpServer.StartAsync(certificate: certificate.Certificate);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--starttls", "--ca-file", certificate.PemFile, "--json");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        using var document = JsonDocument.Parse(run.OutputLines.Single());
        var root = document.RootElement;
        Extensions(root.GetProperty("ehlo")).Should().Contain("STARTTLS");
        root.GetProperty("startTls").GetProperty("code").GetInt32().Should().Be(220);
        Extensions(root.GetProperty("ehloAfterStartTls")).Should().NotContain("STARTTLS");
        var tls = root.GetProperty("tls");
        tls.GetProperty("established").GetBoolean().Should().BeTrue();
        tls.GetProperty("protocol").GetString().Should().StartWith("TLSv1.");
        tls.GetProperty("certificate").GetProperty("subject").GetString().Should().Be("CN=localhost");
        tls.GetProperty("certificate").GetProperty("issuer").GetString().Should().Be("CN=localhost");
        tls.GetProperty("nameMatched").GetBoolean().Should().BeTrue();
        tls.GetProperty("trusted").GetBoolean().Should().BeTrue();
    }

    [Fact]
    public async Task An_untrusted_certificate_is_still_described_and_exits_2()
    {
        using var certificate = new TestCertificate("mail.example.test");
        await using var server = await TestSmtpServer.StartAsync(certificate: certificate.Certificate, implicitTls: true);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--tls");

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        run.Output.Should().Contain("TLS: handshake failed")
            .And.Contain("subject: CN=mail.example.test")
            .And.Contain("names: mail.example.test")
            .And.Contain("name 127.0.0.1: NOT matched")
            .And.Contain("trusted: NO");
    }

    [Fact]
    public async Task Accept_name_mismatch_lets_the_probe_through_and_says_so()
    {
        using var certificate = new TestCertificate("mail.example.test");
        await using var server = await TestSmtpServer.StartAsync(certificate: certificate.Certificate, implicitTls: true);

        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--tls", "--ca-file", certificate.PemFile, "--accept-name-mismatch");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("TLS: TLSv1.").And.Contain("NOT matched (accepted by --accept-name-mismatch)").And.Contain("trusted: yes");
    }

    [Fact]
    public async Task Helo_is_shown_when_Ehlo_is_not_understood()
    {
        await using var server = new ScriptedSmtpServer(
            "220 old.test",
            command => command.StartsWith("EHLO", StringComparison.Ordinal) ? "502 5.5.1 command not implemented" : ScriptedSmtpServer.AcceptAll(command));

        var run = await CliRunner.RunAsync("probe", "--server", server.Address);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("EHLO: 502").And.Contain("HELO: 250 scripted.test");
    }

    [Fact]
    public async Task Refused_greeting_connection_refused_and_silence_map_to_2_2_and_8()
    {
        await using (var refusing = new ScriptedSmtpServer("554 5.3.2 go away", ScriptedSmtpServer.AcceptAll))
        {
            (await CliRunner.RunAsync("probe", "--server", refusing.Address)).ExitCode.Should().Be(2);
        }

        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        (await CliRunner.RunAsync("probe", "--server", $"127.0.0.1:{port}")).ExitCode.Should().Be(2);

        await using var silent = new ScriptedSmtpServer(greeting: null, ScriptedSmtpServer.AcceptAll);
        var timedOut = await CliRunner.RunAsync("probe", "--server", silent.Address, "--timeout", "0.5", "--json");
        timedOut.ExitCode.Should().Be(8, timedOut.Output + timedOut.Error);
        using var document = JsonDocument.Parse(timedOut.OutputLines.Single());
        document.RootElement.GetProperty("error").GetString().Should().NotBeNullOrEmpty();
    }

    [Theory]
    [InlineData("probe")]
    [InlineData("probe|--server|localhost|--tls|--starttls")]
    [InlineData("probe|--server|host:0")]
    [InlineData("probe|--server|localhost|--ca-file|/nonexistent/ca.pem")]
    public async Task Usage_errors_exit_1(string args)
    {
        var run = await CliRunner.RunAsync(args.Split('|'));

        run.ExitCode.Should().Be(1, run.Output + run.Error);
    }

    private static IEnumerable<string?> Extensions(JsonElement ehlo) =>
        ehlo.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()?.Split(' ')[0]);
}
