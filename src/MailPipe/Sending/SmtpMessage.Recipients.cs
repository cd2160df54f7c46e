namespace MailPipe;

/// <summary>A copy for some of the recipients (issue #12: a retry sends only to the recipients still to do).</summary>
public sealed partial class SmtpMessage
{
    /// <summary>
    /// A copy of this message for some of its recipients: the same reverse-path, MAIL parameters and content source
    /// (shared, not copied), and only <paramref name="recipients"/>. A retry uses it to send again only to the
    /// recipients that were refused transiently, never to one that already accepted the message.
    /// </summary>
    /// <remarks>
    /// The copy replays its content as this message does (see <see cref="SmtpMessage"/>): a one-pass source read by a
    /// send of this message or of any copy is <see cref="SmtpErrorCode.ContentNotReplayable"/> for all of them. For a
    /// message made with <see cref="ForConnection"/>, the message chosen for the connection is cut to the same
    /// recipients by position. The token of <see cref="WithCancellation"/> is carried over.
    /// </remarks>
    /// <param name="recipients">
    /// The recipients to keep: at least one, each one of this message's recipients, in envelope order (a subsequence
    /// of <see cref="SmtpEnvelope.Recipients"/>, compared by value).
    /// </param>
    /// <returns>The copy.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="recipients"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="recipients"/> is empty, or not a subsequence of this message's recipients.</exception>
    public SmtpMessage WithRecipients(IEnumerable<SmtpRecipient> recipients)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        var kept = recipients as IReadOnlyList<SmtpRecipient> ?? [.. recipients];
        if (kept.Count == 0)
        {
            throw new ArgumentException("A message needs at least one recipient.", nameof(recipients));
        }

        var all = Envelope.Recipients;
        var positions = new int[kept.Count];
        var next = 0;
        for (var i = 0; i < kept.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(kept[i], nameof(recipients));
            while (next < all.Count && all[next] != kept[i])
            {
                next++;
            }

            if (next == all.Count)
            {
                throw new ArgumentException($"'{kept[i].Address}' is not one of the message's recipients after the ones before it: keep a subsequence of the envelope's recipients, in order.", nameof(recipients));
            }

            positions[i] = next++;
        }

        var copy = (SmtpMessage)MemberwiseClone();
        copy.Envelope = Envelope.WithRecipients([.. positions.Select(p => all[p])]);
        if (Selector is { } select)
        {
            copy._source = (Func<SmtpCapabilities, SmtpMessage>)(capabilities => select(capabilities).AtPositions(positions, all.Count));
        }

        return copy;
    }

    /// <summary>The message chosen for a connection, cut to the recipients at <paramref name="positions"/>.</summary>
    private SmtpMessage AtPositions(int[] positions, int expectedCount)
    {
        if (Envelope.Recipients.Count != expectedCount)
        {
            throw new InvalidOperationException($"The message chosen for the connection must have as many recipients as the envelope ({expectedCount}).");
        }

        var copy = (SmtpMessage)MemberwiseClone();
        copy.Envelope = Envelope.WithRecipients([.. positions.Select(p => Envelope.Recipients[p])]);
        return copy;
    }
}
