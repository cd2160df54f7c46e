namespace MailPipe.Tests.Protocol;

public class SmtpReplyTests
{
    [Theory]
    [InlineData(220, true, false, false, false)]
    [InlineData(250, true, false, false, false)]
    [InlineData(354, false, true, false, false)]
    [InlineData(334, false, true, false, false)]
    [InlineData(421, false, false, true, false)]
    [InlineData(451, false, false, true, false)]
    [InlineData(550, false, false, false, true)]
    [InlineData(599, false, false, false, true)]
    public void Class_predicates_follow_the_first_digit(int code, bool positiveCompletion, bool positiveIntermediate, bool transientNegative, bool permanentNegative)
    {
        var reply = new SmtpReply(code, "text");

        reply.IsPositiveCompletion.Should().Be(positiveCompletion);
        reply.IsPositiveIntermediate.Should().Be(positiveIntermediate);
        reply.IsTransientNegative.Should().Be(transientNegative);
        reply.IsPermanentNegative.Should().Be(permanentNegative);
        reply.IsPositive.Should().Be(positiveCompletion || positiveIntermediate);
        reply.IsNegative.Should().Be(transientNegative || permanentNegative);
        reply.IsServiceClosing.Should().Be(code == 421);
    }

    [Fact]
    public void ToString_of_a_single_line_reply()
    {
        new SmtpReply(250, "2.0.0 Ok").ToString().Should().Be("250 2.0.0 Ok");
    }

    [Fact]
    public void ToString_of_a_code_only_reply()
    {
        new SmtpReply(250, string.Empty).ToString().Should().Be("250");
    }

    [Fact]
    public void ToString_of_a_multi_line_reply_uses_hyphens_and_newlines()
    {
        new SmtpReply(250, ["mail.example.test", "PIPELINING", "SIZE 100"]).ToString()
            .Should().Be("250-mail.example.test\n250-PIPELINING\n250 SIZE 100");
    }

    [Fact]
    public void Text_strips_a_matching_enhanced_status_code()
    {
        var reply = new SmtpReply(550, "5.1.1 No such user");

        reply.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 1, 1));
        reply.Text.Should().Be("No such user");
        reply.Lines.Should().Equal("5.1.1 No such user");
    }

    [Fact]
    public void Null_text_is_an_empty_line()
    {
        var reply = new SmtpReply(250, (string)null!);

        reply.Text.Should().BeEmpty();
        reply.Lines.Should().Equal(string.Empty);
    }

    [Fact]
    public void Lines_are_copied_from_the_caller()
    {
        var lines = new List<string> { "a", "b" };
        var reply = new SmtpReply(250, lines);
        lines[0] = "changed";

        reply.Lines.Should().Equal("a", "b");
    }

    [Theory]
    [InlineData(199)]
    [InlineData(600)]
    [InlineData(0)]
    [InlineData(-250)]
    public void Code_out_of_range_is_rejected(int code)
    {
        var act = () => new SmtpReply(code, "x");

        act.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void No_lines_is_rejected()
    {
        var act = () => new SmtpReply(250, Array.Empty<string>());

        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Null_lines_are_rejected()
    {
        ((Action)(() => _ = new SmtpReply(250, (IEnumerable<string>)null!))).Should().Throw<ArgumentNullException>();
        ((Action)(() => _ = new SmtpReply(250, ["a", null!]))).Should().Throw<ArgumentNullException>();
    }
}
