namespace Klaviyo.Functions.Transform;

/// <summary>
/// What the transform decided for one event: the parts of its Klaviyo calls, a deliberate skip, or a permanent error
/// naming the field and the rule it broke. Expected failures are results, never exceptions.
/// </summary>
internal abstract record TransformResult
{
    private TransformResult() { }

    /// <summary>The event is delivered from these parts (<c>Calls.KlaviyoCalls</c> writes the calls).</summary>
    public sealed record Planned(DeliveryParts Parts) : TransformResult
    {
        /// <summary>What the validate-only path answers for a deliverable event: no parts written.</summary>
        internal static readonly Planned Checked = new(new EventParts(new EventPart(new ProfilePart(default, 0), default, 0)));
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
