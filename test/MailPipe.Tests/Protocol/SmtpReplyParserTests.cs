using System.Buffers;
using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Protocol;

public class SmtpReplyParserTests
{
    private const string EhloReply =
        "250-mail.example.test Hello client.example.test\r\n" +
        "250-PIPELINING\r\n" +
        "250-SIZE 35882577\r\n" +
        "250-8BITMIME\r\n" +
        "250-AUTH PLAIN LOGIN\r\n" +
        "250 ENHANCEDSTATUSCODES\r\n";

    private static readonly string[] EhloLines =
        ["mail.example.test Hello client.example.test", "PIPELINING", "SIZE 35882577", "8BITMIME", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"];

    private static readonly SmtpProtocolLimits SmallLimits = new() { MaxReplyLineLength = 512, MaxReplyLines = 3, MaxReplyBytes = 1024 };

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>Parses every complete reply in <paramref name="input"/>; returns them and the number of bytes consumed.</summary>
    private static (List<SmtpReply> Replies, long Consumed) ParseAll(SmtpReplyParser parser, ReadOnlySequence<byte> input)
    {
        var reader = new SequenceReader<byte>(input);
        var replies = new List<SmtpReply>();
        while (parser.TryParse(ref reader, out var reply))
        {
            replies.Add(reply);
        }

        return (replies, reader.Consumed);
    }

    /// <summary>One TryParse call over <paramref name="text"/>; returns whether a reply completed.</summary>
    private static bool Feed(SmtpReplyParser parser, string text)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Bytes(text)));
        return parser.TryParse(ref reader, out _);
    }

    private static SmtpReply ParseOne(string text, SmtpProtocolLimits? limits = null)
    {
        var (replies, consumed) = ParseAll(new SmtpReplyParser(limits ?? SmtpProtocolLimits.Default), new ReadOnlySequence<byte>(Bytes(text)));
        replies.Should().ContainSingle();
        consumed.Should().Be(Bytes(text).Length);
        return replies[0];
    }

    private static SmtpProtocolException ParseFails(string text, SmtpProtocolLimits? limits = null)
    {
        var parser = new SmtpReplyParser(limits ?? SmtpProtocolLimits.Default);
        var act = () => ParseAll(parser, new ReadOnlySequence<byte>(Bytes(text)));
        return act.Should().Throw<SmtpProtocolException>().Which;
    }

    private static void ShouldBeEhloReply(SmtpReply reply)
    {
        reply.Code.Should().Be(250);
        reply.Lines.Should().Equal(EhloLines);
        reply.Text.Should().Be("mail.example.test Hello client.example.test");
        reply.EnhancedStatusCode.Should().BeNull();
    }

    [Fact]
    public void Single_line_reply()
    {
        var reply = ParseOne("220 mail.example.test ESMTP ready\r\n");

        reply.Code.Should().Be(220);
        reply.Text.Should().Be("mail.example.test ESMTP ready");
        reply.Lines.Should().Equal("mail.example.test ESMTP ready");
        reply.EnhancedStatusCode.Should().BeNull();
    }

    [Fact]
    public void Multi_line_reply_keeps_every_line_and_the_text_of_the_first()
    {
        ShouldBeEhloReply(ParseOne(EhloReply));
    }

    [Fact]
    public void Multi_line_reply_split_into_two_segments_at_every_index()
    {
        var bytes = Bytes(EhloReply);
        for (var split = 0; split <= bytes.Length; split++)
        {
            var (replies, consumed) = ParseAll(new SmtpReplyParser(SmtpProtocolLimits.Default), ReadOnlySequenceFactory.SplitAt(bytes, split));

            replies.Should().ContainSingle($"split at {split}");
            ShouldBeEhloReply(replies[0]);
            consumed.Should().Be(bytes.Length);
        }
    }

    [Fact]
    public void Multi_line_reply_one_byte_per_segment()
    {
        var (replies, consumed) = ParseAll(new SmtpReplyParser(SmtpProtocolLimits.Default), ReadOnlySequenceFactory.OneBytePerSegment(EhloReply));

        replies.Should().ContainSingle();
        ShouldBeEhloReply(replies[0]);
        consumed.Should().Be(Bytes(EhloReply).Length);
    }

    [Fact]
    public void Multi_line_reply_fed_incrementally_split_at_every_index()
    {
        var bytes = Bytes(EhloReply);
        for (var split = 0; split < bytes.Length; split++)
        {
            var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);

            // First part: the parser consumes the complete lines only and keeps them.
            var first = new ReadOnlySequence<byte>(bytes[..split]);
            var reader = new SequenceReader<byte>(first);
            parser.TryParse(ref reader, out var early).Should().BeFalse($"the reply is incomplete at {split}");
            early.Should().BeNull();
            var consumed = (int)reader.Consumed;
            (consumed == 0 || bytes[consumed - 1] == (byte)'\n').Should().BeTrue("only whole lines are consumed");
            parser.HasPartialReply.Should().Be(consumed > 0);

            // The caller advances past the consumed lines and adds the rest.
            var rest = new ReadOnlySequence<byte>(bytes[consumed..]);
            reader = new SequenceReader<byte>(rest);
            parser.TryParse(ref reader, out var reply).Should().BeTrue($"the reply is complete after the rest (split {split})");
            ShouldBeEhloReply(reply!);
            reader.End.Should().BeTrue();
            parser.HasPartialReply.Should().BeFalse();
        }
    }

    [Fact]
    public void Multi_line_reply_fed_one_byte_at_a_time()
    {
        var bytes = Bytes(EhloReply);
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var pending = new List<byte>();
        SmtpReply? result = null;
        for (var i = 0; i < bytes.Length; i++)
        {
            pending.Add(bytes[i]);
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>([.. pending]));
            var complete = parser.TryParse(ref reader, out var reply);
            pending.RemoveRange(0, (int)reader.Consumed);
            if (complete)
            {
                i.Should().Be(bytes.Length - 1, "the reply completes with its last byte");
                result = reply;
            }
        }

        result.Should().NotBeNull();
        ShouldBeEhloReply(result!);
        pending.Should().BeEmpty();
    }

    [Fact]
    public void Several_replies_in_one_buffer_are_parsed_one_after_another()
    {
        var text = "250 2.1.0 Sender ok\r\n250-2.1.5 Recipient\r\n250 2.1.5 ok\r\n354 Go ahead\r\n";
        var bytes = Bytes(text);
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));

        parser.TryParse(ref reader, out var first).Should().BeTrue();
        reader.Consumed.Should().Be("250 2.1.0 Sender ok\r\n".Length, "the parser stops right after the first reply");
        parser.TryParse(ref reader, out var second).Should().BeTrue();
        parser.TryParse(ref reader, out var third).Should().BeTrue();
        parser.TryParse(ref reader, out var none).Should().BeFalse();

        first!.Code.Should().Be(250);
        first.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 1, 0));
        first.Text.Should().Be("Sender ok");
        second!.Lines.Should().Equal("2.1.5 Recipient", "2.1.5 ok");
        second.Text.Should().Be("Recipient");
        third!.Code.Should().Be(354);
        none.Should().BeNull();
        reader.End.Should().BeTrue();
    }

    [Fact]
    public void Several_replies_in_every_two_segment_split()
    {
        var bytes = Bytes("250 ok\r\n250-a\r\n250 b\r\n221 bye\r\n");
        for (var split = 0; split <= bytes.Length; split++)
        {
            var (replies, _) = ParseAll(new SmtpReplyParser(SmtpProtocolLimits.Default), ReadOnlySequenceFactory.SplitAt(bytes, split));

            replies.Select(r => r.ToString()).Should().Equal(["250 ok", "250-a\n250 b", "221 bye"], $"split at {split}");
        }
    }

    [Fact]
    public void Bare_LF_line_ends_are_accepted()
    {
        var reply = ParseOne("250-first\n250-second\r\n250 third\n");

        reply.Lines.Should().Equal("first", "second", "third");
    }

    [Fact]
    public void Code_only_line_has_empty_text()
    {
        var reply = ParseOne("250\r\n");

        reply.Code.Should().Be(250);
        reply.Text.Should().BeEmpty();
        reply.Lines.Should().Equal(string.Empty);
        reply.EnhancedStatusCode.Should().BeNull();
    }

    [Fact]
    public void Code_and_space_only_has_empty_text()
    {
        ParseOne("250 \r\n").Text.Should().BeEmpty();
    }

    [Fact]
    public void Multi_line_reply_with_code_only_last_line()
    {
        var reply = ParseOne("250-first\r\n250\r\n");

        reply.Lines.Should().Equal("first", string.Empty);
        reply.Text.Should().Be("first");
    }

    [Fact]
    public void Text_keeps_inner_and_trailing_spaces_and_utf8()
    {
        var reply = ParseOne("250 héllo  wörld \r\n");

        reply.Text.Should().Be("héllo  wörld ");
    }

    [Theory]
    [InlineData("250 2.1.0 Ok\r\n", 2, 1, 0, "Ok")]
    [InlineData("550 5.1.1 No such user\r\n", 5, 1, 1, "No such user")]
    [InlineData("451 4.7.1 Try again later\r\n", 4, 7, 1, "Try again later")]
    [InlineData("250 2.0.0\r\n", 2, 0, 0, "")]
    [InlineData("250 2.999.999 big\r\n", 2, 999, 999, "big")]
    [InlineData("250 2.01.001 padded\r\n", 2, 1, 1, "padded")]
    [InlineData("250 2.1.0   spaced\r\n", 2, 1, 0, "spaced")]
    public void Well_formed_enhanced_status_code_whose_class_matches_is_parsed(string text, int @class, int subject, int detail, string rest)
    {
        var reply = ParseOne(text);

        reply.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(@class, subject, detail));
        reply.Text.Should().Be(rest);
        reply.Lines[0].Should().Be(text[4..^2], "Lines keep the enhanced status code");
    }

    [Theory]
    [InlineData("550 2.1.0 x\r\n", "2.1.0 x")]
    [InlineData("250 5.1.1 x\r\n", "5.1.1 x")]
    [InlineData("250 2.1 x\r\n", "2.1 x")]
    [InlineData("250 2.1000.1\r\n", "2.1000.1")]
    [InlineData("250 2.1.1000 x\r\n", "2.1.1000 x")]
    [InlineData("250 2.1.0Ok\r\n", "2.1.0Ok")]
    [InlineData("250 2..0 x\r\n", "2..0 x")]
    [InlineData("250 2.a.0 x\r\n", "2.a.0 x")]
    [InlineData("250 3.1.0 x\r\n", "3.1.0 x")]
    [InlineData("250 22.1.0 x\r\n", "22.1.0 x")]
    [InlineData("250 .2.1.0 x\r\n", ".2.1.0 x")]
    [InlineData("250 Ok 2.1.0\r\n", "Ok 2.1.0")]
    public void Malformed_or_mismatched_enhanced_status_code_is_not_parsed(string text, string expectedText)
    {
        var reply = ParseOne(text);

        reply.EnhancedStatusCode.Should().BeNull();
        reply.Text.Should().Be(expectedText);
    }

    [Fact]
    public void Enhanced_status_code_comes_from_the_first_line_only()
    {
        var reply = ParseOne("550-Sorry\r\n550 5.1.1 No such user\r\n");

        reply.EnhancedStatusCode.Should().BeNull();
        reply.Text.Should().Be("Sorry");
    }

    [Fact]
    public void Lines_that_disagree_on_the_code_are_a_protocol_error()
    {
        ParseFails("250-first\r\n251 second\r\n").ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData("25a ok\r\n")]
    [InlineData("abc\r\n")]
    [InlineData("2 50 ok\r\n")]
    [InlineData("25\r\n")]
    [InlineData(" 250 ok\r\n")]
    [InlineData("２５０ ok\r\n")]
    public void Non_digit_or_short_code_is_a_protocol_error(string text)
    {
        ParseFails(text).ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData("100 continue\r\n")]
    [InlineData("199 x\r\n")]
    [InlineData("600 x\r\n")]
    [InlineData("999 x\r\n")]
    [InlineData("099 x\r\n")]
    public void Code_outside_2xx_to_5xx_is_a_protocol_error(string text)
    {
        ParseFails(text).ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData("250x\r\n")]
    [InlineData("250x ok\r\n")]
    [InlineData("250\tok\r\n")]
    [InlineData("2500 ok\r\n")]
    [InlineData("250_ok\r\n")]
    public void Bad_separator_after_the_code_is_a_protocol_error(string text)
    {
        ParseFails(text).ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData("25a ok\r\n")]
    [InlineData("250-first\r\n251 second\r\n")]
    [InlineData("600 x\r\n")]
    [InlineData("250x ok\r\n")]
    [InlineData("25\r\n")]
    public void Malformed_line_across_segments_is_the_same_protocol_error(string text)
    {
        // One byte per segment: every line takes the path that copies a line spanning segments.
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var act = () => ParseAll(parser, ReadOnlySequenceFactory.OneBytePerSegment(Bytes(text)));

        act.Should().Throw<SmtpProtocolException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        parser.HasPartialReply.Should().BeFalse();
    }

    [Fact]
    public void Lines_in_place_and_lines_across_segments_mix_in_one_reply()
    {
        // The first segment holds whole lines (read in place) and the start of a line finished in the next segment.
        var bytes = Bytes(EhloReply);
        foreach (var split in new[] { 5, 20, 40, 60, 75 })
        {
            var (replies, consumed) = ParseAll(new SmtpReplyParser(SmtpProtocolLimits.Default), ReadOnlySequenceFactory.SplitAt(bytes, split));

            replies.Should().ContainSingle($"split at {split}");
            ShouldBeEhloReply(replies[0]);
            consumed.Should().Be(bytes.Length);
        }
    }

    [Fact]
    public void Protocol_error_message_shows_the_line_printable()
    {
        ParseFails("25\u0001x\r\n").Message.Should().Contain("\"25?x\"");
    }

    [Fact]
    public void Parser_is_usable_again_after_a_protocol_error()
    {
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var act = () => Feed(parser, "250-a\r\n251 b\r\n");
        act.Should().Throw<SmtpProtocolException>();

        parser.HasPartialReply.Should().BeFalse();
        var good = new SequenceReader<byte>(new ReadOnlySequence<byte>(Bytes("250 ok\r\n")));
        parser.TryParse(ref good, out var reply).Should().BeTrue();
        reply!.Lines.Should().Equal("ok");
    }

    [Fact]
    public void Reset_forgets_a_partial_reply()
    {
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Bytes("250-a\r\n")));
        parser.TryParse(ref reader, out _).Should().BeFalse();
        parser.HasPartialReply.Should().BeTrue();

        parser.Reset();

        parser.HasPartialReply.Should().BeFalse();
        reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Bytes("354 go\r\n")));
        parser.TryParse(ref reader, out var reply).Should().BeTrue();
        reply!.Lines.Should().Equal("go");
    }

    [Fact]
    public void Line_of_exactly_the_maximum_length_with_CRLF_is_accepted()
    {
        var line = "250 " + new string('a', 512 - 4 - 2) + "\r\n";
        line.Length.Should().Be(512);

        ParseOne(line, SmallLimits).Text.Should().HaveLength(506);
    }

    [Fact]
    public void Line_longer_than_the_maximum_with_a_line_end_is_too_long()
    {
        var line = "250 " + new string('a', 512 - 4 - 1) + "\r\n";

        ParseFails(line, SmallLimits).ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public void Line_longer_than_the_maximum_with_a_bare_LF_is_too_long()
    {
        ParseOne("250 " + new string('a', 512 - 4 - 1) + "\n", SmallLimits).Text.Should().HaveLength(507);
        ParseFails("250 " + new string('a', 512 - 4) + "\n", SmallLimits).ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public void Line_reaching_the_maximum_without_a_line_end_is_too_long()
    {
        var parser = new SmtpReplyParser(SmallLimits);
        Feed(parser, "250 " + new string('a', 511 - 4)).Should().BeFalse("511 bytes without a line end may still become a 512-byte line");

        var act = () => Feed(parser, "250 " + new string('a', 512 - 4));

        act.Should().Throw<SmtpProtocolException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public void Unterminated_line_is_too_long_even_when_split_into_segments()
    {
        var bytes = Bytes("250-ok\r\n250 " + new string('a', 600));
        var parser = new SmtpReplyParser(SmallLimits);
        var act = () => ParseAll(parser, ReadOnlySequenceFactory.OneBytePerSegment(bytes));

        act.Should().Throw<SmtpProtocolException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
        parser.HasPartialReply.Should().BeFalse("the parser forgets the reply it rejected");
    }

    [Fact]
    public void More_lines_than_the_maximum_is_too_long()
    {
        ParseOne("250-1\r\n250-2\r\n250 3\r\n", SmallLimits).Lines.Should().HaveCount(3);

        ParseFails("250-1\r\n250-2\r\n250-3\r\n250 4\r\n", SmallLimits).ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public void More_lines_than_the_maximum_is_detected_before_the_last_line_arrives()
    {
        var parser = new SmtpReplyParser(SmallLimits);
        var act = () => Feed(parser, "250-1\r\n250-2\r\n250-3\r\n250-4\r\n");

        act.Should().Throw<SmtpProtocolException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public void More_bytes_than_the_maximum_is_too_long()
    {
        var limits = new SmtpProtocolLimits { MaxReplyLineLength = 512, MaxReplyLines = 100, MaxReplyBytes = 1000 };

        // 500 + 500 = 1000 bytes, CRLFs included: accepted.
        var line = new string('a', 500 - 6);
        ParseOne($"250-{line}\r\n250 {line}\r\n", limits).Lines.Should().HaveCount(2);

        // One byte more: rejected.
        ParseFails($"250-{line}\r\n250 {line}a\r\n", limits).ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public void Reply_bytes_limit_counts_per_reply_not_per_buffer()
    {
        var limits = new SmtpProtocolLimits { MaxReplyLineLength = 512, MaxReplyLines = 100, MaxReplyBytes = 600 };
        var line = "250 " + new string('a', 400) + "\r\n";

        var (replies, _) = ParseAll(new SmtpReplyParser(limits), new ReadOnlySequence<byte>(Bytes(line + line + line)));

        replies.Should().HaveCount(3);
    }

    [Fact]
    public void Too_long_message_names_the_limits()
    {
        ParseFails("250-1\r\n250-2\r\n250-3\r\n250 4\r\n", SmallLimits).Message.Should().Contain("SmtpProtocolLimits");
    }

    [Fact]
    public void Limits_below_their_minimum_are_rejected()
    {
        var act = () => new SmtpReplyParser(new SmtpProtocolLimits { MaxReplyLineLength = 511 });

        act.Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => _ = new SmtpReplyParser(new SmtpProtocolLimits { MaxReplyLines = 0 }))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => _ = new SmtpReplyParser(new SmtpProtocolLimits { MaxReplyBytes = 1000 }))).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Empty_input_is_not_a_reply()
    {
        var parser = new SmtpReplyParser(SmtpProtocolLimits.Default);
        var reader = new SequenceReader<byte>(ReadOnlySequence<byte>.Empty);

        parser.TryParse(ref reader, out var reply).Should().BeFalse();
        reply.Should().BeNull();
        parser.HasPartialReply.Should().BeFalse();
    }
}
