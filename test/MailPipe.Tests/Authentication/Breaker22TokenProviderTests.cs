using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Authentication;

/// <summary>
/// Breaker 22: an OAuth access-token provider that ignores its token and waits (a token service called without the
/// token). <c>DisconnectAsync</c> and the caller's cancellation must still end the AUTH call: ConnectionClosed, or the
/// cancellation, with nothing of AUTH written.
/// </summary>
public class Breaker22TokenProviderTests
{
    [Fact]
    public async Task DisconnectAsync_ends_AUTH_waiting_for_a_token_provider_that_ignores_its_token()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("AUTH XOAUTH2 OAUTHBEARER")).ReadUntilClosed());
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });
        var called = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        var auth = session.AuthXOAuth2Async("user@example.test", _ =>
        {
            called.TrySetResult();
            return new ValueTask<string>(never.Task); // the token is ignored on purpose
        });
        await called.Task.Safe();
        await session.DisconnectAsync();

        var thrown = await FluentActions.Awaiting(() => auth.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3)).Should().ThrowAsync<SmtpException>();
        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
        never.TrySetException(new InvalidOperationException("Breaker22: the token service failed late."));
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("AUTH");
    }

    [Fact]
    public async Task The_callers_cancellation_ends_AUTH_waiting_for_a_token_provider_that_ignores_its_token()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("AUTH XOAUTH2 OAUTHBEARER")).ReadUntilClosed());
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });
        var called = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = new CancellationTokenSource();

        var auth = session.AuthOAuthBearerAsync("user@example.test", _ =>
        {
            called.TrySetResult();
            return new ValueTask<string>(never.Task); // the token is ignored on purpose
        }, cts.Token);
        await called.Task.Safe();
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => auth.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3)).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        never.TrySetResult("late-token");
        server.ReceivedText.Should().NotContain("AUTH");
    }
}
