namespace MailPipe.Tests.Sending;

/// <summary>
/// A new user's probe: <see cref="SmtpEnvelope"/> is a record, but two envelopes built alike were not equal (the
/// synthesized equality compared the recipient lists as instances), so one could not be found again in a dictionary or
/// compared in a test; and its ToString printed the list's type name instead of the recipients.
/// </summary>
public class EnvelopeValueEqualityTests
{
    [Fact]
    public void Envelopes_built_alike_are_equal_and_hash_alike()
    {
        var a = new SmtpEnvelope("alice@example.test", "bob@example.test", "carol@example.test") { EnvelopeId = "x1", Size = 10 };
        var b = new SmtpEnvelope("alice@example.test", [new SmtpRecipient("bob@example.test"), new SmtpRecipient("carol@example.test")]) { EnvelopeId = "x1", Size = 10 };

        a.Should().Be(b);
        (a == b).Should().BeTrue();
        a.GetHashCode().Should().Be(b.GetHashCode());
        new HashSet<SmtpEnvelope> { a }.Contains(b).Should().BeTrue();
    }

    [Fact]
    public void Envelopes_that_differ_in_a_recipient_its_order_or_a_parameter_are_not_equal()
    {
        var a = new SmtpEnvelope("alice@example.test", "bob@example.test", "carol@example.test");

        a.Should().NotBe(new SmtpEnvelope("alice@example.test", "carol@example.test", "bob@example.test"));
        a.Should().NotBe(new SmtpEnvelope("alice@example.test", "bob@example.test"));
        a.Should().NotBe(a with { RequireTls = true });
        a.Should().NotBe(new SmtpEnvelope("alice@example.test", [new SmtpRecipient("bob@example.test") { Notify = DsnNotify.Never }, new SmtpRecipient("carol@example.test")]));
    }

    [Fact]
    public void ToString_lists_the_recipients()
    {
        new SmtpEnvelope("", "bob@example.test", "carol@example.test").ToString()
            .Should().StartWith("SmtpEnvelope { ReversePath = <>, Recipients = [bob@example.test, carol@example.test], Body = Auto");
    }
}
