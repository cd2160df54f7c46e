using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MimeKit;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.MimeKit through the sender a host registers (<c>ISmtpSender</c>, with and without the
/// standard resilience pipeline): the envelope derived from the headers as the package README says, Bcc never on the
/// wire, and each recipient getting the message once.
/// </summary>
public sealed class PeerMimeKitTests
{
    private static IHost Start(bool resilience)
    {
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None" },
              "SmtpResilience": { "Retry": { "MaxRetryAttempts": 1, "Delay": "00:00:00.010" } } }
            """);
        var mailPipe = builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        if (resilience)
        {
            mailPipe.AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        }

        var host = builder.Build();
        host.Start();
        return host;
    }

    [Fact]
    public async Task The_envelope_is_Sender_to_To_Cc_and_Bcc_and_Bcc_is_not_sent()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var host = Start(resilience: false);
        var (to, cc, bcc) = (TestServers.UniqueRecipient("peer-to"), TestServers.UniqueRecipient("peer-cc"), TestServers.UniqueRecipient("peer-bcc"));
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Shop", "shop@example.test"));
        message.Sender = new MailboxAddress("Bounces", "bounces@example.test");
        message.To.Add(MailboxAddress.Parse(to));
        message.Cc.Add(MailboxAddress.Parse(cc));
        message.Cc.Add(MailboxAddress.Parse(to.ToUpperInvariant()));   // the same mailbox in another case: one recipient
        message.Bcc.Add(MailboxAddress.Parse(bcc));
        message.Subject = "peer mime";
        message.Body = new TextPart("plain") { Text = "Hello." };

        var envelope = message.GetSmtpEnvelope();
        envelope.ReversePath.Should().Be("bounces@example.test");
        envelope.Recipients.Select(r => r.Address).Should().BeEquivalentTo([to, cc, bcc]);

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(message);
        result.IsAccepted.Should().BeTrue(result.ToString());
        result.Recipients.Should().HaveCount(3);

        foreach (var recipient in new[] { to, cc, bcc })
        {
            var stored = File.ReadAllText((await TestServers.WaitForMaildirAsync(recipient)).Single());
            stored.Should().StartWith("Return-Path: <bounces@example.test>");
            stored.Should().Contain("Message-Id: <" + message.MessageId + ">");
            stored.Should().NotContain("Bcc:", "Bcc is in the envelope, never on the wire");
        }
    }

    [Fact]
    public async Task A_resent_message_goes_only_to_its_resent_recipients()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var host = Start(resilience: false);
        var (original, resent) = (TestServers.UniqueRecipient("peer-orig"), TestServers.UniqueRecipient("peer-resent"));
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("shop@example.test"));
        message.To.Add(MailboxAddress.Parse(original));
        message.ResentFrom.Add(MailboxAddress.Parse("forwarder@example.test"));
        message.ResentTo.Add(MailboxAddress.Parse(resent));
        message.Subject = "peer resent";
        message.Body = new TextPart("plain") { Text = "Again." };

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(message);
        result.IsAccepted.Should().BeTrue(result.ToString());
        result.Envelope.ReversePath.Should().Be("forwarder@example.test");
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal(resent);
        File.ReadAllText((await TestServers.WaitForMaildirAsync(resent)).Single()).Should().StartWith("Return-Path: <forwarder@example.test>");
        TestServers.MaildirFiles(original).Should().BeEmpty("the original recipient had it already");
    }

    [Fact]
    public async Task Through_the_resilient_sender_a_450_recipient_is_asked_again_and_the_others_get_the_MimeMessage_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        using var host = Start(resilience: true);
        var good = TestServers.UniqueRecipient("peer-mime-retry");
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("shop@example.test"));
        message.To.Add(MailboxAddress.Parse(good));
        message.To.Add(MailboxAddress.Parse("tempfail@example.test"));
        message.Subject = "peer mime retry";
        message.Body = new TextPart("plain") { Text = "Once." };

        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(message);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Attempts.Should().Be(2);
        (await PeerHost.CopiesAsync(good, "<" + message.MessageId + ">", () => PeerHost.SendMarkerAsync(good))).Should().Be(1);
    }

    [Fact]
    public async Task A_message_without_recipients_is_an_ArgumentException_before_anything_is_sent_also_through_the_resilient_sender()
    {
        using var host = Start(resilience: true);
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("shop@example.test"));
        message.Subject = "nobody";
        message.Body = new TextPart("plain") { Text = "x" };

        var send = async () => await host.Services.GetRequiredService<ISmtpSender>().SendAsync(message);
        await send.Should().ThrowAsync<ArgumentException>();
        host.Services.GetRequiredService<SmtpSender>().GetStatistics().Opened.Should().Be(0, "nothing was sent, not even a connect");
    }
}
