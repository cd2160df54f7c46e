namespace MailPipe.Tests.Protocol;

public class EnhancedStatusCodeTests
{
    [Theory]
    [InlineData("2.0.0", 2, 0, 0)]
    [InlineData("5.1.1", 5, 1, 1)]
    [InlineData("4.7.0", 4, 7, 0)]
    [InlineData("5.999.999", 5, 999, 999)]
    [InlineData("2.01.001", 2, 1, 1)]
    [InlineData("4.10.12", 4, 10, 12)]
    public void TryParse_accepts_well_formed_codes(string text, int @class, int subject, int detail)
    {
        EnhancedStatusCode.TryParse(text, out var code).Should().BeTrue();

        code.Should().Be(new EnhancedStatusCode(@class, subject, detail));
        code.Class.Should().Be(@class);
        code.Subject.Should().Be(subject);
        code.Detail.Should().Be(detail);
        EnhancedStatusCode.Parse(text).Should().Be(code);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("5.1")]
    [InlineData("5.1.")]
    [InlineData("5..1")]
    [InlineData(".1.1")]
    [InlineData("1.1.1")]
    [InlineData("3.1.1")]
    [InlineData("6.1.1")]
    [InlineData("55.1.1")]
    [InlineData("5.1000.1")]
    [InlineData("5.1.1000")]
    [InlineData("5.1.1.1")]
    [InlineData("5.a.1")]
    [InlineData("5.1.b")]
    [InlineData("5.1.1 ")]
    [InlineData(" 5.1.1")]
    [InlineData("5,1,1")]
    [InlineData("5.-1.1")]
    [InlineData("5.1.+1")]
    [InlineData("5.١.1")]
    public void TryParse_rejects_malformed_codes(string text)
    {
        EnhancedStatusCode.TryParse(text, out var code).Should().BeFalse();

        code.Should().Be(default(EnhancedStatusCode));
        var act = () => EnhancedStatusCode.Parse(text);
        act.Should().Throw<FormatException>();
    }

    [Fact]
    public void Parse_rejects_null()
    {
        var act = () => EnhancedStatusCode.Parse(null!);

        act.Should().Throw<ArgumentNullException>();
    }

    [Theory]
    [InlineData(2, 0, 0, "2.0.0")]
    [InlineData(5, 1, 1, "5.1.1")]
    [InlineData(4, 999, 10, "4.999.10")]
    public void ToString_is_class_subject_detail(int @class, int subject, int detail, string expected)
    {
        var code = new EnhancedStatusCode(@class, subject, detail);

        code.ToString().Should().Be(expected);
        EnhancedStatusCode.Parse(code.ToString()).Should().Be(code);
    }

    [Fact]
    public void ToString_drops_leading_zeros()
    {
        EnhancedStatusCode.Parse("2.01.001").ToString().Should().Be("2.1.1");
    }

    [Theory]
    [InlineData(1, 0, 0)]
    [InlineData(3, 0, 0)]
    [InlineData(6, 0, 0)]
    [InlineData(2, -1, 0)]
    [InlineData(2, 1000, 0)]
    [InlineData(2, 0, -1)]
    [InlineData(2, 0, 1000)]
    public void Constructor_rejects_parts_out_of_range(int @class, int subject, int detail)
    {
        var act = () => new EnhancedStatusCode(@class, subject, detail);

        act.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Codes_with_equal_parts_are_equal()
    {
        new EnhancedStatusCode(5, 1, 1).Should().Be(EnhancedStatusCode.Parse("5.1.1"));
        (new EnhancedStatusCode(5, 1, 1) == new EnhancedStatusCode(5, 1, 2)).Should().BeFalse();
    }
}
