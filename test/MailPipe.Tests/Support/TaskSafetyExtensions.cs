namespace MailPipe.Tests.Support;

/// <summary>Bounds every await on the code under test by <see cref="ScriptedSmtpServer.SafetyTimeout"/>: a hang fails the test instead of blocking the run. Never an assertion about time.</summary>
internal static class TaskSafetyExtensions
{
    public static Task Safe(this Task task) => task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

    public static Task<T> Safe<T>(this Task<T> task) => task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

    public static Task Safe(this ValueTask task) => task.AsTask().WaitAsync(ScriptedSmtpServer.SafetyTimeout);
}
