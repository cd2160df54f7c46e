using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MailPipe;

/// <summary>The vector loops of <see cref="SmtpDataEncoder"/>: runs of plain bytes copied a vector at a time, stops (CR, LF, a line-leading dot) handled one by one.</summary>
internal sealed partial class SmtpDataEncoder
{
    // Bounds: the re-store after a stop reads a whole vector from the stop, so a step needs a vector of input past
    // its own. A step writes at most twice its input bytes (the transform's 2x bound), plus a vector of scratch past
    // them that later steps overwrite, so the output check keeps the unchecked stores inside the destination.

    /// <summary>The Vector256 loop, two vectors a step with one branch for both; returns the first input index not done.</summary>
    private static nint Run256(ReadOnlySpan<byte> input, Span<byte> destination, nint index, ref nint shift, bool dotStuffing)
    {
        const int Width = 32;
        ref var source = ref MemoryMarshal.GetReference(input);
        ref var target = ref MemoryMarshal.GetReference(destination);
        var lf = Vector256.Create((byte)'\n');
        var cr = Vector256.Create((byte)'\r');
        var dot = Vector256.Create((byte)'.');

        // Without dot-stuffing, "a '.' after a CR" replaces "a '.' after an LF": a stop already (bare CR), so the dot
        // term adds nothing and needs no mask of its own.
        var beforeDot = dotStuffing ? lf : cr;
        var offset = shift;

        // A step looks at the 64 input bytes from index - 1 and the byte after each: bit b of the mask says whether the
        // byte after byte index - 1 + b is a stop. Loading at and after the stored bytes (not before them) keeps the
        // next step's loads clear of this step's stores when the two arrays sit at the same offset in their pages.
        // A stop re-stores two vectors from itself, which covers the rest of the step wherever the stop is.
        // Bounds: the re-store reads 64 bytes from a stop up to index + 64; a step writes at most 2 * 64 + 1 bytes
        // (the 2x bound, plus one for an LF and a '.' before the first byte) and 64 bytes of scratch past them.
        const int InputNeeded = 4 * Width;
        const int OutputNeeded = (6 * Width) + 1;
        index--;
        var limit = Math.Min((nint)input.Length - InputNeeded, (nint)destination.Length - OutputNeeded - offset);
        while (index <= limit)
        {
            var current0 = Vector256.LoadUnsafe(ref source, (nuint)index);
            var next0 = Vector256.LoadUnsafe(ref source, (nuint)(index + 1));
            var current1 = Vector256.LoadUnsafe(ref source, (nuint)(index + Width));
            var next1 = Vector256.LoadUnsafe(ref source, (nuint)(index + Width + 1));
            current0.StoreUnsafe(ref target, (nuint)(index + offset));
            current1.StoreUnsafe(ref target, (nuint)(index + Width + offset));
            var stops0 = (Vector256.Equals(next0, lf) ^ Vector256.Equals(current0, cr)) | (Vector256.Equals(next0, dot) & Vector256.Equals(current0, beforeDot));
            var stops1 = (Vector256.Equals(next1, lf) ^ Vector256.Equals(current1, cr)) | (Vector256.Equals(next1, dot) & Vector256.Equals(current1, beforeDot));
            if ((stops0 | stops1) != Vector256<byte>.Zero)
            {
                var mask = stops0.ExtractMostSignificantBits() | ((ulong)stops1.ExtractMostSignificantBits() << Width);
                do
                {
                    var stop = index + 1 + BitOperations.TrailingZeroCount(mask);
                    offset = Insert(ref source, ref target, stop, offset, dotStuffing);
                    Vector256.LoadUnsafe(ref source, (nuint)stop).StoreUnsafe(ref target, (nuint)(stop + offset));
                    Vector256.LoadUnsafe(ref source, (nuint)(stop + Width)).StoreUnsafe(ref target, (nuint)(stop + Width + offset));
                    mask &= mask - 1; // the lowest set bit cleared (BLSR)
                }
                while (mask != 0);

                limit = Math.Min((nint)input.Length - InputNeeded, (nint)destination.Length - OutputNeeded - offset);
            }

            index += 2 * Width;
        }

        // The stop before byte index is done but the byte itself is not stored yet (when no step ran, it is the byte
        // before the first, already written there).
        Unsafe.Add(ref target, index + offset) = Unsafe.Add(ref source, index);
        index++;
        shift = offset;
        return index;
    }

