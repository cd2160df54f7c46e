using MailPipe.Tests.Support;

namespace MailPipe.Tests.Sending;

/// <summary>Bad envelope input through the public constructors: a typed exception naming the argument, never a later <see cref="NullReferenceException"/> or a silently altered address.</summary>
public class EnvelopeInputBreakTests
{
    [Fact]
    public void A_null_recipient_in_the_list_is_refused_by_the_constructor_naming_recipients()
    {
        // Before: accepted, and SmtpSender.SendAsync then threw a NullReferenceException from the envelope's check.
        var act = () => new SmtpEnvelope("a@example.test", new SmtpRecipient[] { new("b@example.test"), null! });

        act.Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("recipients");
    }

    // By index: an attribute's string is stored in UTF-8, and theory data is serialized, where a lone surrogate becomes U+FFFD.
    private static readonly string[] s_mailboxesWithAnUnpairedSurrogate =
    [
        "a\uD800b@example.test",
        "ab@exam\uDC00ple.test",
        "\"a\uDBFF\"@example.test",
        "ab@example.test\uD83D",
    ];

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_mailbox_with_an_unpaired_surrogate_is_refused_not_sent_as_U_FFFD(int index)
    {
        var mailbox = s_mailboxesWithAnUnpairedSurrogate[index];

        // UTF-8 has no form for a lone surrogate: the command writer put U+FFFD on the wire, a mailbox nobody asked for.
        FluentActions.Invoking(() => new SmtpRecipient(mailbox)).Should().Throw<ArgumentException>()
            .Which.Should().Match<ArgumentException>(e => e.ParamName == "address" && e.Message.Contains("unpaired surrogate", StringComparison.Ordinal));
        FluentActions.Invoking(() => new SmtpEnvelope(mailbox, "b@example.test")).Should().Throw<ArgumentException>()
            .Which.ParamName.Should().Be("reversePath");
    }

    [Fact]
    public void A_mailbox_with_a_character_beyond_the_BMP_is_accepted_unchanged()
    {
        new SmtpRecipient("\U0001F600@example.test").Address.Should().Be("\U0001F600@example.test");
        new SmtpEnvelope("user@\U0001F600.example", "b@example.test").ReversePath.Should().Be("user@\U0001F600.example");
    }

    [Theory]
    [InlineData(" ")]
    [InlineData("\t")]
    [InlineData("   ")]
    public void A_reverse_path_of_white_space_only_is_refused_not_taken_for_the_null_reverse_path(string reversePath)
    {
        // Before: trimmed to nothing, it became MAIL FROM:<> (a bounce) without a word; "" and "<>" are the documented forms.
        FluentActions.Invoking(() => new SmtpEnvelope(reversePath, "b@example.test")).Should().Throw<ArgumentException>()
            .Which.ParamName.Should().Be("reversePath");
        new SmtpEnvelope(string.Empty, "b@example.test").ReversePath.Should().BeEmpty();
        new SmtpEnvelope("<>", "b@example.test").ReversePath.Should().BeEmpty();
    }

    [Fact]
    public async Task MailFromAsync_refuses_a_reverse_path_of_white_space_only_before_writing()
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var act = () => session.MailFromAsync(" ").Safe();

        (await act.Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be("reversePath");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().Be("NOOP\r\n");
    }
}
