namespace MailPipe.Cli.Tests;

/// <summary>
/// A breaker's probe of the password variable's line end (merge d51ff7e): exactly one trailing LF or CRLF is dropped,
/// nothing else; a variable holding only that line end counts as empty (reported as not set or empty).
/// </summary>
public class Breaker16SecretLineEndTests
{
    [Theory]
    [InlineData("pw\n", "pw")]
    [InlineData("pw\r\n", "pw")]
    [InlineData("pw\n\n", "pw\n")]
    [InlineData("pw\r\n\r\n", "pw\r\n")]
    [InlineData("pw\r", "pw\r")]
    [InlineData("pw \n", "pw ")]
    [InlineData("\npw", "\npw")]
    [InlineData("\r\n\r\n", "\r\n")]
    [InlineData("\r", "\r")]
    [InlineData("\n", null)]
    [InlineData("\r\n", null)]
    public void Exactly_one_trailing_line_end_is_dropped(string value, string? expected)
    {
        var name = "MAILPIPE_BREAKER16_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(name, value);
        try
        {
            AuthSettings.ReadSecretVariable(name).Should().Be(expected);
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }

    [Fact]
    public void An_unset_variable_is_null() => AuthSettings.ReadSecretVariable("MAILPIPE_BREAKER16_" + Guid.NewGuid().ToString("N")).Should().BeNull();
}
