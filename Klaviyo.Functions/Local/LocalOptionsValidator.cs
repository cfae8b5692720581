using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

public sealed class LocalOptionsValidator : IValidateOptions<LocalOptions>
{
    public ValidateOptionsResult Validate(string? name, LocalOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.DeadLetterPath))
        {
            failures.Add("Local__DeadLetterPath is required");
        }
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.Concurrency), options.Concurrency, 1, 256);
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.ShutdownGrace), options.ShutdownGrace, TimeSpan.Zero, TimeSpan.FromMinutes(5));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
