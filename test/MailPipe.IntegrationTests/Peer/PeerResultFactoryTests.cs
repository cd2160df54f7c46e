namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// Peer acceptance suite: SmtpSendResult's public factories (README: "applications can unit-test their retry and
/// telemetry code with made-up results") say what the XML docs promise, and the exception types are what the docs say.
/// </summary>
public sealed class PeerResultFactoryTests
{
    private static readonly SmtpEnvelope Envelope = new("alice@example.test", "bob@example.test", "carol@example.test");

    [Fact]
    public void Accepted_is_250_to_MAIL_to_every_RCPT_and_to_the_end_of_data()
    {
        var result = SmtpSendResult.Accepted(Envelope);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.IsAccepted.Should().BeTrue();
        result.IsTransientFailure.Should().BeFalse();
        result.Envelope.Should().BeSameAs(Envelope);
        result.MailReply!.Code.Should().Be(250);
        result.Recipients.Select(r => r.Recipient).Should().Equal(Envelope.Recipients);
        result.Recipients.Should().OnlyContain(r => r.Accepted && r.Reply!.Code == 250);
        result.AcceptedRecipients.Should().Equal(Envelope.Recipients);
        result.RefusedRecipients.Should().BeEmpty();
        result.FinalReply!.Code.Should().Be(250);
        result.Exception.Should().BeNull();
        result.Attempts.Should().Be(1);
    }

    [Fact]
    public void Accepted_keeps_the_given_final_reply_and_refuses_a_negative_one()
    {
        var reply = new SmtpReply(250, "2.0.0 Ok: queued as ABC");
        SmtpSendResult.Accepted(Envelope, reply).FinalReply.Should().BeSameAs(reply);

        var act = () => SmtpSendResult.Accepted(Envelope, new SmtpReply(554, "5.7.1 no"));
        act.Should().Throw<ArgumentException>();
    }

    [Theory]
    [InlineData(451, true)]
    [InlineData(554, false)]
    public void Refused_takes_its_transience_from_the_final_reply(int code, bool transient)
    {
        var reply = new SmtpReply(code, "refused");
        var result = SmtpSendResult.Refused(Envelope, reply);

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.IsAccepted.Should().BeFalse();
        result.FinalReply.Should().BeSameAs(reply);
        result.IsTransientFailure.Should().Be(transient);
        result.AcceptedRecipients.Should().Equal(Envelope.Recipients, "refused at the end of data: every recipient accepted");
        result.Exception.Should().BeNull();
    }

    [Fact]
    public void Refused_with_a_positive_reply_is_an_ArgumentException()
    {
        var act = () => SmtpSendResult.Refused(Envelope, new SmtpReply(250, "2.0.0 Ok"));
        act.Should().Throw<ArgumentException>();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void NotSent_carries_the_exception_and_its_transience(bool transient)
    {
        var exception = new SmtpException(SmtpErrorCode.ConnectionRefused, "refused") { IsTransient = transient };
        var result = SmtpSendResult.NotSent(Envelope, exception);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeSameAs(exception);
        result.IsTransientFailure.Should().Be(transient);
        result.FinalReply.Should().BeNull();
        result.AcceptedRecipients.Should().BeEmpty("nothing can have been delivered");
    }

    [Fact]
    public void Unknown_is_never_a_transient_failure_and_has_no_final_reply()
    {
        var exception = new SmtpException(SmtpErrorCode.ConnectionClosed, "lost") { IsTransient = true };
        var result = SmtpSendResult.Unknown(Envelope, exception);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        result.Exception.Should().BeSameAs(exception);
        result.IsTransientFailure.Should().BeFalse("never true for Unknown");
        result.FinalReply.Should().BeNull();
        result.AcceptedRecipients.Should().Equal(Envelope.Recipients, "every recipient accepted, no final reply");
    }

    [Fact]
    public void The_factories_refuse_null_arguments()
    {
        var exception = new SmtpException(SmtpErrorCode.ConnectionClosed, "lost");
        FluentActions.Invoking(() => SmtpSendResult.Accepted(null!)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => SmtpSendResult.Refused(null!, new SmtpReply(554, "no"))).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => SmtpSendResult.Refused(Envelope, null!)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => SmtpSendResult.NotSent(null!, exception)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => SmtpSendResult.NotSent(Envelope, null!)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => SmtpSendResult.Unknown(null!, exception)).Should().Throw<ArgumentNullException>("not a NullReferenceException from inside the factory");
        FluentActions.Invoking(() => SmtpSendResult.Unknown(Envelope, null!)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => SmtpSendResult.Create(null!, SmtpSendOutcome.Accepted)).Should().Throw<ArgumentNullException>();
    }

