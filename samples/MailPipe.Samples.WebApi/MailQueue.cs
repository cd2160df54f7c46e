using Microsoft.Extensions.Options;
using System.Threading.Channels;

namespace MailPipe.Samples.WebApi;

/// <summary>A message waiting in the queue, with the id that <c>POST /mail/queue</c> answered.</summary>
/// <param name="Id">The id.</param>
/// <param name="Message">The message.</param>
public sealed record QueuedMail(string Id, SmtpMessage Message);

/// <summary>
/// The bounded in-memory queue between <c>POST /mail/queue</c> and <see cref="MailQueueConsumer"/>. In memory means lost
/// on a crash: a service that must not lose mail puts a durable queue it already runs in front (see the README's
/// scale-out section). Thread-safe.
/// </summary>
public sealed class MailQueue
{
    /// <summary>How many messages may wait; a request beyond that gets 503.</summary>
    public const int Capacity = 100;

    private readonly Channel<QueuedMail> _channel = System.Threading.Channels.Channel.CreateBounded<QueuedMail>(new BoundedChannelOptions(Capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });

    /// <summary>The consumer's end.</summary>
    public ChannelReader<QueuedMail> Reader => _channel.Reader;

    /// <summary>Queues a message; false when the queue is full or closed (the application is stopping).</summary>
    public bool TryEnqueue(QueuedMail mail) => _channel.Writer.TryWrite(mail);

    /// <summary>Closes the queue: from now on <see cref="TryEnqueue"/> is false.</summary>
    public void Close() => _channel.Writer.TryComplete();
}

/// <summary>
/// Sends the queued messages one at a time through the shared <see cref="ISmtpSender"/>. On shutdown it stops taking
/// messages, lets the one in progress finish until shortly before the host's shutdown timeout and then cancels it (the
/// sender closes the connection without ending the data: never half-sent), and logs every message left in the
/// queue at Warning with its id.
/// </summary>
/// <param name="queue">The queue it takes messages from.</param>
/// <param name="services">
/// Where it takes the shared sender from when it starts, not when it is constructed: the host constructs every hosted
/// service before it starts the first, so a sender taken in the constructor would be made before OpenTelemetry's
/// hosted service makes its tracer and meter providers, which would then be disposed first and miss what the sender
/// records while it is disposed (the <c>smtp connection</c> spans of the connections closed at shutdown).
/// </param>
/// <param name="hostOptions">The host's options (its shutdown timeout).</param>
/// <param name="logger">Where it logs each message's fate.</param>
/// <param name="timeProvider">The clock of the shutdown deadline (the application's <see cref="TimeProvider"/> when registered; the system clock otherwise).</param>
public sealed partial class MailQueueConsumer(MailQueue queue, IServiceProvider services, IOptions<HostOptions> hostOptions, ILogger<MailQueueConsumer> logger, TimeProvider? timeProvider = null) : BackgroundService
{
    private readonly CancellationTokenSource _abort = new(Timeout.InfiniteTimeSpan, timeProvider ?? TimeProvider.System);
    private readonly Lock _gate = new();
    private ISmtpSender? _sender;
    private Task? _stopping;

    /// <inheritdoc/>
    public override Task StopAsync(CancellationToken cancellationToken)
    {
        // A host may stop its services twice (WebApplicationFactory does): the second call waits for the first.
        lock (_gate)
        {
            return _stopping ??= StopOnceAsync(cancellationToken);
        }
    }

    private async Task StopOnceAsync(CancellationToken cancellationToken)
    {
        queue.Close();
        try
        {
            // The message in progress gets until 80 % of the shutdown timeout, or until the host gives up: then it is cancelled.
            var timeout = hostOptions.Value.ShutdownTimeout;
            if (timeout != Timeout.InfiniteTimeSpan)
            {
                _abort.CancelAfter(timeout * 0.8);
            }

            await using var registration = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _abort);

            // The stopping token ends the loop once the message in progress is done; wait for that (and the log of the rest).
            await base.StopAsync(CancellationToken.None);
        }
        finally
        {
            _abort.Dispose();
        }
    }

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _sender = services.GetRequiredService<ISmtpSender>();
        try
        {
            while (await queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (!stoppingToken.IsCancellationRequested && queue.Reader.TryRead(out var mail))
                {
                    await SendAsync(mail);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: take no more.
        }
        finally
        {
            queue.Close();
            while (queue.Reader.TryRead(out var left))
            {
                LogNotSentAtShutdown(logger, left.Id);
            }
        }
    }

    private async Task SendAsync(QueuedMail mail)
    {
        try
        {
            var result = await _sender!.SendAsync(mail.Message, _abort.Token);
            var refused = result.RefusedRecipients.Count();
            if (result.Outcome == SmtpSendOutcome.Accepted && refused > 0)
            {
                // Delivered to some recipients only: the refused ones will not get it unless someone acts.
                LogPartlyAccepted(logger, mail.Id, result.FinalReply?.Code, result.Recipients.Count - refused, result.Recipients.Count, refused, DescribeRefusals(result));
            }
            else if (result.Outcome == SmtpSendOutcome.Accepted)
            {
                LogSent(logger, mail.Id, result.FinalReply?.Code);
            }
            else
            {
                LogNotAccepted(logger, mail.Id, result.Outcome, result.ToString());
            }
        }
        catch (SmtpOutcomeUnknownException)
        {
            // Cancelled at shutdown after its end of data was written: the server may have accepted it.
            LogCancelledUnknown(logger, mail.Id);
        }
        catch (OperationCanceledException)
        {
            LogCancelled(logger, mail.Id);
        }
        catch (ObjectDisposedException)
        {
            LogCancelled(logger, mail.Id);
        }
    }

    /// <summary>
    /// Each refused recipient as its position in the request's <c>to</c> and its reply code (<c>to[0] 550 5.1.1</c>):
    /// no address and no reply text (which often quotes the address) in the log.
    /// </summary>
    private static string DescribeRefusals(SmtpSendResult result) => string.Join(", ", result.Recipients
        .Select(static (r, i) => (r, i))
        .Where(static x => !x.r.Accepted)
        .Select(static x => x.r.Reply is { } reply
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"to[{x.i}] {reply.Code}{(reply.EnhancedStatusCode is { } enhanced ? " " + enhanced.ToString() : string.Empty)}")
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"to[{x.i}] no reply")));

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Queued message {Id} accepted ({ReplyCode}) for {AcceptedCount} of {RecipientCount} recipients; {RefusedCount} refused: {Refusals}")]
    private static partial void LogPartlyAccepted(ILogger logger, string id, int? replyCode, int acceptedCount, int recipientCount, int refusedCount, string refusals);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Queued message {Id} accepted ({ReplyCode})")]
    private static partial void LogSent(ILogger logger, string id, int? replyCode);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Queued message {Id} not accepted: {Outcome} ({Result})")]
    private static partial void LogNotAccepted(ILogger logger, string id, SmtpSendOutcome outcome, string result);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Queued message {Id} was not sent: cancelled at shutdown before its end of data, so nothing of it was delivered")]
    private static partial void LogCancelled(ILogger logger, string id);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Queued message {Id} was cancelled at shutdown after its end of data was written: it may have been delivered")]
    private static partial void LogCancelledUnknown(ILogger logger, string id);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Queued message {Id} was not sent: the application stopped before its turn")]
    private static partial void LogNotSentAtShutdown(ILogger logger, string id);
}
