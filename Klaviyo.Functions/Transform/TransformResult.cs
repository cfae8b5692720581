namespace Klaviyo.Functions.Transform;

/// <summary>
/// What the transform decided for one event: a plan of Klaviyo calls, a deliberate skip, or a permanent error
/// naming the field and the rule it broke. Expected failures are results, never exceptions.
/// </summary>
internal abstract record TransformResult
{
    private TransformResult() { }

    /// <summary>The event becomes these Klaviyo calls.</summary>
    public sealed record Planned(RequestPlan Plan) : TransformResult
    {
        /// <summary>What the validate-only path answers for a deliverable event: no calls built.</summary>
        internal static readonly Planned Checked = new(new RequestPlan([]));
    }

    /// <summary>Deliberately not sent (page without <c>SendPageAsTrack</c>, alias); the message is completed.</summary>
    public sealed record Skipped(string Reason) : TransformResult;

    /// <summary>Can never be delivered as sent: dead-letter <c>InvalidEvent</c> (or 400 at the ingest).</summary>
    public sealed record Invalid(string Field, string Rule) : TransformResult
    {
        public string Message => $"{Field}: {Rule}";
    }

    /// <summary>The body is not an event at all (not JSON, not an object): <c>MalformedMessage</c>.</summary>
    public sealed record Malformed(string Reason) : TransformResult;
}
