namespace MailPipe;

/// <summary>
/// Marks an exception thrown by the caller's content source (its stream or pipe reader), so that only such a failure
/// is reported as <see cref="SmtpErrorCode.ContentReadFailed"/>; an exception from MailPipe's own code never is.
/// Never leaves the library: the source's exception is the inner exception of the <see cref="SmtpException"/>.
/// </summary>
internal sealed class ContentSourceException(Exception sourceException) : Exception(sourceException.Message, sourceException)
{
    /// <summary>The exception the content source threw.</summary>
    public Exception SourceException => InnerException!;
}
