namespace Klaviyo.Functions.Transform;

/// <summary>
/// A lone UTF-16 surrogate escape (<c>"\ud83d"</c>, a JavaScript string cut mid-emoji) is valid JSON syntax, but
/// System.Text.Json refuses to turn it into a string. Spec section 7 accepts it as U+FFFD; this rewrites such escapes
/// in raw JSON to <c>\ufffd</c>, which has the same length, so the rewrite is done in place.
/// </summary>
internal static class LoneSurrogates
{
    /// <summary>True when <paramref name="json"/> holds a surrogate escape without its partner.</summary>
    public static bool Any(ReadOnlySpan<byte> json) => Scan(json, null) > 0;

    /// <summary>Rewrites every lone surrogate escape to <c>\ufffd</c>; returns how many.</summary>
    public static int Replace(Span<byte> json) => Scan(json, json);

    private static int Scan(ReadOnlySpan<byte> json, Span<byte> rewrite)
    {
        var count = 0;
        var i = json.IndexOf((byte)'\\');
        if (i < 0)
        {
            return 0;
        }
        while (i < json.Length - 1)
        {
            if (json[i] != (byte)'\\')
            {
                i++;
                continue;
            }
            if (json[i + 1] != (byte)'u' || !TryHex(json, i + 2, out var unit))
            {
                i += 2;
                continue;
            }
            if (unit is >= 0xD800 and <= 0xDBFF)
            {
                if (i + 11 < json.Length && json[i + 6] == (byte)'\\' && json[i + 7] == (byte)'u' && TryHex(json, i + 8, out var low) && low is >= 0xDC00 and <= 0xDFFF)
                {
                    i += 12;
                    continue;
                }
            }
            else if (unit is < 0xDC00 or > 0xDFFF)
            {
                i += 6;
                continue;
            }
            count++;
            if (!rewrite.IsEmpty)
            {
                "ufffd"u8.CopyTo(rewrite[(i + 1)..]);
            }
            i += 6;
        }
        return count;
    }

    private static bool TryHex(ReadOnlySpan<byte> json, int start, out int value)
    {
        value = 0;
        if (start + 4 > json.Length)
        {
            return false;
        }
        for (var k = start; k < start + 4; k++)
        {
            var digit = HexDigit(json[k]);
            if (digit < 0)
            {
                return false;
            }
            value = (value << 4) | digit;
        }
        return true;
    }

    private static int HexDigit(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
