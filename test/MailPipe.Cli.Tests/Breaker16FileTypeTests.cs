namespace MailPipe.Cli.Tests;

/// <summary>
/// A breaker's probe of "a directory or wildcard takes regular files only" (merge d51ff7e): the file type was looked at
/// by name when the arguments were expanded, and the file opened later by name; a file replaced by a FIFO in between was
/// opened for reading, which waits for a writer: the batch blocked as before the fix.
/// </summary>
public sealed class Breaker16FileTypeTests
{
    [Fact]
    public async Task A_file_replaced_by_a_FIFO_after_the_expansion_is_reported_without_waiting_for_a_writer()
    {
        using var dir = new TempDirectory();
        dir.File("a.eml", "From: a@example.test\r\nTo: b@example.test\r\nSubject: a\r\n\r\nbody\r\n");
        var swapped = dir.File("b.eml", "From: a@example.test\r\nTo: b@example.test\r\nSubject: b\r\n\r\nbody\r\n");
        FileArguments.TryExpand([dir.Path], out var files, out var found, out var error).Should().BeTrue(error);
        found.Should().HaveCount(2).And.OnlyContain(f => f.Value == null, "both were regular files when expanded");

        File.Delete(swapped);
        await MakeFifoAsync(swapped);
        var loading = Task.Run(() => files.Select((f, i) => OutgoingMessage.LoadFile(i + 1, f, new MessageDefaults(), regularOnly: found.ContainsKey(i))).ToList());
        List<OutgoingMessage> messages;
        try
        {
            messages = await loading.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            // Release the reader stuck in open(), so that the run ends.
            await using (new FileStream(swapped, FileMode.Open, FileAccess.Write))
            {
            }

            throw new Xunit.Sdk.XunitException("the load was still waiting on the FIFO after 30 s");
        }

        messages[0].InputError.Should().BeNull();
        messages[1].InputError.Should().Be($"{swapped}: a FIFO (named pipe), not a regular file: a directory or a wildcard sends regular files only (name it on its own to read it to its end)");
        messages.ForEach(m => m.Dispose());
    }

    /// <summary>A symbolic link to a regular file is still sent (as a shell's cat would read it); one to a FIFO is not opened; a broken one is reported when read.</summary>
    [Fact]
    public async Task Symbolic_links_are_followed_to_what_they_name()
    {
        using var dir = new TempDirectory();
        using var other = new TempDirectory();
        var target = other.File("t.eml", "From: a@example.test\r\nTo: b@example.test\r\nSubject: t\r\n\r\nbody\r\n");
        var fifo = Path.Combine(other.Path, "f");
        await MakeFifoAsync(fifo);
        File.CreateSymbolicLink(Path.Combine(dir.Path, "1 link é.eml"), target);
        File.CreateSymbolicLink(Path.Combine(dir.Path, "2.eml"), fifo);
        File.CreateSymbolicLink(Path.Combine(dir.Path, "3.eml"), Path.Combine(other.Path, "missing"));

        FileArguments.TryExpand([dir.Path], out var files, out var found, out var error).Should().BeTrue(error);
        files.Should().HaveCount(3);
        found.Values.Should().Equal([null, "a FIFO (named pipe)", null]);
        var first = OutgoingMessage.LoadFile(1, files[0], new MessageDefaults(), regularOnly: true);
        first.InputError.Should().BeNull();
        var broken = OutgoingMessage.LoadFile(3, files[2], new MessageDefaults(), regularOnly: true);
        broken.InputError.Should().StartWith($"cannot read {files[2]}");
        first.Dispose();
        broken.Dispose();
    }

    private static async Task MakeFifoAsync(string path)
    {
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path]);
        await mkfifo.WaitForExitAsync();
        mkfifo.ExitCode.Should().Be(0);
    }

    /// <summary>A file another process holds with FileShare.None (a .NET writer still writing it) is refused as File.OpenHandle refuses it, never read half written.</summary>
    [Fact]
    public void A_file_held_exclusively_by_a_writer_is_not_read()
    {
        using var dir = new TempDirectory();
        var path = dir.File("a.eml", "From: a@example.test\r\nTo: b@example.test\r\nSubject: a\r\n\r\nbody\r\n");
        using var writer = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None);

        var found = OutgoingMessage.LoadFile(1, path, new MessageDefaults(), regularOnly: true);
        var named = OutgoingMessage.LoadFile(1, path, new MessageDefaults());

        found.InputError.Should().StartWith($"cannot read {path}").And.Contain("being used by another process");
        named.InputError.Should().StartWith($"cannot read {path}").And.Contain("being used by another process");
    }
}
