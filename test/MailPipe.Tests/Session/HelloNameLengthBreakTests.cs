using MailPipe.Tests.Pooling;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>
/// An EHLO/HELO name longer than a domain may be (255 octets, RFC 5321 §4.5.3.1.2) is the caller's mistake, refused
/// before a byte is written; it was sent (a 100,000-character line), the server's 500 came back as a refused session on
/// every connection of the pool. Breaker10.
/// </summary>
public sealed class HelloNameLengthBreakTests
{
    [Theory]
    [InlineData(256)]
    [InlineData(100_000)]
    public async Task EhloAsync_refuses_a_name_over_255_octets_before_writing(int length)
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var act = () => session.EhloAsync(new string('a', length)).Safe();

        (await act.Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be("domain");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().Be("NOOP\r\n");
    }

    [Fact]
    public async Task A_name_of_255_octets_is_sent()
    {
        var name = new string('a', 63) + "." + new string('b', 63) + "." + new string('c', 63) + "." + new string('d', 63);
        name.Length.Should().Be(255);
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", $"C: EHLO {name}", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        (await session.EhloAsync(name).Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public void The_sender_refuses_an_EhloName_over_255_octets_naming_it()
    {
        var options = PoolTestMessages.Options(2525);
        options.EhloName = new string('é', 128); // 256 octets in UTF-8

        FluentActions.Invoking(() => new SmtpSender(options)).Should().Throw<ArgumentException>().Which.ParamName.Should().Be("EhloName");
    }
}
