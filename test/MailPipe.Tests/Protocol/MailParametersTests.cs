using System.Text;
using MailPipe.Protocol;

namespace MailPipe.Tests.Protocol;

/// <summary>The MAIL/RCPT parameter formatting and the one check of the caller's parameter strings (issue #9: wire formatting in Protocol/).</summary>
public class MailParametersTests
{
    private static readonly SmtpEnvelope Plain = new("a@example.test", "b@example.test");

    [Fact]
    public void Mail_parameters_go_on_the_line_in_their_order_each_with_a_leading_space()
    {
        var envelope = Plain with { Return = DsnReturn.Headers, EnvelopeId = "id+1=x", MailParameters = "  X-ONE=1 " };
        var mail = new StringBuilder();

        MailParameters.AppendMail(mail, 1234, SmtpBodyType.EightBitMime, smtpUtf8: true, requireTls: true, dsn: true, envelope);

        mail.ToString().Should().Be(" SIZE=1234 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=HDRS ENVID=id+2B1+3Dx X-ONE=1");
    }

    /// <summary>
    /// A keyword the caller wrote in MailParameters went on the line beside MailPipe's own ("SIZE=1234 ... size=99"):
    /// servers took one of the two (Postfix, Exim and aiosmtpd the last); now the caller's replaces MailPipe's own.
    /// </summary>
    [Theory]
    [InlineData("size=99 X-ONE=1", " BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=HDRS ENVID=id size=99 X-ONE=1")]
    [InlineData("BODY=7BIT", " SIZE=1234 SMTPUTF8 REQUIRETLS RET=HDRS ENVID=id BODY=7BIT")]
    [InlineData("SMTPUTF8  requiretls", " SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=id SMTPUTF8  requiretls")]
    [InlineData("RET=FULL ENVID=other", " SIZE=1234 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=FULL ENVID=other")]
    [InlineData("X-SIZE=1 SIZEX", " SIZE=1234 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=HDRS ENVID=id X-SIZE=1 SIZEX")]
    public void A_keyword_in_the_callers_MAIL_parameters_replaces_MailPipes_own(string own, string expected)
    {
        var envelope = Plain with { Return = DsnReturn.Headers, EnvelopeId = "id", MailParameters = own };
        var mail = new StringBuilder();

        MailParameters.AppendMail(mail, 1234, SmtpBodyType.EightBitMime, smtpUtf8: true, requireTls: true, dsn: true, envelope);

        mail.ToString().Should().Be(expected);
    }

    [Fact]
    public void NOTIFY_or_ORCPT_in_the_recipients_parameters_replaces_MailPipes_own()
    {
        var recipient = new SmtpRecipient("b@example.test") { Notify = DsnNotify.Failure, OriginalRecipient = "b@example.test" };

        MailParameters.ForRecipient(recipient with { Parameters = "notify=NEVER" }, dsn: true).Should().Be("ORCPT=rfc822;b@example.test notify=NEVER");
        MailParameters.ForRecipient(recipient with { Parameters = "ORCPT=rfc822;c@example.test" }, dsn: true).Should().Be("NOTIFY=FAILURE ORCPT=rfc822;c@example.test");
    }

    [Fact]
    public void Without_DSN_neither_RET_nor_ENVID_is_written_and_7BIT_writes_no_BODY()
    {
        var envelope = Plain with { Return = DsnReturn.Full, EnvelopeId = "id" };
        var mail = new StringBuilder();

        MailParameters.AppendMail(mail, null, SmtpBodyType.SevenBit, smtpUtf8: false, requireTls: false, dsn: false, envelope);

        mail.ToString().Should().BeEmpty();
    }

    [Fact]
    public void BINARYMIME_is_written_as_BODY()
    {
        var mail = new StringBuilder();

        MailParameters.AppendMail(mail, null, SmtpBodyType.BinaryMime, smtpUtf8: false, requireTls: false, dsn: false, Plain);

        mail.ToString().Should().Be(" BODY=BINARYMIME");
    }

    [Theory]
    [InlineData("rfc822;b@example.test", "ORCPT=rfc822;b@example.test")]
    [InlineData("RFC822;b@example.test", "ORCPT=rfc822;b@example.test")]
    [InlineData("b\u00f8b@ex\u00e4mple.test", "ORCPT=utf-8;b\\x{F8}b@ex\\x{E4}mple.test")]
    [InlineData("rfc822;b\u00f8b+1@example.test", "ORCPT=utf-8;b\\x{F8}b\\x{2B}1@example.test")]
    [InlineData("utf-8;\u7528\u6237@example.test", "ORCPT=utf-8;\\x{7528}\\x{6237}@example.test")]
    public void ORCPT_is_written_with_one_address_type_and_a_non_ASCII_address_as_utf_8(string original, string expected)
    {
        // A new user's probe: "rfc822;bøb@exämple.test" went as ORCPT=rfc822;rfc822;b+C3+B8b@ex+C3+A4mple.test (the
        // address type twice, and UTF-8 octets under rfc822, which RFC 6533 §3 gives the utf-8 address type for).
        var recipient = new SmtpRecipient("b@example.test") { OriginalRecipient = original };

        MailParameters.ForRecipient(recipient, dsn: true).Should().Be(expected);
    }

    [Fact]
    public void Recipient_parameters_NOTIFY_ORCPT_in_xtext_then_the_callers_own()
    {
        var recipient = new SmtpRecipient("b@example.test") { Notify = DsnNotify.Failure | DsnNotify.Delay, OriginalRecipient = "b+x@example.test", Parameters = "X-TWO=2" };

        MailParameters.ForRecipient(recipient, dsn: true).Should().Be("NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bx@example.test X-TWO=2");
        MailParameters.ForRecipient(recipient, dsn: false).Should().Be("X-TWO=2");
        MailParameters.ForRecipient(new SmtpRecipient("c@example.test"), dsn: true).Should().BeNull();
    }

    [Theory]
    [InlineData("X=1\r\nRSET", null, null, null)]
    [InlineData(null, "a\rb", null, null)]
    [InlineData(null, null, "X=1\nDATA", null)]
    [InlineData(null, null, null, "x\0y")]
    public void Every_raw_parameter_string_is_checked_for_CR_LF_NUL(string? mailParameters, string? envelopeId, string? recipientParameters, string? originalRecipient)
    {
        var envelope = new SmtpEnvelope("a@example.test", [new SmtpRecipient("b@example.test"), new SmtpRecipient("c@example.test") { Parameters = recipientParameters, OriginalRecipient = originalRecipient }])
        {
            MailParameters = mailParameters,
            EnvelopeId = envelopeId,
        };

        FluentActions.Invoking(() => MailParameters.Validate(envelope)).Should().Throw<ArgumentException>();
    }

    [Fact]
    public void A_clean_envelope_passes_the_check()
    {
        FluentActions.Invoking(() => MailParameters.Validate(Plain with { MailParameters = "X=1", EnvelopeId = "id" })).Should().NotThrow();
    }
}
