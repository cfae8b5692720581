using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Telemetry;

/// <summary>Settings of section <c>Telemetry</c> (app settings <c>Telemetry__Name</c>).</summary>
internal sealed class TelemetryOptions
{
    public const string SectionName = "Telemetry";

    /// <summary>Extra exporter for logs, traces and the relay's metrics: <c>none</c> (default), <c>console</c>, or
    /// <c>otlp</c> (endpoint from <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, default <c>http://localhost:4317</c>). In Azure the
    /// Azure Monitor exporter runs whenever <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set, whatever this says.</summary>
    public string Exporter { get; set; } = None;

    public const string None = "none";
    public const string Console = "console";
    public const string Otlp = "otlp";

    internal static readonly string[] Exporters = [None, Console, Otlp];
}

internal sealed class TelemetryOptionsValidator : IValidateOptions<TelemetryOptions>
{
    public ValidateOptionsResult Validate(string? name, TelemetryOptions options) =>
        TelemetryOptions.Exporters.Contains(options.Exporter?.Trim(), StringComparer.OrdinalIgnoreCase)
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"{TelemetryOptions.SectionName}__{nameof(TelemetryOptions.Exporter)}: '{options.Exporter}' is not one of {string.Join(", ", TelemetryOptions.Exporters)}");
}
