using System.Net;
using System.Net.Sockets;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A connection that never finishes opening (a server that accepts and never greets: the wrong TlsMode for the port,
/// StartTlsRequired against an implicit-TLS 465, or a black hole) made every message NotSent with "No connection was
/// available within 30 s (AcquireTimeout)": the acquire timeout (30 s) ends before the greeting's reply timeout
/// (30 s, started later), so the user read it as a busy pool. Found with the DI defaults against Postfix's 4650.
/// The result now says that the connection was still being opened and what usually causes it.
/// </summary>
public sealed class SmtpSenderAcquireTimeoutMessageTests
{
    [Fact]
    public async Task AcquireTimeout_while_the_only_connection_is_still_opening_says_so_not_that_the_pool_was_busy()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepted = listener.AcceptSocketAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = PoolTestMessages.Options(((IPEndPoint)listener.LocalEndpoint).Port, maxConnections: 1);
        options.TimeProvider = time;
        options.AcquireTimeout = TimeSpan.FromSeconds(5);
        options.Timeouts = SmtpTimeouts.Rfc5321;
        await using var sender = new SmtpSender(options);

        var send = sender.SendAsync(PoolTestMessages.Create("opening", 0).Message);
        using var socket = await accepted.Safe();   // accepted, never greeted
        await WaitUntilAsync(() => sender.GetStatistics().Opening == 1);
        time.Advance(TimeSpan.FromSeconds(6));
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = result.Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        error.Message.Should().Contain("AcquireTimeout").And.Contain("still being opened").And.Contain("TlsMode");
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + ScriptedSmtpServer.SafetyTimeout;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        condition().Should().BeTrue();
    }
}
