namespace Klaviyo.Functions.Klaviyo;

/// <summary>The one rule for a Klaviyo list id, used by the <c>Klaviyo__ListId</c> setting at start-up and by
/// <c>listId</c>/<c>groupId</c> per event: the id goes into a URL path (<see cref="KlaviyoApi.AddProfilesToListPath"/>),
/// so only ASCII letters and digits pass, 1 to <see cref="MaxLength"/> of them.</summary>
internal static class ListIds
{
    public const int MaxLength = 64;

    /// <summary>The rule as the error messages state it (after the field or setting name).</summary>
    public const string Rule = "must be a Klaviyo list id (1 to 64 letters and digits)";

    public static bool IsValid(ReadOnlySpan<char> value)
    {
        if (value.Length is 0 or > MaxLength)
        {
            return false;
        }
        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c))
            {
                return false;
            }
        }
        return true;
    }
}
