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
        if (options.Concurrency is < 1 or > 256)
        {
            failures.Add($"Local__Concurrency: {options.Concurrency} is not between 1 and 256");
        }
        if (options.ShutdownGrace < TimeSpan.Zero || options.ShutdownGrace > TimeSpan.FromMinutes(5))
        {
            failures.Add($"Local__ShutdownGrace: {options.ShutdownGrace} is not between 00:00:00 and 00:05:00");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
