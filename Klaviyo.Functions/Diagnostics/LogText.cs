using System.Globalization;
using System.Text;

namespace Klaviyo.Functions.Diagnostics;

/// <summary>Log values from outside (ids, exception messages) with control characters escaped, so a CR, LF or NUL sent
/// by a client can neither forge a log line nor cut one short.</summary>
internal static class LogText
{
    public static string Escape(string? value)
    {
        if (value is null)
        {
            return "";
        }
        var first = value.AsSpan().IndexOfAnyInRange('\0', '\u001F');
        if (first < 0 && !value.AsSpan().ContainsAnyInRange('\u007F', '\u009F'))
        {
            return value;
        }
        var builder = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            switch (c)
            {
                case '\r': builder.Append("\\r"); break;
                case '\n': builder.Append("\\n"); break;
                case '\t': builder.Append("\\t"); break;
                case '\0': builder.Append("\\0"); break;
                default:
                    if (char.IsControl(c))
                    {
                        builder.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }
                    break;
            }
        }
        return builder.ToString();
    }
}
