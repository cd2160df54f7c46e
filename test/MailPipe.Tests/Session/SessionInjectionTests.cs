using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>CR, LF or NUL in any argument is refused before one byte reaches the server (command injection).</summary>
public class SessionInjectionTests
{
    private static readonly string[] BadParts = ["\r", "\n", "\0", "\r\n"];

    /// <summary>Each command with the forbidden characters in each of its arguments.</summary>
    private static readonly Dictionary<string, Func<AsyncSmtpSession, string, Task>> Commands = new()
    {
        ["MAIL reverse-path"] = (s, bad) => s.MailFromAsync($"a@example.test{bad}RCPT TO:<victim@example.test>"),
        ["MAIL parameters"] = (s, bad) => s.MailFromAsync("a@example.test", $"SIZE=10{bad}RSET"),
        ["RCPT forward-path"] = (s, bad) => s.RcptToAsync($"b@example.test{bad}DATA"),
        ["RCPT parameters"] = (s, bad) => s.RcptToAsync("b@example.test", $"NOTIFY=NEVER{bad}"),
        ["EHLO domain"] = (s, bad) => s.EhloAsync($"client.example.test{bad}MAIL FROM:<x@example.test>"),
        ["HELO domain"] = (s, bad) => s.HeloAsync($"{bad}client.example.test"),
        ["VRFY address"] = (s, bad) => s.VrfyAsync($"postmaster{bad}"),
        ["raw command line"] = (s, bad) => s.SendCommandAsync($"XFOO a{bad}QUIT"),
        ["raw command line with trailing CRLF"] = (s, bad) => s.SendCommandAsync($"XFOO{bad}\r\n"),
    };

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var command in Commands.Keys)
        {
            for (var i = 0; i < BadParts.Length; i++)
            {
                data.Add(command, i);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Argument_with_CR_LF_or_NUL_throws_and_not_one_byte_reaches_the_server(string command, int badPart)
    {
        // The server expects NOOP next: if the refused command had written anything, it would read that instead.
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var act = () => Commands[command](session, BadParts[badPart]).Safe();

        await act.Should().ThrowAsync<ArgumentException>();
        session.State.Should().Be(SmtpSessionState.Connected, "a refused argument does not break the session");
        session.PendingReplyCount.Should().Be(0);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().Be("NOOP\r\n");
    }

    [Theory]
    [InlineData("a<b@example.test")]
    [InlineData("<a>b@example.test>")]
    public async Task Angle_brackets_inside_a_path_are_refused_before_sending(string path)
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await FluentActions.Awaiting(() => session.MailFromAsync(path)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.RcptToAsync(path)).Should().ThrowAsync<ArgumentException>();

        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        server.ReceivedText.Should().Be("NOOP\r\n");
    }

    [Theory]
    [InlineData("client example")]
    [InlineData("client\texample")]
    [InlineData("")]
    [InlineData(" ")]
    public async Task Ehlo_domain_with_white_space_or_empty_is_refused_before_sending(string domain)
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await FluentActions.Awaiting(() => session.EhloAsync(domain)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.HeloAsync(domain)).Should().ThrowAsync<ArgumentException>();

        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        server.ReceivedText.Should().Be("NOOP\r\n");
    }

    [Fact]
    public async Task Empty_arguments_are_refused_before_sending()
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await FluentActions.Awaiting(() => session.RcptToAsync(" ")).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.VrfyAsync(string.Empty)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.SendCommandAsync("\r\n")).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.MailFromAsync(null!)).Should().ThrowAsync<ArgumentNullException>();

        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        server.ReceivedText.Should().Be("NOOP\r\n");
    }
}
