using MailPipe.Transmission;

namespace MailPipe.Tests.Transmission;

/// <summary>The one queue of expected replies: wire order, the payload on the last entry, growth across the wrap.</summary>
public class ExpectedReplyQueueTests
{
    [Fact]
    public void Entries_come_out_in_the_order_they_were_added_with_the_payload_attached_to_the_last_one()
    {
        var queue = new ExpectedReplyQueue<int>();
        queue.Add("MAIL FROM");
        queue.AttachToLast(1);
        queue.Add("RCPT TO");
        queue.Add("DATA");
        queue.AttachToLast(3);

        queue.Count.Should().Be(3);
        queue.TryPeek(out var head).Should().BeTrue();
        head.Should().Be(new ExpectedReplyQueue<int>.Entry("MAIL FROM", 1));
        var taken = new List<ExpectedReplyQueue<int>.Entry>();
        while (queue.TryTake(out var entry))
        {
            taken.Add(entry);
        }

        taken.Should().Equal(new ExpectedReplyQueue<int>.Entry[] { new("MAIL FROM", 1), new("RCPT TO", 0), new("DATA", 3) });
        queue.TakenCount.Should().Be(3);
        queue.TryPeek(out _).Should().BeFalse();
    }

    [Fact]
    public void It_grows_across_the_wrap_without_reordering()
    {
        var queue = new ExpectedReplyQueue<int>();
        for (var i = 0; i < 10; i++)
        {
            queue.Add($"c{i}");
            queue.AttachToLast(i);
        }

        for (var i = 0; i < 8; i++)
        {
            queue.TryTake(out _).Should().BeTrue();
        }

        for (var i = 10; i < 60; i++)
        {
            queue.Add($"c{i}");
            queue.AttachToLast(i);
        }

        var payloads = new List<int>();
        while (queue.TryTake(out var entry))
        {
            entry.Name.Should().Be($"c{entry.Payload}");
            payloads.Add(entry.Payload);
        }

        payloads.Should().Equal(Enumerable.Range(8, 52));
    }
}
