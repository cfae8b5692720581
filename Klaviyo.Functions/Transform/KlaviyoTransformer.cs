using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Turns one RudderStack/Segment event into the Klaviyo calls of spec sections 4–5. Pure: no I/O, thread-safe.
/// </summary>
public sealed class KlaviyoTransformer
{
    public KlaviyoTransformer(IOptions<KlaviyoOptions> options, TimeProvider timeProvider)
        : this(options.Value, timeProvider)
    {
    }

    public KlaviyoTransformer(KlaviyoOptions options, TimeProvider? timeProvider = null)
    {
        Options = options;
        TimeProvider = timeProvider ?? TimeProvider.System;
    }

    public KlaviyoOptions Options { get; }

    public TimeProvider TimeProvider { get; }

    /// <summary>Transforms a UTF-8 JSON event. Never throws for bad input: malformed JSON is <see cref="TransformResult.Malformed"/>.</summary>
    public TransformResult Transform(ReadOnlySpan<byte> utf8Json)
    {
        throw new NotImplementedException("issue 2");
    }

    /// <summary>Transforms an already parsed event.</summary>
    public TransformResult Transform(JsonElement @event)
    {
        throw new NotImplementedException("issue 2");
    }
}
