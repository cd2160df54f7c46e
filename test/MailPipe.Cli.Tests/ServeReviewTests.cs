namespace MailPipe.Cli.Tests;

/// <summary><c>mailpipe serve</c> tried as a reviewer would (session 12): each test here failed before its fix.</summary>
public class ServeReviewTests
{
    /// <summary>
    /// <c>--listen ""</c> (<c>--listen "$ADDRESS"</c> with the variable unset) was taken as the default 127.0.0.1:2525
    /// without a word: the server listened where it was not asked to (or failed with "Address already in use", exit 2).
    /// Every other empty value (a path, <c>--server</c>, <c>--timeout</c>) is a usage error; so is this one now.
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    public async Task An_empty_listen_address_is_a_usage_error_not_the_default(string value)
    {
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync("serve", "--listen", value, "--save-dir", dir.Path);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().StartWith("mailpipe serve: --listen: the address is empty; give host:port, [IPv6]:port or :port");
        run.Output.Should().NotContain("listening");
    }

    /// <summary>
    /// SmtpServer reads MAIL's SIZE as a 32-bit number and takes one it cannot read as none: a declared size of 2 GiB
    /// or more (<c>SIZE=4294967296</c>) got 250 where the README promises 552 (RFC 1870 §6.1), and so did a SIZE that is
    /// not a number (<c>SIZE=abc</c>, which RFC 1870 §4 makes a syntax error: 501). The client then sent its data for
    /// nothing, up to the close.
    /// </summary>
    [Theory]
    [InlineData("20000", "552 ")]
    [InlineData("2147483648", "552 ")]
    [InlineData("99999999999999999999999", "552 ")]
    [InlineData("abc", "501 5.5.4")]
    [InlineData("-1", "501 5.5.4")]
    public async Task A_declared_size_over_the_limit_or_not_a_number_is_refused_at_MAIL(string size, string expected)
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--max-size", "10K");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        await client.ReadReplyAsync();
        await client.SendAsync("EHLO raw.example\r\n");
        await client.ReadReplyAsync();

        await client.SendAsync($"MAIL FROM:<a@example.test> size={size}\r\n");
        (await client.ReadReplyAsync()).Should().StartWith(expected);

        // The session goes on: a MAIL with a size that fits is taken.
        await client.SendAsync("MAIL FROM:<a@example.test> SIZE=100\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");
    }

    /// <summary>
    /// <c>--max-recipients 99999999999</c> (more than a 32-bit count) was refused with "give at least 1": the value was
    /// not too small but too large. The hint now gives the range.
    /// </summary>
    [Fact]
    public async Task A_recipient_limit_too_large_says_the_range_not_at_least_one()
    {
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync("serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path, "--max-recipients", "99999999999");

        run.ExitCode.Should().Be(1);
        run.Error.Should().StartWith("mailpipe serve: --max-recipients: '99999999999' is not accepted: give 1 to 2147483647").And.NotContain("at least 1 (");
    }
}
