using System.CommandLine;
using System.CommandLine.Parsing;

namespace MailPipe.Cli;

/// <summary>
/// The checks of options that name a file or a folder. An empty value (<c>--ca-file "$CA"</c> with the variable unset)
/// is a usage error naming the option: the parser's <see cref="FileInfo"/> conversion, and the file APIs later, throw on it.
/// </summary>
internal static class PathOptions
{
    /// <summary>Parses an existing file's path: an empty path, or one that is not a file, is an error naming <paramref name="option"/>.</summary>
    /// <param name="result">The option's argument.</param>
    /// <param name="option">The option's name.</param>
    /// <returns>The file, or <see langword="null"/> after an error.</returns>
    public static FileInfo? ParseExistingFile(ArgumentResult result, string option)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
        if (string.IsNullOrWhiteSpace(text))
        {
            result.AddError($"{option}: the path is empty");
            return null;
        }

        var file = new FileInfo(text);
        if (!file.Exists)
        {
            // Named with its option (the parser's own check said only "File does not exist").
            result.AddError($"{option}: '{text}' is not a file");
            return null;
        }

        return file;
    }

    /// <summary>Makes an empty value of a path option a usage error naming it.</summary>
    /// <param name="option">The option.</param>
    public static void RefuseEmpty(Option option)
    {
        ArgumentNullException.ThrowIfNull(option);
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && string.IsNullOrWhiteSpace(result.Tokens[0].Value))
            {
                result.AddError($"{option.Name}: the path is empty");
            }
        });
    }
}
