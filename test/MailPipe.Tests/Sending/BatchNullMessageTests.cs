using MailPipe.Tests.Pooling;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A list with a null message given to <c>SendBatchAsync</c> (session 20, new user): the <see cref="ArgumentNullException"/>
/// said "Value cannot be null. (Parameter 'messages')", as if the list itself were null. It now names the position of the
/// null message and says that nothing was sent, as the async sequence's message already did.
/// </summary>
public sealed class BatchNullMessageTests
{
    private static readonly SmtpMessage Good = SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray());

    [Fact]
    public async Task A_session_batch_names_the_null_message_of_a_list()
    {
        using var session = new AsyncSmtpSession();

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync([Good, null!, Good])).Should().ThrowAsync<ArgumentNullException>();

        thrown.Which.ParamName.Should().Be("messages");
        thrown.Which.Message.Should().Contain("messages[1] is null").And.Contain("nothing was sent");
    }

    [Fact]
    public async Task A_session_streaming_batch_names_the_null_message_of_a_list()
    {
        using var session = new AsyncSmtpSession();

        var thrown = await FluentActions.Awaiting(async () =>
        {
            await foreach (var _ in session.SendBatchStreamingAsync([null!, Good]))
            {
            }
        }).Should().ThrowAsync<ArgumentNullException>();

        thrown.Which.Message.Should().Contain("messages[0] is null");
    }

    [Fact]
    public async Task A_sender_batch_names_the_null_message_of_a_list()
    {
        await using var sender = new SmtpSender(PoolTestMessages.Options(1));

        var thrown = await sender.Awaiting(s => s.SendBatchAsync([Good, Good, null!])).Should().ThrowAsync<ArgumentNullException>();

        thrown.Which.ParamName.Should().Be("messages");
        thrown.Which.Message.Should().Contain("messages[2] is null").And.Contain("nothing was sent");
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Messages == 0 && s.PendingRequests == 0);
    }
}
