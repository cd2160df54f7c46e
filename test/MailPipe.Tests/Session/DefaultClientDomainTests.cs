using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.Transport;

namespace MailPipe.Tests.Session;

/// <summary>The default EHLO name: a fully qualified name, else the address literal of the local end (RFC 5321 §4.1.3, §4.1.4).</summary>
public sealed class DefaultClientDomainTests
{
    [Theory]
    [InlineData("mail.example.org", "127.0.0.1", "mail.example.org")]
    [InlineData("mail.example.org.", "127.0.0.1", "mail.example.org")]
    [InlineData("vm", "127.0.0.1", "[127.0.0.1]")]
    [InlineData(null, "192.0.2.7", "[192.0.2.7]")]
    [InlineData("localhost", "127.0.0.1", "[127.0.0.1]")]
    [InlineData("localhost.localdomain", "127.0.0.1", "[127.0.0.1]")]
    [InlineData("bad name.example", "127.0.0.1", "[127.0.0.1]")]
    [InlineData("vm", "::1", "[IPv6:::1]")]
    [InlineData("vm", "2001:db8::1", "[IPv6:2001:db8::1]")]
    [InlineData("vm", "::ffff:127.0.0.1", "[127.0.0.1]")]
    [InlineData("vm", "fe80::1%2", "[IPv6:fe80::1]")]
    public void Fully_qualified_name_else_the_local_address_literal(string? name, string local, string expected) =>
        Choose(name, new IPEndPoint(IPAddress.Parse(local), 12345)).Should().Be(expected);

    [Fact]
    public void Without_a_local_address_the_IPv4_loopback_literal() =>
        Choose("vm", localEndPoint: null).Should().Be("[127.0.0.1]");

    [Fact]
    public async Task Before_connect_there_is_no_default()
    {
        await using var session = new AsyncSmtpSession();
        var act = () => session.GetDefaultClientDomainAsync();
        await act.Should().ThrowAsync<InvalidOperationException>();
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task ConnectAsync_without_a_name_sends_the_default_computed_after_connect(string loopback)
    {
        var address = IPAddress.Parse(loopback);
        using var listener = new TcpListener(address, 0);
        try
        {
            listener.Start();
        }
        catch (SocketException) when (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            Assert.Fail("IPv6 loopback is not available on this machine");
        }

        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            await using var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII);
            await stream.WriteAsync("220 test.example ESMTP\r\n"u8.ToArray());
            var ehlo = await reader.ReadLineAsync();
            await stream.WriteAsync("250 test.example\r\n"u8.ToArray());
            var quit = await reader.ReadLineAsync();
            await stream.WriteAsync("221 bye\r\n"u8.ToArray());
            return ehlo;
        });

        await using var session = new AsyncSmtpSession();
        var reply = await session.ConnectAsync(loopback, port, SmtpTlsMode.None, ehloDomain: null);
        reply.Code.Should().Be(250);
        var expected = await session.GetDefaultClientDomainAsync();
        await session.QuitAsync();
        var ehloLine = await server.WaitAsync(TimeSpan.FromSeconds(30));

        ehloLine.Should().Be("EHLO " + expected);
        var fullyQualified = await LocalHostName.FullyQualifiedAsync();
        expected.Should().Be(fullyQualified ?? (address.AddressFamily == AddressFamily.InterNetworkV6 ? "[IPv6:::1]" : "[127.0.0.1]"));
        expected.Should().Match(e => e.StartsWith('[') || (e.Contains('.') && !e.StartsWith("localhost", StringComparison.OrdinalIgnoreCase)), "a bare host name is refused by servers");
    }

    /// <summary>What the session does with a name: the transport's lookup keeps it only when fully qualified, the protocol writes the name or the literal.</summary>
    private static string Choose(string? name, EndPoint? localEndPoint) =>
        SmtpHelloName.ForClient(LocalHostName.IsFullyQualified(name) ? name : null, localEndPoint);
}