    [Fact]
    public void Create_round_trips_every_reply_and_checks_the_recipient_count_and_the_outcome()
    {
        var mail = new SmtpReply(250, "2.1.0 Ok");
        var recipients = new[]
        {
            new SmtpRecipientResult(Envelope.Recipients[0], new SmtpReply(250, "2.1.5 Ok")),
            new SmtpRecipientResult(Envelope.Recipients[1], new SmtpReply(450, "4.2.0 try later")),
        };
        var data = new SmtpReply(354, "End data with <CR><LF>.<CR><LF>");
        var final = new SmtpReply(250, "2.0.0 Ok: queued");

        var result = SmtpSendResult.Create(Envelope, SmtpSendOutcome.Accepted, mail, recipients, data, final);

        result.MailReply.Should().BeSameAs(mail);
        result.Recipients.Should().Equal(recipients);
        result.DataReply.Should().BeSameAs(data);
        result.FinalReply.Should().BeSameAs(final);
        result.AcceptedRecipients.Should().Equal(Envelope.Recipients[0]);
        result.RefusedRecipients.Should().Equal(recipients[1]);

        FluentActions.Invoking(() => SmtpSendResult.Create(Envelope, SmtpSendOutcome.Accepted, mail, recipients[..1]))
            .Should().Throw<ArgumentException>("one entry per envelope recipient");
        FluentActions.Invoking(() => SmtpSendResult.Create(Envelope, (SmtpSendOutcome)42))
            .Should().Throw<ArgumentOutOfRangeException>();

        var notSent = SmtpSendResult.Create(Envelope, SmtpSendOutcome.NotSent);
        notSent.Recipients.Should().HaveCount(2).And.OnlyContain(r => r.Reply == null, "no reply when the outcome is NotSent");
    }

    [Fact]
    public void Create_with_every_recipient_refused_transiently_is_a_transient_failure()
    {
        var recipients = Envelope.Recipients.Select(r => new SmtpRecipientResult(r, new SmtpReply(452, "4.5.3 Too many recipients"))).ToArray();
        var result = SmtpSendResult.Create(Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "Ok"), recipients);

        result.IsTransientFailure.Should().BeTrue();
        result.RefusedRecipients.Should().HaveCount(2);
    }

    [Fact]
    public void Every_recipient_refused_with_one_permanent_refusal_among_them_is_not_a_transient_failure()
    {
        var recipients = new[]
        {
            new SmtpRecipientResult(Envelope.Recipients[0], new SmtpReply(450, "4.2.0 try later")),
            new SmtpRecipientResult(Envelope.Recipients[1], new SmtpReply(550, "5.1.1 no such user")),
        };

        SmtpSendResult.Create(Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "Ok"), recipients).IsTransientFailure.Should().BeFalse();
        SmtpSendResult.Create(Envelope, SmtpSendOutcome.Refused, new SmtpReply(451, "4.3.0 later")).IsTransientFailure.Should().BeTrue("a refused MAIL decides");
    }

    [Fact]
    public void WithAttempts_keeps_every_object_and_refuses_less_than_one()
    {
        var exception = new SmtpException(SmtpErrorCode.TimedOut, "t") { IsTransient = true };
        var result = SmtpSendResult.NotSent(Envelope, exception);
        var twice = result.WithAttempts(2);

        twice.Attempts.Should().Be(2);
        twice.Outcome.Should().Be(result.Outcome);
        twice.Exception.Should().BeSameAs(exception);
        twice.Envelope.Should().BeSameAs(result.Envelope);
        result.Attempts.Should().Be(1, "a copy; the original is unchanged");
        FluentActions.Invoking(() => result.WithAttempts(0)).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void SmtpOutcomeUnknownException_is_an_OperationCanceledException_holding_its_result()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var result = SmtpSendResult.Unknown(Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "lost"));
        var exception = new SmtpOutcomeUnknownException(result, null, cts.Token);

        exception.Should().BeAssignableTo<OperationCanceledException>();
        exception.Result.Should().BeSameAs(result);
        exception.CancellationToken.Should().Be(cts.Token);
    }

    [Fact]
    public void SmtpReply_classifies_codes_and_reads_the_enhanced_status_code()
    {
        var transient = new SmtpReply(450, "4.2.0 <tempfail@example.test>: Recipient address rejected");
        transient.IsTransientNegative.Should().BeTrue();
        transient.IsNegative.Should().BeTrue();
        transient.IsPermanentNegative.Should().BeFalse();
        transient.EnhancedStatusCode.Should().NotBeNull();
        transient.EnhancedStatusCode!.ToString().Should().Be("4.2.0");

        new SmtpReply(550, "5.1.1 no").IsPermanentNegative.Should().BeTrue();
        new SmtpReply(354, "go ahead").IsPositiveIntermediate.Should().BeTrue();
        new SmtpReply(221, "bye").IsPositiveCompletion.Should().BeTrue();
        new SmtpReply(421, "4.4.2 closing").IsServiceClosing.Should().BeTrue();
        new SmtpReply(250, ["first", "second"]).Lines.Should().Equal("first", "second");
    }

    [Fact]
    public void SmtpException_keeps_its_code_and_transience()
    {
        var inner = new IOException("x");
        var exception = new SmtpException(SmtpErrorCode.TimedOut, "timed out", inner) { IsTransient = true };

        exception.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        exception.IsTransient.Should().BeTrue();
        exception.InnerException.Should().BeSameAs(inner);
        exception.Reply.Should().BeNull();
    }
}
