using MailPipe.Tests.Support;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A reverse-path or forward-path that is not a mailbox (RFC 5321 §4.1.2) is the caller's error: an
/// <see cref="ArgumentException"/> naming what is wrong, before anything is written — never a line the server may
/// read otherwise (Postfix, for one, accepts <c>RCPT TO:&lt;jdoe&gt;</c> as one of its own local mailboxes).
/// </summary>
public class MailboxSyntaxTests
{
    public static TheoryData<string> ValidForwardPaths() =>
    [
        "a@b",
        "<jdoe@example.org>",
        "first.last+tag@example.com",
        "o'brien@example.com",
        "!#$%&'*+-/=?^_`{|}~@example.com",
        "\"john doe\"@example.com",
        "\"a\\\"b@c\"@example.com",
        "\"a<b>c\"@example.com",
        "user@[192.0.2.1]",
        "user@[IPv6:2001:db8::1]",
        "Postmaster",
        "<postmaster>",
        "jörg@bücher.example",
        "user@bücher.example",
        "user.@docomo.ne.jp",
        "first..last@example.com",
        "user@under_score.example",
        "user@sub-domain.example-1.com",
    ];

    public static TheoryData<string, string> InvalidForwardPaths() => new()
    {
        { "jdoe", "only the forward-path Postmaster may have no domain" },
        { "a b@example.com", "holds ' '" },
        { "a@exa mple.com", "holds ' '" },
        { "@example.com", "source route" },
        { "@relay.example,@other.example:user@example.com", "source route" },
        { "user@", "domain after '@' is empty" },
        { "\"quoted\"@", "domain after '@' is empty" },
        { "user@@example.com", "holds '@'" },
        { "a@b..c", "empty label" },
        { "a@.b", "empty label" },
        { "a@b.", "empty label" },
        { "a(comment)@example.com", "holds '('" },
        { "a,b@example.com", "holds ','" },
        { "a\\b@example.com", "holds '\\'" },
        { "\"unterminated@example.com", "local-part@domain" },
        { "\"quoted\"x@example.com", "local-part@domain" },
        { "a@[]", "address literal" },
        { "a@[192.0.2.1", "address literal" },
        { "a@[192.0.2.1 ]", "address literal" },
        { "a\tb@example.com", "U+0009" },
        { "a@exa\u007fmple.com", "U+007F" },
        { "\"a\u0001b\"@example.com", "control character" },
        { "a@example.com:25", "holds ':'" },
        { "a<b@example.com", "'<' or '>'" },
        { "\"a<b\">@example.com", "'<' or '>'" },
    };

    [Theory]
    [MemberData(nameof(ValidForwardPaths))]
    public void A_mailbox_is_accepted_as_a_recipient_and_as_a_sender_unchanged(string mailbox)
    {
        var recipient = new SmtpRecipient(mailbox);

        recipient.Address.Should().Be(SmtpCommandWriter.StripBrackets(mailbox).ToString());
        if (!recipient.Address.Equals("postmaster", StringComparison.OrdinalIgnoreCase))
        {
            new SmtpEnvelope(mailbox, "b@example.test").ReversePath.Should().Be(recipient.Address);
        }
    }

    [Theory]
    [MemberData(nameof(InvalidForwardPaths))]
    public void Not_a_mailbox_is_refused_as_a_recipient_and_as_a_sender_saying_why(string mailbox, string why)
    {
        FluentActions.Invoking(() => new SmtpRecipient(mailbox)).Should().Throw<ArgumentException>()
            .Which.Should().Match<ArgumentException>(e => e.ParamName == "address" && e.Message.Contains(why, StringComparison.Ordinal) && e.Message.Contains("RFC 5321", StringComparison.Ordinal));
        FluentActions.Invoking(() => new SmtpEnvelope(mailbox, "b@example.test")).Should().Throw<ArgumentException>()
            .Which.ParamName.Should().Be("reversePath");
    }

    [Fact]
    public void The_null_reverse_path_is_a_sender_and_Postmaster_alone_only_a_recipient()
    {
        new SmtpEnvelope(string.Empty, "b@example.test").ReversePath.Should().BeEmpty();
        new SmtpEnvelope("<>", "b@example.test").ReversePath.Should().BeEmpty();
        new SmtpEnvelope("a@example.test", "Postmaster").Recipients.Single().Address.Should().Be("Postmaster");
        FluentActions.Invoking(() => new SmtpEnvelope("Postmaster", "b@example.test")).Should().Throw<ArgumentException>()
            .WithMessage("*reverse-path*Postmaster*");
        FluentActions.Invoking(() => new SmtpRecipient("<>")).Should().Throw<ArgumentException>().WithMessage("*forward-path must not be empty*");
    }

    [Theory]
    [InlineData("jdoe", false)]
    [InlineData("a b@example.test", false)]
    [InlineData("jdoe", true)]
    [InlineData("user@", true)]
    public async Task The_session_refuses_a_path_that_is_not_a_mailbox_before_one_byte_is_written(string path, bool forward)
    {
        // The server expects NOOP next: if the refused command had written anything, it would read that instead.
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var act = () => (forward ? session.RcptToAsync(path) : session.MailFromAsync(path)).Safe();

        (await act.Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be(forward ? "forwardPath" : "reversePath");
        session.State.Should().Be(SmtpSessionState.Connected, "a refused argument does not break the session");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().Be("NOOP\r\n");
    }
}
