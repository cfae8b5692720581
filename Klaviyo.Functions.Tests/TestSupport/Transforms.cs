using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>Builds transformers over test settings and a fixed clock.</summary>
internal static class Transforms
{
    /// <summary>The fixed "now" of transform tests.</summary>
    public static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    public static KlaviyoOptions Options(Action<KlaviyoOptions>? configure = null)
    {
        var options = new KlaviyoOptions { PrivateApiKey = "pk_test" };
        configure?.Invoke(options);
        return options;
    }

    public static KlaviyoTransformer Transformer(Action<KlaviyoOptions>? configure = null) =>
        new(Options(configure), new FakeTimeProvider(Now));

    /// <summary>Transforms <paramref name="json"/> (UTF-8) with the given settings.</summary>
    public static TransformResult Run(string json, Action<KlaviyoOptions>? configure = null) =>
        Transformer(configure).Transform(Encoding.UTF8.GetBytes(json));
}
