using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>
/// src/MailPipe.MimeKit/README.md's block as a new user runs it against Postfix 2525 (STARTTLS, the test CA; the example
/// addresses on example.test): the session and the pooled sender deliver it, the Bcc recipient gets it without a Bcc
/// field, GetSmtpEnvelope gives From and To + Bcc, and the same SmtpMessage sent twice arrives whole twice.
/// </summary>
[Trait("Category", "Integration")]
public sealed class Run21MimeReadmeTests
{
    [Fact]
    public async Task The_package_readme_block_delivers_through_the_session_and_the_sender_and_keeps_Bcc_off_the_wire()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var ct = CancellationToken.None;
        var bob = TestServers.UniqueRecipient("run21-mime-bob");
        var archive = TestServers.UniqueRecipient("run21-mime-archive");
        var directory = Directory.CreateTempSubdirectory("run21-mime");
        await File.WriteAllBytesAsync(Path.Combine(directory.FullName, "report.pdf"), "%PDF-1.4\n%run21\n"u8.ToArray());
        try
        {
            var message = new MimeMessage();
            message.From.Add(new MailboxAddress("Alice", "alice@example.test"));
            message.To.Add(new MailboxAddress("Bob", bob));
            message.Bcc.Add(new MailboxAddress("Archive", archive));   // in the envelope, never on the wire
            message.Subject = "Report";
            var body = new BodyBuilder { TextBody = "See the attachment." };
            await body.Attachments.AddAsync(Path.Combine(directory.FullName, "report.pdf"));   // the block: "report.pdf" in the current directory
            message.Body = body.ToMessageBody();

            var options = new SmtpSessionOptions();
            options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
            await using var session = new AsyncSmtpSession(options);
            await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, "client.example.com", ct);
            SmtpSendResult result = await session.SendAsync(message, ct);
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());

            var senderOptions = new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort };
            senderOptions.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
            await using var sender = new SmtpSender(senderOptions);
            SmtpSendResult pooled = await sender.SendAsync(message, ct);
            pooled.Outcome.Should().Be(SmtpSendOutcome.Accepted, pooled.ToString());

            SmtpEnvelope envelope = message.GetSmtpEnvelope();
            envelope.ReversePath.Should().Be("alice@example.test");
            envelope.Recipients.Select(r => r.Address).Should().Equal(bob, archive);

            SmtpMessage smtpMessage = message.ToSmtpMessage();
            (await session.SendAsync(smtpMessage, ct)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
            (await session.SendAsync(smtpMessage, ct)).Outcome.Should().Be(SmtpSendOutcome.Accepted, "sending the same SmtpMessage again writes the MimeMessage again, whole");

            var copies = await Maildir.WaitForPostfixAsync(archive, 4);
            copies.Should().HaveCount(4);
            foreach (var copy in copies)
            {
                var text = Encoding.ASCII.GetString(copy);
                text.Should().NotContain("\nBcc:").And.Contain("Subject: Report").And.Contain("report.pdf");
            }

            (await Maildir.WaitForPostfixAsync(bob, 4)).Should().HaveCount(4);
            await session.QuitAsync(ct);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
