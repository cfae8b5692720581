using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Settings;

/// <summary>Settings of section <c>Privacy</c> (app settings <c>Privacy__Name</c>); spec sections 3 and 5.7.</summary>
internal sealed class PrivacyOptions
{
    public const string SectionName = "Privacy";

    /// <summary><c>type: "delete"</c> events ask Klaviyo to delete the person; when false (the default) they are
    /// skipped with a warning. The admin route <c>POST /api/privacy/deletions</c> deletes whatever this says.</summary>
    public bool DeleteEvents { get; set; }
}

/// <summary>Validates <see cref="PrivacyOptions"/> at start-up. Its one setting is a boolean: a value that is not one
/// already fails binding at start-up, naming <c>Privacy:DeleteEvents</c>; there is no further rule.</summary>
internal sealed class PrivacyOptionsValidator : IValidateOptions<PrivacyOptions>
{
    public ValidateOptionsResult Validate(string? name, PrivacyOptions options) => ValidateOptionsResult.Success;
}
