using MailPipe.Tests.Support;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Security;

namespace MailPipe.MimeKit.Tests;

/// <summary>
/// Breaker17 probe of issue #14: a DKIM-signed MimeMessage arrives with its signature valid — its body (an attached
/// message with a Bcc field included) is not changed on the way; only its own, unsigned, Bcc field is left out.
/// </summary>
public class Breaker17DkimProbeTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_DKIM_signed_message_with_an_attached_message_arrives_with_a_valid_signature(bool chunking)
    {
        var generator = new RsaKeyPairGenerator();
        generator.Init(new KeyGenerationParameters(new SecureRandom(), 1024));
        var keys = generator.GenerateKeyPair();
        var attached = MimeMessage.Load(new MemoryStream("From: someone@example.test\r\nTo: x@example.test\r\nBcc: attachedbcc@example.test\r\nSubject: attached\r\n\r\nInner.\r\n"u8.ToArray()));
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("author@example.test"));
        message.To.Add(MailboxAddress.Parse("to@example.test"));
        message.Bcc.Add(MailboxAddress.Parse("hidden@example.test"));
        message.Subject = "signed forward";
        message.Body = new Multipart("mixed") { new TextPart("plain") { Text = "See attached." }, new MessagePart { Message = attached } };
        message.Prepare(EncodingConstraint.SevenBit);
        var signer = new DkimSigner(keys.Private, "example.test", "sel")
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Simple,
        };
        signer.Sign(message, [HeaderId.From, HeaderId.To, HeaderId.Subject]);
        var data = new MemoryStream();
        var script = SmtpScript.Parse(["S: 220 mail.example.test ESMTP", "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250-PIPELINING", "S: 250-8BITMIME", "S: 250 CHUNKING"])
            .Then("C: MAIL FROM:<author@example.test> BODY=8BITMIME", "C: RCPT TO:<to@example.test>", "C: RCPT TO:<hidden@example.test>");
        script = chunking
            ? script.Then("S: 250 ok", "S: 250 ok", "S: 250 ok").Do("READ BDAT", async (server, ct) =>
            {
                while (true)
                {
                    var parts = System.Text.Encoding.ASCII.GetString(await server.ReadLineAsync(ct) ?? []).TrimEnd().Split(' ');
                    data.Write(await server.ReadExactlyAsync(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), ct));
                    await server.SendAsync("250 ok\r\n"u8.ToArray(), ct);
                    if (parts.Length == 3)
                    {
                        return;
                    }
                }
            })
            : script.Then("C: DATA", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 354 go").Do("READ DATA", async (server, ct) =>
            {
                while (await server.ReadLineAsync(ct) is { } line && !line.AsSpan().SequenceEqual(".\r\n"u8))
                {
                    data.Write(line.Length > 0 && line[0] == (byte)'.' ? line[1..] : line);
                }
            }).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        data.Position = 0;
        var received = await MimeMessage.LoadAsync(data);
        received.Bcc.Count.Should().Be(0);
        var verifier = new DkimVerifier(new OneKey(keys.Public));
        (await verifier.VerifyAsync(received, received.Headers[received.Headers.IndexOf(HeaderId.DkimSignature)])).Should().BeTrue("the signed header fields and the body arrive as they were signed");
    }

    private sealed class OneKey(AsymmetricKeyParameter key) : IDkimPublicKeyLocator
    {
        public AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) => key;

        public Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default) => Task.FromResult(key);
    }
}
