namespace MailPipe.Cli.Tests;

public class ServerAddressTests
{
    [Theory]
    [InlineData("mail.example.test", "mail.example.test", 25)]
    [InlineData("mail.example.test:587", "mail.example.test", 587)]
    [InlineData("127.0.0.1:2525", "127.0.0.1", 2525)]
    [InlineData("[::1]:2525", "::1", 2525)]
    [InlineData("[::1]", "::1", 25)]
    [InlineData("::1", "::1", 25)]
    [InlineData("[2001:db8::1]:465", "2001:db8::1", 465)]
    [InlineData("2001:db8::1", "2001:db8::1", 25)]
    [InlineData("[::1:2525]", "::1:2525", 25)]
    public void Parses_host_and_port(string text, string host, int port)
    {
        ServerAddress.TryParse(text, out var address, out var error).Should().BeTrue(error);
        address.Should().Be(new ServerAddress(host, port));
    }

    [Theory]
    [InlineData("")]
    [InlineData("host:")]
    [InlineData("host:0")]
    [InlineData("host:65536")]
    [InlineData("host:smtp")]
    [InlineData("[::1")]
    [InlineData("[::1]x")]
    [InlineData("[example.test]:25")]
    [InlineData("::1:zz:")]
    [InlineData("a b:25")]
    public void Rejects_malformed_values(string text)
    {
        ServerAddress.TryParse(text, out var address, out var error).Should().BeFalse();
        address.Should().BeNull();
        error.Should().NotBeNullOrEmpty();
    }

    /// <summary>
    /// <c>--server ::1:2525</c> connected to the address ::1:2525 (0:0:0:0:0:0:1:2525) on port 25 and failed with "No
    /// route to host": a bare IPv6 address whose last group reads as a port after another address is ambiguous, so it
    /// is a usage error that names both bracketed forms (as <c>serve --listen</c> refuses it).
    /// </summary>
    [Theory]
    [InlineData("::1:2525", "[::1]:2525")]
    [InlineData("fe80::1:25", "[fe80::1]:25")]
    public void A_bare_IPv6_address_that_ends_like_a_port_is_refused_with_both_readings(string text, string meant)
    {
        ServerAddress.TryParse(text, out var address, out var error).Should().BeFalse();
        address.Should().BeNull();
        error.Should().Contain(meant).And.Contain($"[{text}]");
    }

    [Fact]
    public void Displays_IPv6_in_brackets()
    {
        new ServerAddress("::1", 2525).ToString().Should().Be("[::1]:2525");
        new ServerAddress("example.test", 25).ToString().Should().Be("example.test:25");
    }
}