    /// <summary>The Vector128 loop (the whole run without AVX2, the last bytes with it); returns the first input index not done.</summary>
    private static nint Run128(ReadOnlySpan<byte> input, Span<byte> destination, nint index, ref nint shift, bool dotStuffing)
    {
        const int Width = 16;
        ref var source = ref MemoryMarshal.GetReference(input);
        ref var target = ref MemoryMarshal.GetReference(destination);
        var lastInput = (nint)input.Length - (2 * Width) + 1;
        var lastOutput = (nint)destination.Length - (3 * Width);
        var lf = Vector128.Create((byte)'\n');
        var cr = Vector128.Create((byte)'\r');
        var dot = Vector128.Create((byte)'.');
        var beforeDot = dotStuffing ? lf : cr;
        var offset = shift;
        while (index <= lastInput && index + offset <= lastOutput)
        {
            var previous = Vector128.LoadUnsafe(ref source, (nuint)(index - 1));
            var current = Vector128.LoadUnsafe(ref source, (nuint)index);
            current.StoreUnsafe(ref target, (nuint)(index + offset));
            var stops = (Vector128.Equals(current, lf) ^ Vector128.Equals(previous, cr)) | (Vector128.Equals(current, dot) & Vector128.Equals(previous, beforeDot));
            var mask = stops.ExtractMostSignificantBits();
            while (mask != 0)
            {
                var stop = index + BitOperations.TrailingZeroCount(mask);
                offset = Insert(ref source, ref target, stop, offset, dotStuffing);
                Vector128.LoadUnsafe(ref source, (nuint)stop).StoreUnsafe(ref target, (nuint)(stop + offset));
                mask &= mask - 1;
            }

            index += Width;
        }

        shift = offset;
        return index;
    }

    /// <summary>What goes before a stop, by (previous is CR) * 2 + (stop is LF); a CRLF pair is never a stop.</summary>
    private static ReadOnlySpan<byte> Inserted => ".\r\n"u8;

    /// <summary>
    /// Writes what goes before the stop at <paramref name="stop"/>, where the input byte there was stored, and returns
    /// the new shift. The caller then stores the input from the stop on, past the inserted bytes.
    /// </summary>
    /// <param name="source">The input.</param>
    /// <param name="target">The destination.</param>
    /// <param name="stop">The input index of the stop, at least 1.</param>
    /// <param name="shift">Where input bytes go in the destination, relative to their index.</param>
    /// <param name="dotStuffing">Whether a <c>.</c> after a bare CR is doubled as well.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Insert(ref byte source, ref byte target, nint stop, nint shift, bool dotStuffing)
    {
        var current = Unsafe.Add(ref source, stop);
        var afterCr = Unsafe.Add(ref source, stop - 1) == (byte)'\r';
        var kind = (afterCr ? 2 : 0) | (current == (byte)'\n' ? 1 : 0);
        Unsafe.Add(ref target, stop + shift) = Unsafe.Add(ref MemoryMarshal.GetReference(Inserted), kind);
        shift++;
        if (afterCr && current == (byte)'.' && dotStuffing)
        {
            // A '.' after a bare CR starts a line too: the LF just written, then the doubling.
            Unsafe.Add(ref target, stop + shift) = (byte)'.';
            shift++;
        }

        return shift;
    }
}

/// <summary>The vector paths of <see cref="SmtpDataEncoder"/>.</summary>
internal enum VectorWidth
{
    /// <summary>Scalar code only.</summary>
    None = 0,

    /// <summary>Up to <see cref="Vector128{T}"/>.</summary>
    Bits128 = 128,

    /// <summary>Up to <see cref="Vector256{T}"/>.</summary>
    Bits256 = 256,
}
