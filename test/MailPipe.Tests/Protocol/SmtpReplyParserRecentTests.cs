using System.Buffers;
using System.Text;

namespace MailPipe.Tests.Protocol;

public sealed class SmtpReplyParserRecentTests
{
    private static SmtpReply Parse(SmtpReplyParser parser, string wire)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(wire)));
        parser.TryParse(ref reader, out var reply).Should().BeTrue();
        return reply!;
    }

    [Fact]
    public void A_repeated_one_line_reply_is_the_same_immutable_object()
    {
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var first = Parse(parser, "250 2.1.0 Ok\r\n");
        var second = Parse(parser, "250 2.1.0 Ok\r\n");
        second.Should().BeSameAs(first);
    }

    [Fact]
    public void Same_text_with_another_code_or_other_text_is_a_new_reply()
    {
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var ok = Parse(parser, "250 Ok\r\n");
        var other = Parse(parser, "251 Ok\r\n");
        var longer = Parse(parser, "250 Ok!\r\n");
        other.Should().NotBeSameAs(ok);
        other.Code.Should().Be(251);
        longer.Text.Should().Be("Ok!");
    }

    [Fact]
    public void Non_ASCII_replies_are_decoded_each_time_and_stay_correct()
    {
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var first = Parse(parser, "250 déjà vu\r\n");
        var second = Parse(parser, "250 déjà vu\r\n");
        second.Text.Should().Be("déjà vu");
        first.Text.Should().Be("déjà vu");
    }
}
