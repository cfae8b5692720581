namespace Klaviyo.Functions.Settings;

/// <summary>Checks shared by the options validators; messages name the setting as an operator writes it.</summary>
internal static class SettingRules
{
    /// <summary>Adds <c>Section__Setting: value is not between min and max</c> when the value is outside the range.</summary>
    public static void Range<T>(List<string> failures, string section, string setting, T value, T min, T max)
        where T : IComparable<T>
    {
        if (value.CompareTo(min) < 0 || value.CompareTo(max) > 0)
        {
            failures.Add($"{section}__{setting}: {value} is not between {min} and {max}");
        }
    }
}
