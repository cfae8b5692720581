using PhoneNumbers;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// E.164 normalisation (spec 4.1). Syntactic, not a full libphonenumber parse per event:
/// strip spaces, dashes, dots and brackets; a leading <c>00</c> becomes <c>+</c>; the result is E.164 when it is
/// <c>+</c> and 7–15 digits, the first not 0, starting with a country calling code libphonenumber supports.
/// Whether the rest is a number that exists in that country is Klaviyo's call, not ours.
/// </summary>
internal static class PhoneNormalizer
{
    public const int MinDigits = 7;
    public const int MaxDigits = 15;

    // Computed once: calling codes are at most three digits and prefix-free.
    private static readonly bool[] s_callingCodes = LoadCallingCodes();

    private static bool[] LoadCallingCodes()
    {
        var codes = new bool[1000];
        foreach (var code in PhoneNumberUtil.GetInstance().GetSupportedCallingCodes())
        {
            if (code is > 0 and < 1000)
            {
                codes[code] = true;
            }
        }
        return codes;
    }

    /// <summary>Returns the E.164 form of <paramref name="raw"/>, or null when it is not one after normalising.</summary>
    public static string? ToE164(string raw)
    {
        if (raw.Length > 64)
        {
            return null;
        }
        Span<char> buffer = stackalloc char[raw.Length + 1];
        var length = 0;
        foreach (var c in raw)
        {
            switch (c)
            {
                case ' ' or '-' or '.' or '(' or ')' or '[' or ']' or '\u00A0' or '\t':
                    continue;
                default:
                    buffer[length++] = c;
                    break;
            }
        }
        scoped ReadOnlySpan<char> digits;
        if (length > 0 && buffer[0] == '+')
        {
            digits = buffer[1..length];
        }
        else if (length > 2 && buffer[0] == '0' && buffer[1] == '0')
        {
            digits = buffer[2..length];
        }
        else
        {
            return null;
        }
        if (digits.Length is < MinDigits or > MaxDigits || digits[0] == '0' || !IsAsciiDigits(digits) || !HasCallingCode(digits))
        {
            return null;
        }
        if (length == raw.Length && raw[0] == '+')
        {
            return raw;
        }
        return string.Concat("+", digits);
    }

    /// <summary>True when <paramref name="utf8"/> is already E.164 exactly as <see cref="ToE164"/> would return it.</summary>
    public static bool IsE164(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length < MinDigits + 1 || utf8.Length > MaxDigits + 1 || utf8[0] != (byte)'+' || utf8[1] == (byte)'0')
        {
            return false;
        }
        var digits = utf8[1..];
        foreach (var b in digits)
        {
            if (!char.IsAsciiDigit((char)b))
            {
                return false;
            }
        }
        return HasCallingCode(digits[0] - '0', digits[1] - '0', digits[2] - '0');
    }

    private static bool IsAsciiDigits(ReadOnlySpan<char> value)
    {
        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return true;
    }

    private static bool HasCallingCode(ReadOnlySpan<char> digits) =>
        HasCallingCode(digits[0] - '0', digits[1] - '0', digits[2] - '0');

    /// <summary>Calling codes are 1–3 digits and prefix-free, so the first of the three prefixes that is one decides.</summary>
    private static bool HasCallingCode(int first, int second, int third) =>
        s_callingCodes[first] || s_callingCodes[first * 10 + second] || s_callingCodes[first * 100 + second * 10 + third];
}
