namespace MailPipe.Tests.Pooling;

/// <summary>
/// A new user's probe: a sender for an IPv6 host was named <c>::1:5870</c> in its logs, results' messages and metric
/// tags, which reads as the address <c>::1:5870</c> with no port. An IPv6 address is written in brackets (RFC 3986 §3.2.2).
/// </summary>
public class SenderIpv6NameTests
{
    [Theory]
    [InlineData("::1", "[::1]:5870")]
    [InlineData("[::1]", "[::1]:5870")]
    [InlineData("127.0.0.1", "127.0.0.1:5870")]
    [InlineData("smtp.example.test", "smtp.example.test:5870")]
    public async Task The_senders_name_writes_an_IPv6_host_in_brackets(string host, string expected)
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = host, Port = 5870, TlsMode = SmtpTlsMode.None });

        sender.Name.Should().Be(expected);
    }
}
