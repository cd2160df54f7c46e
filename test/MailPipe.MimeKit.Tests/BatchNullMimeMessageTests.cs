using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>
/// Session 20: a null <see cref="MimeMessage"/> in a batch's list threw "Value cannot be null. (Parameter 'message')",
/// naming neither the list nor the position; the core's batches name both since nu20 (BatchNullMessageTests).
/// </summary>
public class BatchNullMimeMessageTests
{
    private static MimeMessage[] WithNullAt1() =>
        [BrkMime2ProbeTests.Parse("From: a@example.test\r\nTo: b@example.test\r\nSubject: x\r\n\r\nbody\r\n"), null!];

    [Fact]
    public async Task A_session_batch_names_the_null_message_by_its_position_and_sends_nothing()
    {
        using var session = new AsyncSmtpSession(); // never connected: the check comes before the session is used

        var act = async () => await session.SendBatchAsync(WithNullAt1());

        (await act.Should().ThrowAsync<ArgumentNullException>()).Which.Message.Should().StartWith("messages[1] is null").And.Contain("nothing was sent");
    }

    [Fact]
    public async Task A_sender_batch_names_the_null_message_by_its_position_and_sends_nothing()
    {
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = "127.0.0.1", Port = 9 });

        var act = async () => await ((ISmtpSender)sender).SendBatchAsync(WithNullAt1());

        (await act.Should().ThrowAsync<ArgumentNullException>()).Which.ParamName.Should().Be("messages");
        sender.GetStatistics().Opened.Should().Be(0);
    }
}
