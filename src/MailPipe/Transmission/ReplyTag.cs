namespace MailPipe.Transmission;

/// <summary>
/// What an expected reply is filed with by the layer that wrote its command, carried on its entry in the channel's
/// queue (<see cref="SmtpChannel.Replies"/>); the channel never looks inside.
/// </summary>
/// <param name="Owner">What the reply belongs to (a transaction), or <see langword="null"/>.</param>
/// <param name="Kind">The writer's own kind of reply (MAIL, a recipient, DATA…).</param>
/// <param name="Index">The writer's index (a recipient's position).</param>
internal readonly record struct ReplyTag(object? Owner, byte Kind, int Index);
