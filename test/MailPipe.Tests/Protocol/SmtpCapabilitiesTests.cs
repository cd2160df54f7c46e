namespace MailPipe.Tests.Protocol;

public class SmtpCapabilitiesTests
{
    private static SmtpCapabilities FromLines(params string[] lines) => SmtpCapabilities.FromEhloReply(new SmtpReply(250, lines));

    private static readonly SmtpCapabilities Typical = FromLines(
        "mail.example.test Hello client.example.test [192.0.2.1]",
        "PIPELINING",
        "SIZE 35882577",
        "8BITMIME",
        "AUTH PLAIN login  XOAUTH2",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "chunking",
        "SMTPUTF8",
        "DSN");

    [Fact]
    public void The_capabilities_enumerate_in_the_server_order_and_print_their_lines()
    {
        // A new user's probe: Console.WriteLine(session.Capabilities) printed "MailPipe.SmtpCapabilities", and
        // foreach over them did not compile although they have Count and an indexer.
        var keywords = new List<string>();
        foreach (var capability in Typical)
        {
            keywords.Add(capability.Keyword);
        }

        keywords.Should().Equal(Typical.Items.Select(c => c.Keyword));
        Typical.Where(c => c.Parameters.Count > 0).Select(c => c.Keyword).Should().Equal("SIZE", "AUTH");
        Typical.ToString().Should().Be("PIPELINING, SIZE 35882577, 8BITMIME, AUTH PLAIN login  XOAUTH2, ENHANCEDSTATUSCODES, STARTTLS, chunking, SMTPUTF8, DSN");
        SmtpCapabilities.None.ToString().Should().BeEmpty();
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(9)]
    [InlineData(int.MaxValue)]
    public void An_index_out_of_range_is_an_ArgumentOutOfRangeException_as_for_every_read_only_list(int index)
    {
        // The indexer threw the runtime's IndexOutOfRangeException (reserved for the runtime by .NET's design
        // guidelines), while the same list through Items or IReadOnlyList<T> threw ArgumentOutOfRangeException.
        var direct = () => Typical[index];
        var asList = () => ((IReadOnlyList<SmtpCapability>)Typical.Items)[index];
        direct.Should().ThrowExactly<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("index");
        asList.Should().ThrowExactly<ArgumentOutOfRangeException>();
        Typical[8].Keyword.Should().Be("DSN");
    }

    [Fact]
    public void Extensions_are_listed_in_the_server_order_without_the_greeting_line()
    {
        Typical.Count.Should().Be(9);
        Typical.Items.Select(c => c.Keyword).Should().Equal(
            "PIPELINING", "SIZE", "8BITMIME", "AUTH", "ENHANCEDSTATUSCODES", "STARTTLS", "chunking", "SMTPUTF8", "DSN");
        Typical[1].Line.Should().Be("SIZE 35882577");
        Typical[1].ToString().Should().Be("SIZE 35882577");
        Typical[3].Parameters.Should().Equal("PLAIN", "login", "XOAUTH2");
        Typical.Domain.Should().Be("mail.example.test");
    }

    [Theory]
    [InlineData("PIPELINING")]
    [InlineData("pipelining")]
    [InlineData("Pipelining")]
    [InlineData("CHUNKING")]
    [InlineData("size")]
    public void Lookup_is_case_insensitive(string keyword)
    {
        Typical.Contains(keyword).Should().BeTrue();
        Typical.TryGet(keyword, out var capability).Should().BeTrue();
        capability!.Keyword.Should().BeEquivalentTo(keyword);
    }

    [Fact]
    public void Unknown_keyword_is_not_found()
    {
        Typical.Contains("BINARYMIME").Should().BeFalse();
        Typical.TryGet("XFOO", out var capability).Should().BeFalse();
        capability.Should().BeNull();
    }

