using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Calls;

/// <summary>
/// One step of a <see cref="RequestPlan"/>. A step that <see cref="NeedsProfileId"/> is built only once the
/// earlier step that <see cref="YieldsProfileId"/> has answered: Klaviyo's list calls take profile ids only,
/// and profile-import's answer (<c>data.id</c>) is where that id comes from (spec section 5, identify).
/// </summary>
internal sealed class PlanStep
{
    private readonly KlaviyoRequest? _fixed;
    private readonly Func<string, KlaviyoRequest>? _build;

    private PlanStep(KlaviyoEndpoint endpoint, KlaviyoRequest? fixedRequest, Func<string, KlaviyoRequest>? build, bool yieldsProfileId)
    {
        Endpoint = endpoint;
        _fixed = fixedRequest;
        _build = build;
        YieldsProfileId = yieldsProfileId;
    }

    public KlaviyoEndpoint Endpoint { get; }

    /// <summary>The answer's <c>data.id</c> is the profile id later steps need; an answer without it is a failure.</summary>
    public bool YieldsProfileId { get; }

    /// <summary>The request can only be built with the profile id from an earlier step.</summary>
    public bool NeedsProfileId => _build is not null;

    public static PlanStep Fixed(KlaviyoRequest request, bool yieldsProfileId = false) =>
        new(request.Endpoint, request, null, yieldsProfileId);

    public static PlanStep WithProfileId(KlaviyoEndpoint endpoint, Func<string, KlaviyoRequest> build) =>
        new(endpoint, null, build, yieldsProfileId: false);

    /// <summary>Builds the request; <paramref name="profileId"/> is required when <see cref="NeedsProfileId"/>.</summary>
    public KlaviyoRequest Build(string? profileId = null)
    {
        if (_fixed is not null)
        {
            return _fixed;
        }
        if (string.IsNullOrEmpty(profileId))
        {
            throw new InvalidOperationException($"The {Endpoint} step needs the profile id from an earlier step.");
        }
        return _build!(profileId);
    }
}

/// <summary>The ordered Klaviyo calls one event needs. Every call is idempotent, so a plan retries as a whole.</summary>
internal sealed class RequestPlan(IReadOnlyList<PlanStep> steps, IReadOnlyList<string>? warnings = null)
{
    public IReadOnlyList<PlanStep> Steps { get; } = steps;

    /// <summary>Non-fatal findings worth a log line (for example a phone number that is not E.164 and was kept as a property).</summary>
    public IReadOnlyList<string> Warnings { get; } = warnings ?? [];
}
