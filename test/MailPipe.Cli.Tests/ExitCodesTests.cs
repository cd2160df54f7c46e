namespace MailPipe.Cli.Tests;

public class ExitCodesTests
{
    [Theory]
    [InlineData(SmtpErrorCode.ConnectionRefused, 2)]
    [InlineData(SmtpErrorCode.HostNotFound, 2)]
    [InlineData(SmtpErrorCode.SystemError, 2)]
    [InlineData(SmtpErrorCode.ConnectionClosed, 2)]
    [InlineData(SmtpErrorCode.TlsHandshakeFailed, 2)]
    [InlineData(SmtpErrorCode.BadCertificate, 2)]
    [InlineData(SmtpErrorCode.BadCertificateName, 2)]
    [InlineData(SmtpErrorCode.StartTlsNotOffered, 2)]
    [InlineData(SmtpErrorCode.StartTlsResponseInjection, 2)]
    [InlineData(SmtpErrorCode.AuthenticationError, 3)]
    [InlineData(SmtpErrorCode.ProtocolError, 8)]
    [InlineData(SmtpErrorCode.ReplyTooLong, 8)]
    [InlineData(SmtpErrorCode.TimedOut, 8)]
    public void Errors_outside_the_data_map_to_their_code(SmtpErrorCode error, int expected) =>
        ExitCodes.ForError(error).Should().Be(expected);

    [Fact]
    public void Every_error_code_maps_to_a_failure() =>
        Enum.GetValues<SmtpErrorCode>().Select(ExitCodes.ForError).Should().OnlyContain(code => code >= 2 && code <= 8);

    [Fact]
    public void A_batch_takes_the_highest_code()
    {
        ExitCodes.Combine([]).Should().Be(0);
        ExitCodes.Combine([0, 0]).Should().Be(0);
        ExitCodes.Combine([0, 5, 4]).Should().Be(5);
        ExitCodes.Combine([1, 7, 0]).Should().Be(7);
    }
}