    [Fact]
    public void Typed_accessors()
    {
        Typical.SupportsPipelining.Should().BeTrue();
        Typical.Supports8BitMime.Should().BeTrue();
        Typical.SupportsEnhancedStatusCodes.Should().BeTrue();
        Typical.SupportsStartTls.Should().BeTrue();
        Typical.SupportsChunking.Should().BeTrue();
        Typical.SupportsSmtpUtf8.Should().BeTrue();
        Typical.SupportsDsn.Should().BeTrue();
        Typical.SupportsBinaryMime.Should().BeFalse();
        Typical.SupportsRequireTls.Should().BeFalse();
    }

    [Fact]
    public void Size_value_is_parsed()
    {
        Typical.MaxMessageSize.Should().Be(35882577);
    }

    [Fact]
    public void Size_without_a_value_means_no_limit()
    {
        FromLines("mx", "SIZE").MaxMessageSize.Should().Be(0);
    }

    [Theory]
    [InlineData("SIZE abc")]
    [InlineData("SIZE -1")]
    [InlineData("SIZE 1e6")]
    public void Size_that_is_not_a_number_is_unknown(string line)
    {
        FromLines("mx", line).MaxMessageSize.Should().BeNull();
    }

    [Theory]
    [InlineData("SIZE=1048576", 1048576L)]   // smtp4dev 3.15 with --maxmessagesize
    [InlineData("size=0", 0L)]
    [InlineData("SIZE=abc", null)]
    [InlineData("SIZE=", null)]
    [InlineData("SIZE=100 200", null)]
    public void The_pre_standard_SIZE_equals_form_gives_the_limit(string line, long? expected)
    {
        FromLines("mx", line).MaxMessageSize.Should().Be(expected);
    }

    [Fact]
    public void A_standard_SIZE_line_wins_over_the_SIZE_equals_form()
    {
        FromLines("mx", "SIZE=100", "SIZE 200").MaxMessageSize.Should().Be(200);
    }

    [Fact]
    public void Size_not_advertised_is_unknown()
    {
        FromLines("mx", "PIPELINING").MaxMessageSize.Should().BeNull();
    }

    [Fact]
    public void Auth_mechanisms_are_upper_case_in_the_server_order()
    {
        Typical.AuthenticationMechanisms.Should().Equal("PLAIN", "LOGIN", "XOAUTH2");
    }

    [Fact]
    public void Auth_not_advertised_has_no_mechanisms()
    {
        FromLines("mx", "PIPELINING").AuthenticationMechanisms.Should().BeEmpty();
    }

    [Fact]
    public void First_of_duplicate_keywords_wins_the_lookup_but_both_are_listed()
    {
        var capabilities = FromLines("mx", "SIZE 100", "size 200");

        capabilities.Count.Should().Be(2);
        capabilities.MaxMessageSize.Should().Be(100);
    }

    [Fact]
    public void Blank_extension_lines_are_skipped()
    {
        var capabilities = FromLines("mx", string.Empty, "   ", "DSN");

        capabilities.Items.Select(c => c.Keyword).Should().Equal("DSN");
    }

    [Fact]
    public void Single_line_reply_has_a_domain_and_no_extensions()
    {
        var capabilities = FromLines("mail.example.test greets you");

        capabilities.Count.Should().Be(0);
        capabilities.Domain.Should().Be("mail.example.test");
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(421)]
    [InlineData(554)]
    public void Non_250_reply_gives_None(int code)
    {
        var capabilities = SmtpCapabilities.FromEhloReply(new SmtpReply(code, ["mx", "PIPELINING"]));

        capabilities.Should().BeSameAs(SmtpCapabilities.None);
        capabilities.Count.Should().Be(0);
        capabilities.Domain.Should().BeNull();
        capabilities.Contains("PIPELINING").Should().BeFalse();
        capabilities.MaxMessageSize.Should().BeNull();
        capabilities.AuthenticationMechanisms.Should().BeEmpty();
    }

    [Fact]
    public void Null_reply_is_rejected()
    {
        var act = () => SmtpCapabilities.FromEhloReply(null!);

        act.Should().Throw<ArgumentNullException>();
    }
}
