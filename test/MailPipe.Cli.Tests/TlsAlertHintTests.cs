using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// <c>--tls</c> against a server that speaks TLS and ends the handshake with an alert (OpenSMTPD 6.8 with an RSA key
/// under OpenSSL 3 does, on every connection) said "Authentication failed, see inner exception." and then advised
/// <c>--starttls</c> for a port that greets in plain text — wrong here: the server had answered in TLS. The hint is for
/// a port that did answer in plain text; the alert is now named.
/// </summary>
public sealed class TlsAlertHintTests
{
    [Theory]
    [InlineData("probe")]
    [InlineData("send")]
    public async Task An_alert_is_named_and_not_taken_for_a_plain_text_port(string command)
    {
        var run = await RunAgainstAsync(command, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80]);

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        run.Error.Should().Contain("alert internal error").And.NotContain("see inner exception").And.NotContain("--starttls");
    }

    [Theory]
    [InlineData("probe")]
    [InlineData("send")]
    public async Task A_plain_text_answer_still_gets_the_starttls_hint(string command)
    {
        var run = await RunAgainstAsync(command, Encoding.ASCII.GetBytes("220 plain.test ESMTP\r\n"));

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        run.Error.Should().Contain("answered in plain text").And.Contain("needs --starttls");
    }

    /// <summary>Runs the command with <c>--tls</c> against a port that answers the first bytes it gets with <paramref name="answer"/>.</summary>
    private static async Task<CliRunner.Run> RunAgainstAsync(string command, byte[] answer)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serving = ServeAsync(listener, answer);
        string[] arguments = command == "probe"
            ? ["probe", "--server", $"127.0.0.1:{port}", "--tls"]
            : ["send", "--server", $"127.0.0.1:{port}", "--tls", "--from", "a@example.test", "--to", "b@example.test", "--body", "x"];
        var run = await CliRunner.RunAsync(arguments);
        await serving.WaitAsync(TimeSpan.FromSeconds(30));
        return run;
    }

    private static async Task ServeAsync(TcpListener listener, byte[] answer)
    {
        using var socket = await listener.AcceptSocketAsync();
        var buffer = new byte[4096];
        _ = await socket.ReceiveAsync(buffer, SocketFlags.None);
        await socket.SendAsync(answer, SocketFlags.None);
        while (await socket.ReceiveAsync(buffer, SocketFlags.None) > 0)
        {
        }
    }
}
