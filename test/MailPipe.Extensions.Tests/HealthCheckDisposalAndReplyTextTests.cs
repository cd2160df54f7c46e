using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// Two loose ends of the health check. A check racing the sender's disposal (the application stopping) reported
/// Healthy when its NOOP was answered after the disposal began. And its description carried the server's reply text
/// as it came: every line (joined by line breaks) of a reply of up to 256 KiB, into health reports and logs.
/// </summary>
public sealed class HealthCheckDisposalAndReplyTextTests
{
    [Fact]
    public async Task A_check_whose_NOOP_is_answered_after_the_disposal_began_is_unhealthy()
    {
        var noopSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answerNoop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LineServer(async (c, ct) =>
        {
            await c.SendAsync("220 test ESMTP", ct);
            await c.ExpectAsync("EHLO", ct);
            await c.SendAsync("250 test", ct);
            await c.ExpectAsync("NOOP", ct);
            noopSeen.TrySetResult();
            await answerNoop.Task.WaitAsync(ct);
            await c.SendAsync("250 ok", ct);
            await c.ExpectAsync("QUIT", ct);
            await c.SendAsync("221 bye", ct);
        });
        await using var provider = Provider(server);
        var checks = provider.GetRequiredService<HealthCheckService>();
        (await checks.CheckHealthAsync()).Status.Should().Be(HealthStatus.Healthy); // opens the connection, left idle

        var report = checks.CheckHealthAsync();
        await noopSeen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        provider.GetRequiredService<SmtpSender>().Dispose(); // the application stops while the NOOP waits for its reply
        answerNoop.TrySetResult();

        var entry = (await report.WaitAsync(TimeSpan.FromSeconds(30))).Entries["mailpipe"];
        entry.Status.Should().Be(HealthStatus.Unhealthy);
        entry.Description.Should().Be("The sender test is disposed (the application is stopping).");
    }

    [Fact]
    public async Task A_check_that_starts_after_the_disposal_is_unhealthy()
    {
        await using var server = new LineServer((c, ct) => c.SendAsync("220 test ESMTP", ct));
        await using var provider = Provider(server);
        provider.GetRequiredService<SmtpSender>().Dispose();

        var entry = (await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["mailpipe"];

        entry.Status.Should().Be(HealthStatus.Unhealthy);
        entry.Description.Should().Be("The sender test is disposed (the application is stopping).");
    }

    [Fact]
    public async Task The_description_is_one_bounded_line_whatever_the_server_replies()
    {
        var line = new string('x', 2000);
        await using var server = new LineServer(async (c, ct) =>
        {
            foreach (var reply in new[] { "554-5.3.2 first line\u001b[31m", $"554-{line}", $"554-{line}", $"554 5.3.2 {line}" })
            {
                await c.SendAsync(reply, ct);
            }
        });
        await using var provider = Provider(server);

        var entry = (await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["mailpipe"];

        entry.Status.Should().Be(HealthStatus.Unhealthy);
        entry.Description.Should().StartWith("Opening a connection to test failed (ConnectionRefused): test refused the session: 554-5.3.2 first line [31m 554-xxx");
        entry.Description.Should().HaveLength(512).And.EndWith("x…").And.NotContainAny("\r", "\n", "\u001b");
        entry.Exception!.Message.Should().Contain("\n554 5.3.2 ", "the exception keeps the whole reply");
    }

    [Theory]
    [InlineData("short", "short")]
    [InlineData("a\r\nb\n\n\tc  d\u2028e\u202Ef\u0000", "a b c d e f")]
    [InlineData("  leading and trailing \r\n", "leading and trailing")]
    public void Bounded_makes_one_line(string text, string expected)
    {
        MailPipeHealthCheck.Bounded(text).Should().Be(expected);
    }

    [Fact]
    public void Bounded_keeps_512_characters_and_cuts_longer_text_with_an_ellipsis_never_inside_a_surrogate_pair()
    {
        var exact = new string('a', 512);
        var emoji = new string('a', 510) + "\U0001F600" + "tail";

        MailPipeHealthCheck.Bounded(exact + " \r\n").Should().Be(exact);
        MailPipeHealthCheck.Bounded(exact + "b").Should().Be(new string('a', 511) + "…");
        MailPipeHealthCheck.Bounded(emoji).Should().Be(new string('a', 510) + "…");
    }

    private static ServiceProvider Provider(LineServer server)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = server.Port; o.TlsMode = SmtpTlsMode.None; o.EhloName = "client.example.test"; })
            .ConfigureSender((_, o) =>
            {
                o.Name = "test";
                o.MaxConnections = 1;
            })
            .AddHealthCheck(timeout: TimeSpan.FromSeconds(20));
        return services.BuildServiceProvider();
    }
}
